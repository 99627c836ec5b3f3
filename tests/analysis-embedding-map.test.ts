/**
 * src/analysis/embedding-map.ts against brute force: the kinds of pieces on examples from several
 * tokenizers' vocabularies, the most frequent tokens against a plain count, every nearest neighbour against
 * chapter 4's similaritiesTo over the whole row, the chance share against the average over every dealing of
 * the kinds, the Procrustes turn against a search over every angle, and the map turned back onto itself
 * after the table is rotated in its full space.
 */
import { describe, expect, it } from 'vitest';
import {
  frequentTokens,
  neighbourAgreement,
  pieceCategory,
  procrustes2d,
  TOKEN_CATEGORIES,
  tokenCategory,
  tokenMap,
  transform2d,
} from '../src/analysis/embedding-map.ts';
import { principalComponents, project, rowNorms, similaritiesTo } from '../src/analysis/embeddings.ts';
import { seededRandom } from './helpers.ts';

function randomTable(rows: number, dim: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length: rows * dim }, () => next() * 2 - 1);
}

/** Every ordering of `items` (for small lists). */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

/** The sum of squared distances between two [N, 2] point sets. */
function misfit(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return sum;
}

describe('tokenCategory', () => {
  it('tells word starts, word insides, capitals, symbols and the rest apart', () => {
    const cases: [string | undefined, string][] = [
      [' the', 'word start'],
      [' and', 'word start'],
      [' été', 'word start'],
      ['ing', 'inside a word'],
      ['e', 'inside a word'],
      [' The', 'capitalised'],
      ['Naomi', 'capitalised'],
      [' Über', 'capitalised'],
      [',', 'punctuation or digits'],
      [' "', 'punctuation or digits'],
      ['.\n', 'punctuation or digits'],
      [' 1905', 'punctuation or digits'],
      ['12', 'punctuation or digits'],
      [' ', 'other'],
      ['\n', 'other'],
      ['', 'other'],
      [undefined, 'other'],
      ['中', 'other'],
    ];
    for (const [text, name] of cases) {
      expect(TOKEN_CATEGORIES[tokenCategory(text)].name, JSON.stringify(text)).toBe(name);
    }
  });
});

describe('pieceCategory', () => {
  it('reads the piece’s bytes as UTF-8, and calls bytes that are only part of a character "other"', () => {
    const utf8 = new TextEncoder();
    expect(pieceCategory(utf8.encode(' the'))).toBe(0);
    expect(pieceCategory(utf8.encode('Ruth'))).toBe(2);
    expect(pieceCategory(utf8.encode(' é').subarray(0, 2))).toBe(4); // a space and the first byte of é
    expect(pieceCategory(new Uint8Array([0xff]))).toBe(4);
  });
});

describe('frequentTokens', () => {
  it('is a plain count sorted by count, then id, without the excluded and unseen tokens', () => {
    const next = seededRandom(3);
    const vocab = 40;
    const tokens = Int32Array.from({ length: 2000 }, () => Math.floor(next() ** 2 * vocab));
    const exclude = new Set([0, 1]);
    const counts = new Map<number, number>();
    for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
    const expected = [...counts.entries()]
      .filter(([token]) => !exclude.has(token))
      .sort(([a, ca], [b, cb]) => cb - ca || a - b)
      .map(([token]) => token);
    expect(frequentTokens(tokens, vocab, 15, exclude)).toEqual(expected.slice(0, 15));
    expect(frequentTokens(tokens, vocab, 1000, exclude)).toEqual(expected);
  });
});

describe('neighbourAgreement', () => {
  it('finds every nearest neighbour that chapter 4’s cosines find, and counts the same kinds', () => {
    const dim = 12;
    const table = randomTable(90, dim, 7);
    // A zero row (cosine 0 with everything) and two identical rows (a tie broken by order).
    table.fill(0, 5 * dim, 6 * dim);
    table.copyWithin(20 * dim, 30 * dim, 31 * dim);
    const tokens = [30, 5, 20, 2, ...Array.from({ length: 60 }, (_, i) => 89 - i)];
    const next = seededRandom(11);
    const categories = tokens.map(() => Math.floor(next() * 4));
    const result = neighbourAgreement(table, dim, tokens, categories);
    const norms = rowNorms(table, dim);
    let same = 0;
    tokens.forEach((token, i) => {
      const similarities = similaritiesTo(table, dim, token, norms);
      let best = -1;
      tokens.forEach((other, j) => {
        if (j !== i && (best < 0 || similarities[other] > similarities[tokens[best]] + 1e-12)) best = j;
      });
      expect(result.nearest[i], `token ${token}`).toBe(best);
      if (categories[best] === categories[i]) same++;
    });
    expect(result.same).toBe(same);
    expect(result.share).toBeCloseTo(same / tokens.length, 15);
  });

  it('gives as chance the mean share over every dealing of the same kinds', () => {
    const dim = 5;
    const table = randomTable(7, dim, 13);
    const tokens = [0, 1, 2, 3, 4, 5, 6];
    const categories = [0, 0, 0, 1, 1, 2, 3];
    const { nearest, chance } = neighbourAgreement(table, dim, tokens, categories);
    // The nearest neighbours stay where they are; only the kinds are dealt again, in every possible way.
    const dealings = permutations(categories);
    const mean =
      dealings.reduce((sum, dealt) => sum + dealt.filter((c, i) => dealt[nearest[i]] === c).length, 0) /
      (dealings.length * tokens.length);
    expect(chance).toBeCloseTo(mean, 12);
  });
});

describe('procrustes2d', () => {
  it('undoes a known turn or flip exactly', () => {
    const next = seededRandom(5);
    const points = Float32Array.from({ length: 60 }, () => next() * 2 - 1);
    const angle = 2.1;
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    for (const map of [
      [c, -s, s, c],
      [c, s, s, -c],
      [-1, 0, 0, 1],
      [0, 1, 1, 0],
    ]) {
      const moved = transform2d(points, map);
      const back = transform2d(moved, procrustes2d(moved, points));
      back.forEach((value, i) => expect(value).toBeCloseTo(points[i], 5));
    }
  });

  it('is orthogonal and no worse than any rotation or reflection on a fine grid of angles', () => {
    const next = seededRandom(17);
    const points = Float32Array.from({ length: 40 }, () => next() * 2 - 1);
    const target = Float32Array.from(points, (value) => value + (next() - 0.5) * 0.8);
    const map = procrustes2d(points, target);
    const [a, b, c, d] = map;
    expect(a * a + c * c).toBeCloseTo(1, 12);
    expect(b * b + d * d).toBeCloseTo(1, 12);
    expect(a * b + c * d).toBeCloseTo(0, 12);
    const best = misfit(transform2d(points, map), target);
    for (let k = 0; k < 3600; k++) {
      const angle = (k / 3600) * 2 * Math.PI;
      const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
      for (const other of [
        [cos, -sin, sin, cos],
        [cos, sin, sin, -cos],
      ]) {
        expect(best).toBeLessThanOrEqual(misfit(transform2d(points, other), target) + 1e-5);
      }
    }
  });
});

describe('tokenMap', () => {
  const dim = 10;
  const rows = 60;
  // Planted spread: two directions with far more variance than the rest, so the plane is well defined.
  const table = randomTable(rows, dim, 29);
  for (let r = 0; r < rows; r++) {
    table[r * dim] *= 6;
    table[r * dim + 1] *= 4;
  }
  const tokens = [3, 10, 11, 40, 41, 59, 0, 22];

  it('without a previous picture, is chapter 4’s PCA and projection of those rows alone', () => {
    const map = tokenMap(table, dim, tokens);
    const rows = new Float32Array(tokens.length * dim);
    tokens.forEach((token, i) => {
      for (let d = 0; d < dim; d++) rows[i * dim + d] = table[token * dim + d];
    });
    const pca = principalComponents(rows, dim, 2);
    const projected = project(rows, dim, pca);
    map.points.forEach((value, i) => expect(value).toBeCloseTo(projected[i], 5));
    expect(map.planeShare).toBeCloseTo(pca.explained[0] + pca.explained[1], 12);
  });

  it('turns back onto the previous picture when the whole table is rotated and reflected in its space', () => {
    const before = tokenMap(table, dim, tokens);
    // An orthogonal map of the full space: a reflection of axis 0 and a turn of axes 0 and 1 by 1 radian,
    // which mixes the two principal directions and flips one of them.
    const rotated = new Float32Array(table.length);
    const [c, s] = [Math.cos(1), Math.sin(1)];
    for (let r = 0; r < rows; r++) {
      rotated.set(table.subarray(r * dim, (r + 1) * dim), r * dim);
      const [x, y] = [-table[r * dim], table[r * dim + 1]];
      rotated[r * dim] = c * x - s * y;
      rotated[r * dim + 1] = s * x + c * y;
    }
    const unaligned = tokenMap(rotated, dim, tokens);
    expect(misfit(unaligned.points, before.points)).toBeGreaterThan(1);
    const after = tokenMap(rotated, dim, tokens, before.points);
    after.points.forEach((value, i) => expect(value).toBeCloseTo(before.points[i], 4));
  });
});
