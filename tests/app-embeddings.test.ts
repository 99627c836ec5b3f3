/**
 * Chapter 4's arithmetic, checked against independent computations: nearest neighbours against a
 * brute-force float64 sort of every cosine (written differently: normalize first, then dot), the principal
 * components against a Jacobi eigen-decomposition written here and against data with planted axes, and the
 * worker's answers against the house model's own table.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  covarianceMatrix,
  nearestNeighbours,
  ordinal,
  principalComponents,
  project,
  questionChoices,
  rowNorms,
  searchPieces,
  similaritiesTo,
} from '../src/analysis/embeddings.ts';
import { extremes } from '../src/app/lib/figure/extremes.ts';
import { focusPosition } from '../src/app/lib/figure/focus.ts';
import { divergingRgb } from '../src/app/lib/figure/palette.ts';
import { handlers as embeddingHandlers } from '../src/app/chapters/04-embeddings/worker.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { llama2cTokenizer, parseLlama2cTokenizer } from '../src/tokenizers/llama2c.ts';
import { haveShared, STORIES260K, TOK512 } from './shared.ts';
import { loadIntoWorker, loadModelFolder, seededRandom } from './helpers.ts';

/** A standard normal sample (Box–Muller). */
function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

function randomTable(rows: number, dim: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  return Float32Array.from({ length: rows * dim }, () => gaussian(next));
}

/** Every cosine, the other way round from the code under test: unit rows first, then plain dot products. */
function bruteForceNeighbours(table: Float32Array, dim: number, token: number) {
  const rows = table.length / dim;
  const unit = (r: number) => {
    const row = Array.from(table.subarray(r * dim, (r + 1) * dim), Number);
    const length = Math.hypot(...row);
    return length === 0 ? row.map(() => 0) : row.map((v) => v / length);
  };
  const query = unit(token);
  const all = [];
  for (let r = 0; r < rows; r++) {
    if (r === token) continue;
    const other = unit(r);
    all.push({ token: r, similarity: query.reduce((sum, v, i) => sum + v * other[i], 0) });
  }
  return all.sort((a, b) => b.similarity - a.similarity || a.token - b.token);
}

/**
 * Eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations: each rotation zeroes one
 * off-diagonal entry; sweeps repeat until the off-diagonal part vanishes. A method unrelated to power
 * iteration, so agreement means something.
 */
function jacobiEigen(matrix: Float64Array, n: number): { values: number[]; vectors: Float64Array[] } {
  const a = Float64Array.from(matrix);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q] ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  return {
    values: order.map((i) => a[i * n + i]),
    vectors: order.map((i) => Float64Array.from({ length: n }, (_, k) => v[k * n + i])),
  };
}

/** The covariance straight from its definition, in float64, for comparison. */
function definitionCovariance(
  table: Float32Array,
  dim: number,
): { covariance: Float64Array; mean: number[] } {
  const rows = table.length / dim;
  const mean = Array.from({ length: dim }, (_, i) => {
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += table[r * dim + i];
    return sum / rows;
  });
  const covariance = new Float64Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += (table[r * dim + i] - mean[i]) * (table[r * dim + j] - mean[j]);
      covariance[i * dim + j] = sum / rows;
    }
  }
  return { covariance, mean };
}

const dotOf = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
};

function houseModel() {
  return loadModelFolder('models/house');
}

describe('chapter 4: nearest neighbours by cosine similarity', () => {
  it('equals a brute-force float64 sort of every cosine, ties and zero rows included', () => {
    const dim = 6;
    const table = randomTable(60, dim, 7);
    // Ties: an exact copy (row 11 = row 3), a scaled copy (row 12 = 2 × row 3, the same direction), and the
    // opposite direction (row 13 = −row 3); zero rows have no direction and count as similarity 0.
    const copy = (to: number, from: number, factor: number) => {
      for (let i = 0; i < dim; i++) table[to * dim + i] = factor * table[from * dim + i];
    };
    copy(11, 3, 1);
    copy(12, 3, 2);
    copy(13, 3, -1);
    copy(20, 3, 0);
    copy(21, 3, 0);
    copy(40, 5, 1);
    copy(41, 5, 1);
    const norms = rowNorms(table, dim);
    for (const token of [0, 3, 5, 11, 12, 13, 20, 40, 59]) {
      const expected = bruteForceNeighbours(table, dim, token);
      for (const k of [1, 5, 12, 59, 100]) {
        const got = nearestNeighbours(table, dim, token, k, norms);
        expect(
          got.map((n) => n.token),
          `token ${token}, k ${k}`,
        ).toEqual(expected.slice(0, k).map((n) => n.token));
        got.forEach((n, i) => expect(n.similarity).toBeCloseTo(expected[i].similarity, 12));
      }
    }
    // The ties come out in vocabulary order at the top: 11 and 12 are exactly row 3's direction.
    expect(nearestNeighbours(table, dim, 3, 2, norms)).toEqual([
      { token: 11, similarity: 1 },
      { token: 12, similarity: 1 },
    ]);
    expect(nearestNeighbours(table, dim, 3, 59, norms).at(-1)).toEqual({ token: 13, similarity: -1 });
    // A zero row is similar to nothing: every similarity is 0, so its "neighbours" are the lowest ids.
    expect(nearestNeighbours(table, dim, 20, 3, norms)).toEqual([
      { token: 0, similarity: 0 },
      { token: 1, similarity: 0 },
      { token: 2, similarity: 0 },
    ]);
    expect(similaritiesTo(table, dim, 3, norms)[20]).toBe(0);
  });

  it('agrees with the brute force on the house model', () => {
    const { model } = houseModel();
    const table = model.weights.tokenEmbedding.data;
    const dim = model.config.dim;
    const norms = rowNorms(table, dim);
    for (const token of [261, 405, 2024, 256]) {
      const expected = bruteForceNeighbours(table, dim, token).slice(0, 10);
      const got = nearestNeighbours(table, dim, token, 10, norms);
      expect(got.map((n) => n.token)).toEqual(expected.map((n) => n.token));
      got.forEach((n, i) => expect(n.similarity).toBeCloseTo(expected[i].similarity, 10));
    }
  });
});

describe('chapter 4: principal components', () => {
  it('finds planted axes and their share of the variance', () => {
    // Points spread along three orthonormal directions with standard deviations 5, 2 and 0.5, plus a
    // little isotropic noise: the components must be those directions, in that order.
    const dim = 10;
    const rows = 4000;
    const next = seededRandom(11);
    const axes: number[][] = [];
    while (axes.length < 3) {
      const v = Array.from({ length: dim }, () => gaussian(next));
      for (const u of axes) {
        const d = dotOf(v, u);
        u.forEach((x, i) => (v[i] -= d * x));
      }
      const length = Math.hypot(...v);
      axes.push(v.map((x) => x / length));
    }
    const spreads = [5, 2, 0.5];
    const noise = 0.05;
    const offset = Array.from({ length: dim }, (_, i) => i - 4); // the centre is not the origin
    const table = new Float32Array(rows * dim);
    for (let r = 0; r < rows; r++) {
      const weights = spreads.map((s) => s * gaussian(next));
      for (let i = 0; i < dim; i++) {
        table[r * dim + i] =
          offset[i] + weights.reduce((sum, w, k) => sum + w * axes[k][i], 0) + noise * gaussian(next);
      }
    }
    const pca = principalComponents(table, dim, 3);
    pca.components.forEach((component, k) =>
      expect(Math.abs(dotOf(component, axes[k]))).toBeGreaterThan(0.999),
    );
    // The planted variances (up to sampling error) and the noise's share of the rest.
    const planted = spreads.map((s) => s * s);
    const total = planted.reduce((a, b) => a + b, 0) + dim * noise * noise;
    pca.variances.forEach((v, k) => expect(v / planted[k]).toBeCloseTo(1, 1));
    expect(pca.totalVariance / total).toBeCloseTo(1, 1);
    pca.mean.forEach((m, i) => expect(m).toBeCloseTo(offset[i], 0));
  });

  it('matches a Jacobi eigen-decomposition, with unit orthogonal components (house model and random data)', () => {
    const { model } = houseModel();
    const cases = [
      { name: 'house', table: model.weights.tokenEmbedding.data, dim: model.config.dim },
      { name: 'random', table: randomTable(500, 12, 3), dim: 12 },
    ];
    for (const { name, table, dim } of cases) {
      const pca = principalComponents(table, dim, 3);
      const { covariance, mean } = definitionCovariance(table, dim);
      expect(
        Array.from(covarianceMatrix(table, dim, pca.mean)).every(
          (c, i) => Math.abs(c - covariance[i]) < 1e-10,
        ),
      ).toBe(true);
      pca.mean.forEach((m, i) => expect(m).toBeCloseTo(mean[i], 12));
      const { values, vectors } = jacobiEigen(covariance, dim);
      for (let k = 0; k < 3; k++) {
        expect(pca.variances[k], `${name} λ${k + 1}`).toBeCloseTo(values[k], 10);
        expect(Math.abs(dotOf(pca.components[k], vectors[k])), `${name} v${k + 1}`).toBeGreaterThan(1 - 1e-8);
        expect(dotOf(pca.components[k], pca.components[k])).toBeCloseTo(1, 12);
        for (let j = 0; j < k; j++)
          expect(Math.abs(dotOf(pca.components[k], pca.components[j]))).toBeLessThan(1e-8);
      }
      // The total variance is the trace, the sum of all eigenvalues, and the mean squared distance from the
      // mean row; the explained shares are the variances over it.
      const sumOfEigenvalues = values.reduce((a, b) => a + b, 0);
      const rows = table.length / dim;
      let squaredDistances = 0;
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < dim; i++) squaredDistances += (table[r * dim + i] - mean[i]) ** 2;
      expect(pca.totalVariance).toBeCloseTo(sumOfEigenvalues, 10);
      expect(pca.totalVariance).toBeCloseTo(squaredDistances / rows, 10);
      pca.explained.forEach((share, k) => expect(share).toBeCloseTo(values[k] / sumOfEigenvalues, 10));
    }
  });

  it('explains all of the variance when every component is taken', () => {
    const dim = 8;
    const table = randomTable(300, dim, 5);
    const pca = principalComponents(table, dim, dim);
    expect(pca.explained.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    // Sorted, largest first.
    for (let k = 1; k < dim; k++) expect(pca.variances[k]).toBeLessThanOrEqual(pca.variances[k - 1] + 1e-12);
  });

  it("projects a row to its dot products with the components after centring, with the components' variances", () => {
    const dim = 9;
    const table = randomTable(400, dim, 9);
    const pca = principalComponents(table, dim, 2);
    const points = project(table, dim, pca);
    for (const r of [0, 17, 399]) {
      const centred = Array.from({ length: dim }, (_, i) => table[r * dim + i] - pca.mean[i]);
      for (let c = 0; c < 2; c++) expect(points[r * 2 + c]).toBeCloseTo(dotOf(centred, pca.components[c]), 5);
    }
    // Along each component the points are centred, and spread exactly as much as its variance says.
    for (let c = 0; c < 2; c++) {
      let sum = 0;
      let squares = 0;
      for (let r = 0; r < 400; r++) {
        sum += points[r * 2 + c];
        squares += points[r * 2 + c] ** 2;
      }
      expect(sum / 400).toBeCloseTo(0, 5);
      expect(squares / 400).toBeCloseTo(pca.variances[c], 5);
    }
  });
});

describe('chapter 4: the smaller pieces', () => {
  it('searches pieces ignoring case, spaces significant', () => {
    const pieces = [' God', 'god', ' gods', 'Godly', ' the', '<|bos|>', ' GOD'];
    expect(searchPieces(pieces, 'god')).toEqual([0, 1, 2, 3, 6]);
    expect(searchPieces(pieces, ' God')).toEqual([0, 2, 6]);
    expect(searchPieces(pieces, '')).toEqual([]);
    expect(searchPieces(pieces, '  ')).toEqual([]);
    expect(searchPieces(pieces, 'x')).toEqual([]);
  });

  it('builds the question from the true nearest row and the reader’s own tokens', () => {
    const dim = 5;
    const table = randomTable(300, dim, 21);
    const norms = rowNorms(table, dim);
    const focus = 7;
    const similarities = similaritiesTo(table, dim, focus, norms);
    const ranked = bruteForceNeighbours(table, dim, focus);
    const special = new Set([0, 1]);
    // BOS (0) and the focus token itself are never offered; the text's other tokens are, in text order.
    const text = [0, 40, 7, 40, 9, 200, 150];
    const { tokens, answer, ranks } = questionChoices(similarities, focus, text, special);
    expect(tokens[answer]).toBe(ranked[0].token);
    expect(new Set(tokens)).toEqual(new Set([ranked[0].token, 40, 9, 200]));
    tokens.forEach((t, i) => expect(ranks[i]).toBe(ranked.findIndex((n) => n.token === t) + 1));
    // Too few other tokens: topped up with the rows ranked 10th and 100th.
    const short = questionChoices(similarities, focus, [0, 7], special);
    expect(new Set(short.tokens)).toEqual(new Set([ranked[0].token, ranked[9].token, ranked[99].token]));
    expect(short.tokens.length).toBe(3);
  });

  it('reads the focus position, ordinals, ranges and colours', () => {
    expect(focusPosition(-1, 5)).toBe(4);
    expect(focusPosition(2, 5)).toBe(2);
    expect(focusPosition(9, 5)).toBe(4);
    expect(focusPosition(-1, 0)).toBe(-1);
    expect([1, 2, 3, 4, 11, 12, 13, 21, 102, 111, 1001].map(ordinal)).toEqual([
      '1st',
      '2nd',
      '3rd',
      '4th',
      '11th',
      '12th',
      '13th',
      '21st',
      '102nd',
      '111th',
      '1,001st',
    ]);
    expect(extremes([0.5, -2, 1])).toEqual({ min: -2, argMin: 1, max: 1, argMax: 2, maxAbs: 2 });
    expect(divergingRgb(-1, false)).toEqual([33, 102, 172]);
    expect(divergingRgb(5, false)).toEqual([179, 88, 6]);
    expect(divergingRgb(0, true)).toEqual([34, 37, 42]);
  });
});

describe("chapter 4: the worker's answers on the house model", () => {
  const { model, tokenizer } = houseModel();
  loadIntoWorker(model, tokenizer, { id: 'house', label: 'house' });
  const table = model.weights.tokenEmbedding.data;
  const dim = model.config.dim;

  it('returns the table rows of exactly the tokens asked about', () => {
    const tokens = tokenizer.encode('In the beginning God created', { bos: true, eos: false });
    const answer = embeddingHandlers.embeddingRows(tokens);
    expect(answer.tokens).toEqual(tokens);
    expect(answer.rows.length).toBe(tokens.length * dim);
    tokens.forEach((token, t) =>
      expect(answer.rows.subarray(t * dim, (t + 1) * dim)).toEqual(
        table.subarray(token * dim, (token + 1) * dim),
      ),
    );
    expect(answer.tied).toBe(true);
    expect(answer.vocabSize).toBe(4096);
  });

  it('answers neighbours, question and map consistently with the table', () => {
    const god = tokenizer.encode(' God', { bos: false, eos: false });
    expect(god).toHaveLength(1);
    const list = embeddingHandlers.embeddingNeighbours(god[0], 10);
    expect(list.neighbours.map((n) => n.token)).toEqual(
      bruteForceNeighbours(table, dim, god[0])
        .slice(0, 10)
        .map((n) => n.token),
    );
    expect(list.neighbours[0].piece).toBe(tokenizer.pieceLabel(list.neighbours[0].token));
    const question = embeddingHandlers.embeddingQuestion(
      god[0],
      tokenizer.encode('And God said', { bos: true, eos: false }),
    );
    expect(question.choices[question.answer].token).toBe(list.neighbours[0].token);
    expect(question.choices[question.answer].rank).toBe(1);
    const map = embeddingHandlers.embeddingMap();
    expect(map.points.length).toBe(4096 * map.components);
    expect(map.pieces[god[0]]).toBe(' God');
    const pca = principalComponents(table, dim, map.components);
    expect(map.explained).toEqual(pca.explained);
    // A second call is served from the cache, and is still a fresh copy of the points.
    const again = embeddingHandlers.embeddingMap();
    expect(again.points).toEqual(map.points);
    expect(again.points).not.toBe(map.points);
    expect(() => embeddingHandlers.embeddingNeighbours(4096, 10)).toThrow(/not in the vocabulary/);
  });
});

describe.skipIf(!haveShared)('chapter 4: a llama2.c model (stories260K from ../shared)', () => {
  it('answers rows, neighbours, question and map for another vocabulary', () => {
    const model = parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin');
    const tokenizer = llama2cTokenizer(
      parseLlama2cTokenizer(new Uint8Array(readFileSync(TOK512)), 'tok512.bin', 512),
    );
    loadIntoWorker(model, tokenizer, { id: 'local', label: 'stories260K.bin' });
    const { dim, vocabSize } = model.config;
    const table = model.weights.tokenEmbedding.data;
    const tokens = tokenizer.encode('Lily saw a cat', { bos: true, eos: false });
    const rows = embeddingHandlers.embeddingRows(tokens);
    expect(rows.rows).toEqual(
      Float32Array.from(tokens.flatMap((t) => Array.from(table.subarray(t * dim, (t + 1) * dim)))),
    );
    const list = embeddingHandlers.embeddingNeighbours(tokens[2], 10);
    expect(list.neighbours.map((n) => n.token)).toEqual(
      bruteForceNeighbours(table, dim, tokens[2])
        .slice(0, 10)
        .map((n) => n.token),
    );
    const question = embeddingHandlers.embeddingQuestion(tokens[2], tokens);
    expect(question.choices[question.answer].token).toBe(list.neighbours[0].token);
    const map = embeddingHandlers.embeddingMap();
    expect(map.vocabSize).toBe(vocabSize);
    expect(map.pieces).toHaveLength(vocabSize);
    const { values } = jacobiEigen(definitionCovariance(table, dim).covariance, dim);
    const total = values.reduce((a, b) => a + b, 0);
    map.explained.forEach((share, k) => expect(share).toBeCloseTo(values[k] / total, 8));
  });
});
