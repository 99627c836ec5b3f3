/**
 * The arithmetic behind chapter 4's figures, on the embedding table itself ([vocabSize, dim], one row per
 * token): cosine similarity of one row with every row (nearest neighbours), and a principal component
 * analysis of all rows (the 2-D map). Plain functions of typed arrays, so the worker runs them on the real
 * table and the tests run them on tables whose answers are known. Everything accumulates in float64. Chapter
 * 14's trainer draws the same map of a model while it trains (embedding-map.ts), so it lives here, not in
 * the chapter.
 */

/** The Euclidean length of every row of a [rows, dim] table. */
export function rowNorms(table: Float32Array, dim: number): Float64Array {
  const rows = table.length / dim;
  const norms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) sum += table[i] * table[i];
    norms[r] = Math.sqrt(sum);
  }
  return norms;
}

export interface Neighbour {
  token: number;
  /** cos(angle) between the two rows, in [−1, 1]; 0 when either row is all zeros (it has no direction). */
  similarity: number;
}

/**
 * The `k` rows most similar in direction to row `token` (cosine similarity), most similar first; equal
 * similarities keep vocabulary order. The row itself is left out. `norms` is rowNorms(table, dim), passed
 * in so it is computed once per model rather than once per question.
 */
export function nearestNeighbours(
  table: Float32Array,
  dim: number,
  token: number,
  k: number,
  norms: Float64Array = rowNorms(table, dim),
): Neighbour[] {
  const rows = norms.length;
  const query = table.subarray(token * dim, (token + 1) * dim);
  const queryNorm = norms[token];
  // A sorted list of the best k so far: a new row enters only if it beats the worst of them, so the
  // whole vocabulary costs one comparison per row, not a sort.
  const best: Neighbour[] = [];
  const better = (a: Neighbour, b: Neighbour) =>
    a.similarity > b.similarity || (a.similarity === b.similarity && a.token < b.token);
  for (let r = 0; r < rows; r++) {
    if (r === token) continue;
    const candidate = { token: r, similarity: cosine(query, queryNorm, table, r * dim, norms[r]) };
    if (best.length === k && !better(candidate, best[k - 1])) continue;
    let at = Math.min(best.length, k - 1);
    while (at > 0 && better(candidate, best[at - 1])) at--;
    best.splice(at, 0, candidate);
    if (best.length > k) best.pop();
  }
  return best;
}

/** Cosine similarity of `query` with the row of `table` starting at `offset`. */
function cosine(
  query: Float32Array,
  queryNorm: number,
  table: Float32Array,
  offset: number,
  rowNorm: number,
): number {
  if (queryNorm === 0 || rowNorm === 0) return 0;
  let dot = 0;
  for (let i = 0; i < query.length; i++) dot += query[i] * table[offset + i];
  // Rounding can push |dot| a hair past |a||b|; a cosine outside [−1, 1] would be nonsense.
  return Math.max(-1, Math.min(1, dot / (queryNorm * rowNorm)));
}

/** Cosine similarity of two rows of the table. */
export function rowSimilarity(
  table: Float32Array,
  dim: number,
  a: number,
  b: number,
  norms: Float64Array,
): number {
  return cosine(table.subarray(a * dim, (a + 1) * dim), norms[a], table, b * dim, norms[b]);
}

/** Cosine similarity of row `token` with every row (its own entry is 1, or 0 for an all-zero row). */
export function similaritiesTo(
  table: Float32Array,
  dim: number,
  token: number,
  norms: Float64Array = rowNorms(table, dim),
): Float64Array {
  const query = table.subarray(token * dim, (token + 1) * dim);
  const similarities = new Float64Array(norms.length);
  for (let r = 0; r < norms.length; r++) {
    similarities[r] = cosine(query, norms[token], table, r * dim, norms[r]);
  }
  return similarities;
}

/**
 * The choices of "which token's row is closest to this one?": the true nearest row of the whole
 * vocabulary, against up to three other tokens of the reader's own text (familiar, so the guess is a real
 * one), topped up with the rows ranked 10th, 100th, 1000th… when the text has too few. Special tokens are
 * never offered as distractors. Choices are in alphabetical order, so the answer's place tells nothing.
 * `ranks[i]` is 1 for the nearest row, counting every row but the token's own.
 */
export function questionChoices(
  similarities: Float64Array,
  token: number,
  textTokens: readonly number[],
  special: ReadonlySet<number>,
  labels: (token: number) => string = String,
): { tokens: number[]; answer: number; ranks: number[] } {
  const order = Array.from(similarities.keys())
    .filter((t) => t !== token)
    .sort((a, b) => similarities[b] - similarities[a] || a - b);
  const rankOf = new Map(order.map((t, i) => [t, i + 1]));
  const nearest = order[0];
  const chosen = [nearest];
  for (const t of textTokens) {
    if (chosen.length === 4) break;
    if (t !== token && !special.has(t) && !chosen.includes(t)) chosen.push(t);
  }
  for (let rank = 10; chosen.length < 4 && rank <= order.length; rank *= 10) {
    const t = order[rank - 1];
    if (!special.has(t) && !chosen.includes(t)) chosen.push(t);
  }
  const tokens = chosen.sort((a, b) => labels(a).localeCompare(labels(b), 'en') || a - b);
  return { tokens, answer: tokens.indexOf(nearest), ranks: tokens.map((t) => rankOf.get(t)!) };
}

export interface Pca {
  /** The mean row, subtracted before anything else (PCA describes spread around the centre). */
  mean: Float64Array;
  /** The principal directions, unit length and mutually orthogonal, largest variance first. */
  components: Float64Array[];
  /** The variance of the rows along each component (the covariance matrix's eigenvalues). */
  variances: number[];
  /** The total variance: the sum over all dim directions, i.e. the covariance matrix's trace. */
  totalVariance: number;
  /** variances[i] / totalVariance: the share of the spread each component keeps. */
  explained: number[];
}

/**
 * Principal component analysis of the rows of a [rows, dim] table: centre the rows, form the dim × dim
 * covariance matrix, and find its top eigenvectors by power iteration, removing each one found
 * ("deflation") before looking for the next. The covariance is small (dim × dim) however large the
 * vocabulary, so the cost is one pass over the table plus iterations on a 128 × 128 matrix.
 */
export function principalComponents(table: Float32Array, dim: number, count = 2): Pca {
  const rows = table.length / dim;
  const mean = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let i = 0; i < dim; i++) mean[i] += table[r * dim + i];
  for (let i = 0; i < dim; i++) mean[i] /= rows;

  const covariance = covarianceMatrix(table, dim, mean);
  let totalVariance = 0;
  for (let i = 0; i < dim; i++) totalVariance += covariance[i * dim + i];

  const components: Float64Array[] = [];
  const variances: number[] = [];
  for (let c = 0; c < Math.min(count, dim); c++) {
    const { vector, value } = topEigenvector(covariance, dim, c);
    components.push(vector);
    variances.push(value);
    // Deflation: C ← C − λ v vᵀ leaves the other eigenvectors as they were and this one with eigenvalue 0.
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j < dim; j++) covariance[i * dim + j] -= value * vector[i] * vector[j];
    }
  }
  const explained = variances.map((value) => (totalVariance > 0 ? value / totalVariance : 0));
  return { mean, components, variances, totalVariance, explained };
}

/** The covariance of the rows around `mean`, dim × dim, row-major (1/rows, the population covariance). */
export function covarianceMatrix(table: Float32Array, dim: number, mean: Float64Array): Float64Array {
  const rows = table.length / dim;
  const covariance = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < dim; i++) centred[i] = table[r * dim + i] - mean[i];
    // The matrix is symmetric: accumulate the upper triangle only, mirror it at the end.
    for (let i = 0; i < dim; i++) {
      const ci = centred[i];
      if (ci === 0) continue;
      const rowStart = i * dim;
      for (let j = i; j < dim; j++) covariance[rowStart + j] += ci * centred[j];
    }
  }
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      covariance[i * dim + j] /= rows;
      covariance[j * dim + i] = covariance[i * dim + j];
    }
  }
  return covariance;
}

const MAX_ITERATIONS = 20_000;
/** Converged when the residual ‖Cv − λv‖ is this small relative to the largest eigenvalue. */
const TOLERANCE = 1e-10;

/**
 * The eigenvector of a symmetric positive semi-definite matrix with the largest eigenvalue, by power
 * iteration: multiply a vector by the matrix again and again, normalizing each time; the component along
 * the top eigenvector grows fastest and takes over. `seed` picks a different deterministic start vector
 * for each component. The sign is fixed so that the largest entry is positive (an eigenvector's sign is
 * arbitrary; fixing it keeps the map from flipping between runs).
 */
export function topEigenvector(
  matrix: Float64Array,
  dim: number,
  seed = 0,
): { vector: Float64Array; value: number; iterations: number } {
  let vector = new Float64Array(dim);
  // A start vector with a share of every direction (an exact eigenvector start would hide the others).
  for (let i = 0; i < dim; i++) vector[i] = 1 + 0.37 * Math.sin(1.7 * (i + 1) + 0.9 * seed);
  normalize(vector);
  let next = new Float64Array(dim);
  let scale = 0;
  for (let i = 0; i < dim * dim; i++) scale = Math.max(scale, Math.abs(matrix[i]));
  let iterations = 0;
  for (; iterations < MAX_ITERATIONS; iterations++) {
    multiply(next, matrix, vector, dim);
    const value = dot(vector, next); // the Rayleigh quotient vᵀCv
    let residual = 0;
    for (let i = 0; i < dim; i++) residual += (next[i] - value * vector[i]) ** 2;
    const length = normalize(next);
    [vector, next] = [next, vector];
    if (length === 0 || Math.sqrt(residual) <= TOLERANCE * Math.max(scale, Number.MIN_VALUE)) break;
  }
  multiply(next, matrix, vector, dim);
  const value = dot(vector, next);
  let largest = 0;
  for (let i = 1; i < dim; i++) if (Math.abs(vector[i]) > Math.abs(vector[largest])) largest = i;
  if (vector[largest] < 0) for (let i = 0; i < dim; i++) vector[i] = -vector[i];
  return { vector, value: Math.max(value, 0), iterations };
}

function multiply(out: Float64Array, matrix: Float64Array, vector: Float64Array, dim: number): void {
  for (let i = 0; i < dim; i++) {
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += matrix[i * dim + j] * vector[j];
    out[i] = sum;
  }
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** Scales `v` to unit length in place and returns its length before (0 leaves it unchanged). */
function normalize(v: Float64Array): number {
  const length = Math.sqrt(dot(v, v));
  if (length > 0) for (let i = 0; i < v.length; i++) v[i] /= length;
  return length;
}

/** Every row's coordinates along the components, after centring: [rows, components] as float32. */
export function project(table: Float32Array, dim: number, pca: Pca): Float32Array {
  const rows = table.length / dim;
  const count = pca.components.length;
  const points = new Float32Array(rows * count);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < count; c++) {
      const component = pca.components[c];
      let sum = 0;
      for (let i = 0; i < dim; i++) sum += (table[r * dim + i] - pca.mean[i]) * component[i];
      points[r * count + c] = sum;
    }
  }
  return points;
}

/**
 * The tokens whose piece contains `query`, ignoring case (so "god" finds " God", "God" and " gods"); an
 * empty or all-space query matches nothing. Spaces in the query count: " god" finds only pieces with one.
 */
export function searchPieces(pieces: readonly string[], query: string): number[] {
  if (query.trim() === '') return [];
  const needle = query.toLowerCase();
  const matches: number[] = [];
  pieces.forEach((piece, token) => {
    if (piece.toLowerCase().includes(needle)) matches.push(token);
  });
  return matches;
}

/** 1st, 2nd, 3rd, 4th … 11th, 12th, 13th … 21st, with thousands separated: 1,001st. */
export function ordinal(n: number): string {
  const suffix =
    n % 100 >= 11 && n % 100 <= 13
      ? 'th'
      : (({ 1: 'st', 2: 'nd', 3: 'rd' } as Record<number, string>)[n % 10] ?? 'th');
  return `${n.toLocaleString('en')}${suffix}`;
}
