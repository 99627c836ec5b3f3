/**
 * Chapter 4's embedding map, for a model that is still training (chapter 14): a fixed set of tokens (the
 * run's most frequent), coloured by what kind of piece each is, placed by their rows' first two principal
 * components, and turned to match the previous picture so that from one sample to the next the points move
 * rather than the picture flipping; with one number for how organised the table is — the share of those
 * tokens whose nearest neighbour, by cosine in the full embedding space, is of their own kind, beside the
 * share a random assignment of kinds would give. Pure functions of typed arrays (no DOM, no worker).
 */
import { principalComponents, project } from './embeddings.ts';

/**
 * Kinds of piece that any tokenizer's vocabulary has, told apart by the piece's text alone. Whether a piece
 * starts a word (a leading space) or continues one is what a small model learns first to tell apart, since
 * it decides what may follow; capitals, and pieces with no letters at all, are the next distinctions.
 */
export const TOKEN_CATEGORIES = [
  { name: 'word start', description: 'a space, then a lower-case letter' },
  { name: 'inside a word', description: 'a lower-case letter with no space before it' },
  { name: 'capitalised', description: 'a capital letter first, with or without a space' },
  { name: 'punctuation or digits', description: 'no letters: punctuation, digits, symbols' },
  { name: 'other', description: 'spaces, line breaks, bytes of a longer character' },
] as const;

/** Index into TOKEN_CATEGORIES. */
export type TokenCategory = 0 | 1 | 2 | 3 | 4;

/** The kind of a piece, from its text; undefined text (bytes that are not UTF-8 on their own) is "other". */
export function tokenCategory(text: string | undefined): TokenCategory {
  if (text === undefined) return 4;
  const spaced = text.startsWith(' ');
  const body = spaced ? text.slice(1) : text;
  if (/^\p{Lu}/u.test(body)) return 2;
  if (/^\p{Ll}/u.test(body)) return spaced ? 0 : 1;
  // No letters, and something besides white space: punctuation, digits, symbols (a leading space allowed).
  if (/^[\p{P}\p{S}\p{N}]/u.test(body) && !/\p{L}/u.test(body)) return 3;
  return 4;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The kind of a piece from its bytes: "other" when they are not UTF-8 on their own (part of a longer character). */
export function pieceCategory(bytes: Uint8Array): TokenCategory {
  let text: string | undefined;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    text = undefined;
  }
  return tokenCategory(text);
}

/** How many of a run's most frequent tokens chapter 14's map follows: enough to show clusters, few enough to read. */
export const MAP_TOKEN_COUNT = 300;

/**
 * The `count` most frequent tokens of `tokens` (most frequent first, equal counts in id order), leaving out
 * `exclude` (the special tokens) and tokens that never occur. Chosen once per run from its training text,
 * so the same points can be followed from sample to sample.
 */
export function frequentTokens(
  tokens: ArrayLike<number>,
  vocabSize: number,
  count: number,
  exclude: ReadonlySet<number> = new Set(),
): number[] {
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < tokens.length; i++) counts[tokens[i]]++;
  const seen: number[] = [];
  for (let token = 0; token < vocabSize; token++) {
    if (counts[token] > 0 && !exclude.has(token)) seen.push(token);
  }
  return seen.sort((a, b) => counts[b] - counts[a] || a - b).slice(0, count);
}

export interface NeighbourAgreement {
  /** For each chosen token, the index (into the chosen list) of its nearest other chosen token. */
  nearest: Int32Array;
  /** How many chosen tokens have a nearest neighbour of their own category. */
  same: number;
  /** same / tokens: the organisation number. */
  share: number;
  /**
   * What `share` would be on average if the same categories were dealt to the tokens at random:
   * Σ_c n_c (n_c − 1) / (N (N − 1)), since a token of category c then finds one of the other n_c − 1 of
   * its kind among the N − 1 others with that probability, wherever its nearest neighbour is.
   */
  chance: number;
}

/**
 * For each of `tokens`, its nearest neighbour among the others (largest cosine between their rows of the
 * [vocab, dim] `table`, in the full `dim`-dimensional space, not in a 2-D picture; equal cosines go to the
 * earlier token; an all-zero row has cosine 0 with everything), and how often that neighbour is of the same
 * category. N²·dim/2 multiply-adds: 300 tokens of 64 dimensions is about 3 million.
 */
export function neighbourAgreement(
  table: Float32Array,
  dim: number,
  tokens: readonly number[],
  categories: readonly number[],
): NeighbourAgreement {
  const n = tokens.length;
  // The chosen rows at unit length, in float64, so each cosine is one dot product.
  const unit = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) {
    const offset = tokens[i] * dim;
    let sum = 0;
    for (let d = 0; d < dim; d++) sum += table[offset + d] * table[offset + d];
    const length = Math.sqrt(sum);
    if (length > 0) for (let d = 0; d < dim; d++) unit[i * dim + d] = table[offset + d] / length;
  }
  const best = new Float64Array(n).fill(-Infinity);
  const nearest = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += unit[i * dim + d] * unit[j * dim + d];
      // Every token meets its candidates in index order (for j: the i < j as the outer loop rises, then
      // its own row's later ones), so "strictly better" keeps the earliest of equals.
      if (dot > best[i]) [best[i], nearest[i]] = [dot, j];
      if (dot > best[j]) [best[j], nearest[j]] = [dot, i];
    }
  }
  let same = 0;
  for (let i = 0; i < n; i++) if (nearest[i] >= 0 && categories[nearest[i]] === categories[i]) same++;
  const sizes = new Map<number, number>();
  for (const category of categories) sizes.set(category, (sizes.get(category) ?? 0) + 1);
  let pairs = 0;
  for (const size of sizes.values()) pairs += size * (size - 1);
  return {
    nearest,
    same,
    share: n > 0 ? same / n : 0,
    chance: n > 1 ? pairs / (n * (n - 1)) : 0,
  };
}

/**
 * The orthogonal 2 × 2 map (a rotation, or a reflection) that brings `points` closest to `target` in the
 * least-squares sense (orthogonal Procrustes), as [r00, r01, r10, r11]: point (x, y) goes to
 * (x·r00 + y·r10, x·r01 + y·r11). Both are [N, 2], row-major.
 *
 * Why: the first two principal components fix a plane, but not the axes in it. Each comes with an arbitrary
 * sign, and when their two variances are close (as in a model just out of random initialisation) any pair
 * of perpendicular directions in the plane is as good, so two nearby steps can give pictures that differ by
 * a flip, a swap or a turn. A rotation or reflection of the plane changes no distance in it, so choosing
 * the one that best matches the previous picture removes exactly that freedom and nothing else: what still
 * moves is what the model learned. Minimising Σ‖p_i R − t_i‖² is maximising trace(Rᵀ M) with M = Pᵀ T;
 * over rotations [[c, −s], [s, c]] that is c(M00 + M11) + s(M10 − M01), largest at the angle of that
 * vector, and over reflections [[c, s], [s, −c]] it is c(M00 − M11) + s(M10 + M01): take the better.
 */
export function procrustes2d(points: ArrayLike<number>, target: ArrayLike<number>): number[] {
  let m00 = 0;
  let m01 = 0;
  let m10 = 0;
  let m11 = 0;
  for (let i = 0; i + 1 < points.length; i += 2) {
    m00 += points[i] * target[i];
    m01 += points[i] * target[i + 1];
    m10 += points[i + 1] * target[i];
    m11 += points[i + 1] * target[i + 1];
  }
  const rotation = Math.hypot(m00 + m11, m10 - m01);
  const reflection = Math.hypot(m00 - m11, m10 + m01);
  if (rotation >= reflection) {
    const angle = Math.atan2(m10 - m01, m00 + m11);
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    return [c, -s, s, c];
  }
  const angle = Math.atan2(m10 + m01, m00 - m11);
  const [c, s] = [Math.cos(angle), Math.sin(angle)];
  return [c, s, s, -c];
}

/** [N, 2] points through the 2 × 2 map of procrustes2d: (x, y) → (x·r00 + y·r10, x·r01 + y·r11). */
export function transform2d(points: ArrayLike<number>, map: readonly number[]): Float32Array {
  const out = new Float32Array(points.length);
  for (let i = 0; i + 1 < points.length; i += 2) {
    out[i] = points[i] * map[0] + points[i + 1] * map[2];
    out[i + 1] = points[i] * map[1] + points[i + 1] * map[3];
  }
  return out;
}

export interface TokenMap {
  /** [N, 2], row-major: token i at (points[2i], points[2i + 1]), in the table's units. */
  points: Float32Array;
  /** The share of the chosen rows' total variance that the plane of their first two components keeps. */
  planeShare: number;
}

/**
 * The rows of `tokens` projected (about their mean) onto the plane of their first two principal components
 * (principalComponents and project, chapter 4's PCA), then turned by procrustes2d to match `previous`, the last picture of
 * the same tokens, when there is one.
 *
 * The components are those of the chosen rows, not of the whole table: the rows of tokens the training text
 * never uses learn nothing of their own (with the classifier sharing the table, all of them are only pushed
 * down, the same way, in every prediction), so over the whole table the mean and the first component mostly
 * separate "used" from "unused", a direction that says nothing about the tokens shown (in a Tiny run on
 * Genesis, 181 of the 300 rows are never used).
 */
export function tokenMap(
  table: Float32Array,
  dim: number,
  tokens: readonly number[],
  previous?: ArrayLike<number>,
): TokenMap {
  const rows = new Float32Array(tokens.length * dim);
  tokens.forEach((token, i) => rows.set(table.subarray(token * dim, (token + 1) * dim), i * dim));
  const pca = principalComponents(rows, dim, 2);
  const raw = project(rows, dim, pca);
  const points =
    previous && previous.length === raw.length ? transform2d(raw, procrustes2d(raw, previous)) : raw;
  return { points, planeShare: pca.explained.reduce((sum, share) => sum + share, 0) };
}
