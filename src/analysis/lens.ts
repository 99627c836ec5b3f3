/**
 * The residual stream, read between the layers: RMSNorm step by step, the stream's size at every layer
 * boundary, what attention and the feed-forward block each add, the logit lens, and how alike one token's
 * vectors are in two contexts. Pure functions of a Model and a Trace (no DOM, no Node I/O), shared by the
 * course's chapter 10 and `glassbox inspect lens`.
 *
 * A "boundary" is a place between blocks where the stream can be read. With L layers there are L + 1:
 *
 *   boundary 0         layers[0].input            the embeddings (what enters layer 0)
 *   boundary l         layers[l].input            what layer l−1 left (l = 1 … L−1)
 *   boundary L         layers[L−1].residualAfterFfn   the final residual, before the final RMSNorm
 *
 * (A pass that patched the stream after its last layer, `patchResidual` at layer L, records the unpatched
 * residualAfterFfn: boundary L then shows the stream before that patch.)
 */
import { withLayerKernels, type LayerKernels } from '../kernels/layer-reference.ts';
import type { MatrixKernels } from '../kernels/reference.ts';
import type { Model, Tensor } from '../engine/model.ts';
import type { Trace } from '../engine/trace.ts';
import { linear } from '../engine/quant-matmul.ts';

/** The L + 1 boundaries of a pass, as [T, dim] tensors with the Trace's names. */
export function boundaries(trace: Trace): { name: string; tensor: Tensor }[] {
  const L = trace.layers.length;
  return [
    ...trace.layers.map((layer, l) => ({ name: `layers[${l}].input`, tensor: layer.input })),
    { name: `layers[${L - 1}].residualAfterFfn`, tensor: trace.layers[L - 1].residualAfterFfn },
  ];
}

// --- RMSNorm, one step at a time ------------------------------------------------------------------------

export interface RmsNormSteps {
  /** (1/dim) Σ x_i², summed in float64 as ops.ts's rmsNorm does. */
  meanSquare: number;
  eps: number;
  /** √(meanSquare + eps) */
  rms: number;
  /** 1 / √(meanSquare + eps): the one number every entry is multiplied by. */
  inverseRms: number;
  /** x · inverseRms: a vector whose root mean square is (nearly) 1. */
  normalized: Float32Array;
  /** The learned gain, one number per dimension. */
  gain: Float32Array;
  /** gain ⊙ normalized: what RMSNorm returns. */
  output: Float32Array;
}

/**
 * RMSNorm of x, keeping every intermediate: the same arithmetic, in the same order, as rmsNorm in
 * src/engine/ops.ts (so with the TypeScript kernels `output` equals the Trace's attnNorm/ffnNorm/finalNorm
 * bit for bit).
 */
export function rmsNormSteps(x: ArrayLike<number>, gain: Float32Array, eps: number): RmsNormSteps {
  let sumOfSquares = 0;
  for (let i = 0; i < x.length; i++) sumOfSquares += x[i] * x[i];
  const meanSquare = sumOfSquares / x.length;
  const inverseRms = 1 / Math.sqrt(meanSquare + eps);
  const normalized = new Float32Array(x.length);
  const output = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    normalized[i] = x[i] * inverseRms;
    output[i] = gain[i] * (x[i] * inverseRms);
  }
  return { meanSquare, eps, rms: Math.sqrt(meanSquare + eps), inverseRms, normalized, gain, output };
}

/** Where each RMSNorm of a pass reads and writes: its input, its gain and its output, by Trace name. */
export type NormSite = { kind: 'attnNorm' | 'ffnNorm'; layer: number } | { kind: 'finalNorm' };

export function normSite(
  model: Model,
  trace: Trace,
  site: NormSite,
): { inputName: string; outputName: string; input: Tensor; gain: Float32Array; output: Tensor } {
  const L = trace.layers.length;
  if (site.kind === 'finalNorm') {
    return {
      inputName: `layers[${L - 1}].residualAfterFfn`,
      outputName: 'finalNorm',
      input: trace.layers[L - 1].residualAfterFfn,
      gain: model.weights.finalNorm.data,
      output: trace.finalNorm,
    };
  }
  const layer = trace.layers[site.layer];
  const weights = model.weights.layers[site.layer];
  return site.kind === 'attnNorm'
    ? {
        inputName: `layers[${site.layer}].input`,
        outputName: `layers[${site.layer}].attnNorm`,
        input: layer.input,
        gain: weights.attnNorm.data,
        output: layer.attnNorm,
      }
    : {
        inputName: `layers[${site.layer}].residualAfterAttn`,
        outputName: `layers[${site.layer}].ffnNorm`,
        input: layer.residualAfterAttn,
        gain: weights.ffnNorm.data,
        output: layer.ffnNorm,
      };
}

// --- the stream's size ----------------------------------------------------------------------------------

/** Euclidean length of row `row` of a [rows, width] tensor, in float64. */
export function rowNorm(tensor: Tensor, row: number): number {
  const width = tensor.shape[tensor.shape.length - 1];
  let sum = 0;
  for (let i = row * width; i < (row + 1) * width; i++) sum += tensor.data[i] * tensor.data[i];
  return Math.sqrt(sum);
}

export interface StreamNorms {
  /** The boundaries' Trace names (L + 1 of them). */
  names: string[];
  /** [L + 1, T]: ‖stream‖ at each boundary and position. */
  stream: Float64Array;
  /** [L, T]: ‖attnProjected‖, what attention added in each layer. */
  attention: Float64Array;
  /** [L, T]: ‖ffnOutput‖, what the feed-forward block added in each layer. */
  feedForward: Float64Array;
}

/** The lengths of the stream and of what each block wrote into it, at every layer and position. */
export function streamNorms(trace: Trace): StreamNorms {
  const T = trace.tokens.length;
  const L = trace.layers.length;
  const rows = boundaries(trace);
  const stream = new Float64Array((L + 1) * T);
  const attention = new Float64Array(L * T);
  const feedForward = new Float64Array(L * T);
  rows.forEach(({ tensor }, b) => {
    for (let t = 0; t < T; t++) stream[b * T + t] = rowNorm(tensor, t);
  });
  trace.layers.forEach((layer, l) => {
    for (let t = 0; t < T; t++) {
      attention[l * T + t] = rowNorm(layer.attnProjected, t);
      feedForward[l * T + t] = rowNorm(layer.ffnOutput, t);
    }
  });
  return { names: rows.map((row) => row.name), stream, attention, feedForward };
}

// --- the logit lens -------------------------------------------------------------------------------------

export interface LogitLens {
  /** L + 1 rows (the boundaries above), T positions, the top `k` of each cell. */
  rows: number;
  positions: number;
  k: number;
  names: string[];
  /** [rows, T, k]: the k most likely token ids of each cell, most likely first (ties: lower id first). */
  ids: Int32Array;
  /** [rows, T, k]: their probabilities. */
  probabilities: Float32Array;
  /**
   * [rows, T]: at each cell, the probability of the token the model finally predicts at that position
   * (the last row's top token), so one can see at which layer it becomes likely.
   */
  finalTopProbability: Float32Array;
  /** [rows, T]: that token's rank in each cell (0 = the cell's most likely token). */
  finalTopRank: Int32Array;
}

/**
 * The logit lens (nostalgebraist, 2020): read the residual stream at every boundary as if it were the
 * last one. Each cell is RMSNorm with the FINAL norm's gain (the one the classifier was trained to read),
 * then the classifier, then softmax at temperature 1, as forward.ts does after the last layer. So the last
 * row is the model's own output: it reads the Trace's logits, which the pass computed from that boundary.
 *
 * The last row is read first: its top tokens are the final answers every other row is compared with, and
 * only one row's [T, V] logits are kept at a time (one buffer, written over row after row).
 *
 * The products and softmax's sums run on `kernels` (a [T, dim] × [dim, V] product and T sums of V
 * exponentials per row), so the lens costs L classifier products and (L + 1)·T·V exponentials: for a small
 * model, more than its forward pass. With the readable kernels every probability is temperatureSoftmax's
 * bit for bit; the WebAssembly exponentials differ from Math.exp in the last bits of a float32. Given
 * `earlier` (EarlierLens), the positions the two passes share are copied from it instead.
 */
export function logitLens(
  model: Model,
  trace: Trace,
  kernels: MatrixKernels & Partial<LayerKernels>,
  k = 5,
  earlier?: EarlierLens,
): LogitLens {
  const { dim, vocabSize, normEps } = model.config;
  if (!Number.isInteger(k) || k < 1) throw new Error(`logitLens: k must be a whole number ≥ 1, got ${k}`);
  const top = Math.min(k, vocabSize);
  const run = withLayerKernels(kernels);
  const T = trace.tokens.length;
  const rows = boundaries(trace);
  const last = rows.length - 1;
  const ids = new Int32Array(rows.length * T * top);
  const probabilities = new Float32Array(rows.length * T * top);
  const finalTopProbability = new Float32Array(rows.length * T);
  const finalTopRank = new Int32Array(rows.length * T);
  // Positions before `from` are the earlier lens's cells; the rest, `count` of them, are computed.
  const from = earlier ? reusablePositions(earlier, model, kernels, trace, rows.length, top) : 0;
  if (earlier && from > 0)
    copyCells(earlier.lens, { ids, probabilities, finalTopProbability, finalTopRank }, T, from);
  const count = T - from;
  const normed = new Float32Array(count * dim);
  const max = new Float32Array(count);
  const sum = new Float32Array(count);
  // One row's logits at a time: every row but the traced last one is written into the same buffer.
  let scratch: Float32Array | undefined;
  const logitsOf = (r: number): Float32Array => {
    // The pass itself already read the last boundary through the final norm and the classifier.
    if (r === last && lastRowIsTraced(trace)) return trace.logits.data.subarray(from * vocabSize);
    scratch ??= new Float32Array(count * vocabSize);
    const stream = rows[r].tensor.data.subarray(from * dim);
    run.rmsNormRows(normed, stream, model.weights.finalNorm.data, count, dim, normEps);
    linear(run, scratch, normed, model.weights.classifier, count, dim, vocabSize);
    return scratch;
  };
  // The last row first: its top tokens are the model's final answers, which every other row is read for.
  const rowOrder = [last, ...Array.from({ length: last }, (_, r) => r)];
  const answers = new Int32Array(T);
  for (const r of count > 0 ? rowOrder : []) {
    const logits = logitsOf(r);
    run.softmaxSumsRows(max, sum, logits, count, vocabSize);
    for (let i = 0; i < count; i++) {
      const t = from + i;
      const row = logits.subarray(i * vocabSize, (i + 1) * vocabSize);
      const cell = r * T + t;
      const best = topIndices(row, top);
      best.forEach((id, j) => {
        ids[cell * top + j] = id;
        probabilities[cell * top + j] = probabilityOf(row[id], max[i], sum[i]);
      });
      if (r === last) answers[t] = best[0];
      finalTopProbability[cell] = probabilityOf(row[answers[t]], max[i], sum[i]);
      const inTop = best.indexOf(answers[t]);
      finalTopRank[cell] = inTop >= 0 ? inTop : rankOf(row, answers[t]);
    }
  }
  return {
    rows: rows.length,
    positions: T,
    k: top,
    names: rows.map((row) => row.name),
    ids,
    probabilities,
    finalTopProbability,
    finalTopRank,
  };
}

/**
 * A lens computed before, with the model and kernels that computed it and the pass it read: logitLens copies
 * its cells at the positions whose tokens (and everything before them) are the same, since a position's
 * stream depends only on the tokens up to it, and computes the others. As the reader types at the end of a
 * text, that is the last position or two instead of all of them, with the same numbers bit for bit (the
 * tests check). Nothing is reused from another model or kernel set, nor from or for a pass with
 * interventions.
 */
export interface EarlierLens {
  model: Model;
  kernels: object;
  trace: Trace;
  lens: LogitLens;
}

/** How many first positions of `trace` the earlier lens already holds (0 if it cannot be reused at all). */
function reusablePositions(
  earlier: EarlierLens,
  model: Model,
  kernels: object,
  trace: Trace,
  rows: number,
  k: number,
): number {
  const { lens } = earlier;
  const sameComputation = earlier.model === model && earlier.kernels === kernels;
  const sameShape = lens.rows === rows && lens.k === k && lens.positions === earlier.trace.tokens.length;
  // An intervention changes the streams from its position on: passes with any are not compared.
  const plain = earlier.trace.interventions.length === 0 && trace.interventions.length === 0;
  if (!sameComputation || !sameShape || !plain) return 0;
  const [a, b] = [earlier.trace.tokens, trace.tokens];
  let same = 0;
  while (same < a.length && same < b.length && a[same] === b[same]) same++;
  return same;
}

/** Copies the cells of positions 0 … from − 1 of every row from `source` (of its own T) into `target`'s. */
function copyCells(
  source: LogitLens,
  target: Pick<LogitLens, 'ids' | 'probabilities' | 'finalTopProbability' | 'finalTopRank'>,
  T: number,
  from: number,
): void {
  const { rows, positions: sourceT, k } = source;
  for (let r = 0; r < rows; r++) {
    target.ids.set(source.ids.subarray(r * sourceT * k, (r * sourceT + from) * k), r * T * k);
    target.probabilities.set(
      source.probabilities.subarray(r * sourceT * k, (r * sourceT + from) * k),
      r * T * k,
    );
    target.finalTopProbability.set(
      source.finalTopProbability.subarray(r * sourceT, r * sourceT + from),
      r * T,
    );
    target.finalTopRank.set(source.finalTopRank.subarray(r * sourceT, r * sourceT + from), r * T);
  }
}

/**
 * The first boundary from which on the lens's top token at `position` is the model's final answer (and
 * stays so at every later boundary): where the model "knows" its prediction, by this reading.
 */
export function firstSettledRow(
  lens: Pick<LogitLens, 'rows' | 'positions' | 'k' | 'ids'>,
  position: number,
): number {
  const { rows, positions: T, k } = lens;
  const answer = lens.ids[((rows - 1) * T + position) * k];
  let first = rows - 1;
  for (let r = rows - 1; r >= 0; r--) {
    if (lens.ids[(r * T + position) * k] !== answer) break;
    first = r;
  }
  return first;
}

/** The `count` largest entries' indices, largest first (ties: the lower index first). */
export function topIndices(values: ArrayLike<number>, count: number): number[] {
  const best: number[] = [];
  if (count < 1) return best;
  let i = 0;
  for (; i < values.length && best.length < count; i++) insertInOrder(values, best, i, best.length);
  // Once `count` are kept, the smallest of them is a threshold most entries do not pass: one comparison each.
  let threshold = values[best[count - 1]];
  for (; i < values.length; i++) {
    if (values[i] <= threshold) continue;
    insertInOrder(values, best, i, count - 1); // the smallest kept is dropped
    threshold = values[best[count - 1]];
  }
  return best;
}

/** Puts `index` into `best` (indices, largest value first) at slot `at` or above, moving smaller ones down. */
function insertInOrder(values: ArrayLike<number>, best: number[], index: number, at: number): void {
  while (at > 0 && values[best[at - 1]] < values[index]) {
    best[at] = best[at - 1];
    at--;
  }
  best[at] = index;
}

/** e^(logit − max) / sum in float32, as temperatureSoftmax (src/engine/sampling.ts) divides. */
function probabilityOf(logit: number, max: number, sum: number): number {
  return Math.fround(Math.fround(Math.exp(logit - max)) / sum);
}

/**
 * Whether the Trace's logits are the lens's last row: a traced pass records every position's logits, from
 * the final residual — unless the pass patched the stream after its last layer, which the boundary does not
 * show (see `boundaries`).
 */
function lastRowIsTraced(trace: Trace): boolean {
  const L = trace.layers.length;
  return (
    trace.logits.data.length === trace.tokens.length * trace.logits.shape[trace.logits.shape.length - 1] &&
    !trace.interventions.some((i) => i.kind === 'patchResidual' && i.layer === L)
  );
}

/** How many entries are larger than values[index] (0 = it is the largest; ties rank by index). */
function rankOf(values: ArrayLike<number>, index: number): number {
  let rank = 0;
  const v = values[index];
  for (let i = 0; i < values.length; i++) if (values[i] > v || (values[i] === v && i < index)) rank++;
  return rank;
}

// --- the same token in two contexts ---------------------------------------------------------------------

/** cos(a, b) in float64; 0 when either is the zero vector. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 || bb === 0 ? 0 : dot / Math.sqrt(aa * bb);
}

/** One context: a pass and a position in it. */
export interface Context {
  trace: Trace;
  position: number;
}

/**
 * Static versus contextual embeddings: the cosine similarity of the stream at `a` and at `b`, boundary by
 * boundary (L + 1 numbers). The same token id in both gives 1 at boundary 0 (an embedding row is a lookup,
 * blind to the context); how far it falls later is how much the layers made of the context.
 */
export function contextSimilarity(a: Context, b: Context): number[] {
  const rowsA = boundaries(a.trace);
  const rowsB = boundaries(b.trace);
  if (rowsA.length !== rowsB.length) throw new Error('contextSimilarity: the passes have different depths');
  for (const { trace, position } of [a, b]) {
    if (!Number.isInteger(position) || position < 0 || position >= trace.tokens.length)
      throw new Error(`contextSimilarity: position ${position} is outside 0…${trace.tokens.length - 1}`);
  }
  return rowsA.map(({ tensor }, r) => {
    const dim = tensor.shape[1];
    const x = tensor.data.subarray(a.position * dim, (a.position + 1) * dim);
    const y = rowsB[r].tensor.data.subarray(b.position * dim, (b.position + 1) * dim);
    return cosine(x, y);
  });
}

/**
 * Two positions of one text holding the same token, for the contextual-embedding comparison: the latest
 * repeated token (its last two occurrences), or undefined when no token repeats. BOS (position 0) is left
 * out: it is the same in every text.
 */
export function repeatedPair(tokens: readonly number[]): [number, number] | undefined {
  for (let b = tokens.length - 1; b >= 2; b--) {
    for (let a = b - 1; a >= 1; a--) if (tokens[a] === tokens[b]) return [a, b];
  }
  return undefined;
}
