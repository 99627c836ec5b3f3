/**
 * Chapter 16's analyses of storing weights in fewer bits, pure and shared by the page's worker and the tests:
 *
 *  - the weight matrices of a model by name, and a histogram of one (counts, spread, the values far out);
 *  - one float32 cut down to float16 and bfloat16, bit field by bit field;
 *  - a readable group-wise quantizer for any group size: symmetric 8-bit (q8_0's rule), symmetric 4-bit
 *    (q4_0's) and 4-bit with a minimum (q4_1's). At a group of 32 it gives exactly what llama.cpp's block
 *    formats in src/engine/quant.ts give (a test holds it there); at other sizes it shows what the size changes;
 *  - what a whole model takes in each type, the model with its matrices rounded through a type and back, and
 *    how many next-token predictions (the argmax at each position) two sets of logits disagree on.
 */
import type { Model, Tensor } from '../engine/model.ts';
import {
  BLOCK_FORMATS,
  dequantize,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  bfloat16ToFloat32,
  quantize,
  tensorBytes,
  type QuantType,
} from '../engine/quant.ts';

// ------------------------------------------------------------------------------------------ the matrices

/** The matrices of a layer, in the order the forward pass uses them. */
export const LAYER_MATRICES = ['wq', 'wk', 'wv', 'wo', 'wGate', 'wUp', 'wDown'] as const;

export interface NamedMatrix {
  /** As the Trace and the chapters name it: "tokenEmbedding", "layers[2].wUp", "classifier". */
  name: string;
  tensor: Tensor;
}

/**
 * Every weight matrix of the model (the 2-D tensors: what quantization stores in blocks), the embedding first;
 * the classifier only when it is not the embedding itself. The norms' gains (1-D) are left out: they stay f32.
 */
export function weightMatrices(model: Model): NamedMatrix[] {
  const { weights, config } = model;
  const matrices: NamedMatrix[] = [{ name: 'tokenEmbedding', tensor: weights.tokenEmbedding }];
  weights.layers.forEach((layer, l) => {
    for (const key of LAYER_MATRICES) matrices.push({ name: `layers[${l}].${key}`, tensor: layer[key] });
  });
  if (!config.sharedClassifier) matrices.push({ name: 'classifier', tensor: weights.classifier });
  return matrices;
}

/** The matrix called `name` (as weightMatrices names it); throws for a name the model does not have. */
export function matrixByName(model: Model, name: string): Tensor {
  const found = weightMatrices(model).find((matrix) => matrix.name === name);
  if (!found) throw new Error(`the model has no weight matrix called ${name}`);
  return found.tensor;
}

// ------------------------------------------------------------------------------------------- histogram

export interface Histogram {
  /** How many numbers. */
  count: number;
  mean: number;
  /** Standard deviation (of the whole population). */
  std: number;
  /** The largest |value|, and where it is (flat index, row-major). */
  maxAbs: number;
  argMaxAbs: number;
  /** The bins cover [−maxAbs, maxAbs] in `bins` equal steps; counts[i] is bin i (the last includes maxAbs). */
  lo: number;
  hi: number;
  counts: number[];
  /** Values with |value| > outlierSigmas · std: how many, and the threshold. */
  outlierSigmas: number;
  outlierThreshold: number;
  outliers: number;
  /** How many a normal distribution with this std would put beyond the threshold (count · P(|z| > k)). */
  normalOutliers: number;
}

/** P(|z| > k) for a standard normal z: erfc(k / √2), by the Abramowitz–Stegun 7.1.26 approximation. */
export function normalTail(k: number): number {
  const x = k / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return poly * Math.exp(-x * x);
}

/** A symmetric histogram of `values` in `bins` bins, with its spread and the values beyond k·std. */
export function histogram(values: ArrayLike<number>, bins: number, outlierSigmas = 4): Histogram {
  const n = values.length;
  let sum = 0;
  let maxAbs = 0;
  let argMaxAbs = 0;
  for (let i = 0; i < n; i++) {
    sum += values[i];
    if (Math.abs(values[i]) > maxAbs) {
      maxAbs = Math.abs(values[i]);
      argMaxAbs = i;
    }
  }
  const mean = n > 0 ? sum / n : 0;
  let squares = 0;
  for (let i = 0; i < n; i++) squares += (values[i] - mean) ** 2;
  const std = n > 0 ? Math.sqrt(squares / n) : 0;
  const counts = new Array<number>(bins).fill(0);
  const width = maxAbs > 0 ? (2 * maxAbs) / bins : 1;
  const threshold = outlierSigmas * std;
  let outliers = 0;
  for (let i = 0; i < n; i++) {
    counts[Math.min(bins - 1, Math.floor((values[i] + maxAbs) / width))]++;
    if (Math.abs(values[i]) > threshold) outliers++;
  }
  return {
    count: n,
    mean,
    std,
    maxAbs,
    argMaxAbs,
    lo: -maxAbs,
    hi: maxAbs,
    counts,
    outlierSigmas,
    outlierThreshold: threshold,
    outliers,
    normalOutliers: n * normalTail(outlierSigmas),
  };
}

// ------------------------------------------------------------------------------- float32, f16 and bf16

export interface FloatFields {
  /** The format's bits as a string of 0s and 1s, sign first. */
  bits: string;
  /** How many of them are sign, exponent and fraction (1 + 8 + 23, 1 + 5 + 10, 1 + 8 + 7). */
  sign: number;
  exponent: number;
  fraction: number;
  /** The number those bits stand for. */
  value: number;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** One number as float32, float16 and bfloat16 (each rounded to nearest, ties to even, as quant.ts does). */
export function floatFormats(value: number): { f32: FloatFields; f16: FloatFields; bf16: FloatFields } {
  scratch[0] = value;
  const f32Bits = scratchBits[0];
  const f16Bits = float32ToFloat16(value);
  const bf16Bits = float32ToBfloat16(value);
  const binary = (bits: number, width: number) => (bits >>> 0).toString(2).padStart(width, '0');
  return {
    f32: { bits: binary(f32Bits, 32), sign: 1, exponent: 8, fraction: 23, value: scratch[0] },
    f16: { bits: binary(f16Bits, 16), sign: 1, exponent: 5, fraction: 10, value: float16ToFloat32(f16Bits) },
    bf16: {
      bits: binary(bf16Bits, 16),
      sign: 1,
      exponent: 8,
      fraction: 7,
      value: bfloat16ToFloat32(bf16Bits),
    },
  };
}

// ------------------------------------------------------------------------- group-wise quantization

/** How a group of numbers becomes small integers plus a scale (and a minimum). */
export type GroupScheme =
  /** q8_0's rule: d = max|x| / 127, q = round(x / d) in −127…127; x ≈ d·q. */
  | 'int8'
  /** q4_0's rule: d = (the value of largest magnitude) / −8, q in 0…15; x ≈ d·(q − 8). */
  | 'int4'
  /** q4_1's rule: d = (max − min) / 15, q in 0…15; x ≈ d·q + min. */
  | 'int4-min';

/** The llama.cpp type whose blocks of 32 follow each scheme. */
export const SCHEME_TYPE: Record<GroupScheme, QuantType> = { int8: 'q8_0', int4: 'q4_0', 'int4-min': 'q4_1' };

/** Bits per integer, and bytes of float16 per group (the scale, and the minimum too for int4-min). */
const SCHEME_LAYOUT: Record<GroupScheme, { bits: number; headerBytes: number }> = {
  int8: { bits: 8, headerBytes: 2 },
  int4: { bits: 4, headerBytes: 2 },
  'int4-min': { bits: 4, headerBytes: 4 },
};

/** Bytes per weight of a group of `size` numbers: its integers, and its scale (and minimum) as float16. */
export function bytesPerWeight(scheme: GroupScheme, size: number): number {
  const { bits, headerBytes } = SCHEME_LAYOUT[scheme];
  return (headerBytes + (size * bits) / 8) / size;
}

export interface Group {
  /** Index of its first number in the input. */
  start: number;
  /** The scale d as stored (a float16 value). */
  scale: number;
  /** The minimum m as stored (a float16 value; int4-min only, else 0). */
  min: number;
  /** The stored integers (q8: −127…127; int4: 0…15 with the offset 8 still in; int4-min: 0…15). */
  q: number[];
}

export interface GroupQuantized {
  scheme: GroupScheme;
  size: number;
  groups: Group[];
  /** Every number as the groups give it back (float32). */
  dequantized: Float32Array;
  bytesPerWeight: number;
}

const f32 = Math.fround;
/** float32 → the nearest float16's value (the scale as a block stores it). */
const half = (value: number) => float16ToFloat32(float32ToFloat16(value));
/** C's roundf: halves away from zero. */
const roundHalfAway = (x: number) => Math.sign(x) * Math.floor(Math.abs(x) + 0.5) + 0; // + 0: no −0

/**
 * Cuts `values` into groups of `size` (the last may be shorter) and quantizes each by `scheme`, computing in
 * float32 in the order ggml's reference quantizers do, so a group of 32 is exactly a q8_0 / q4_0 / q4_1 block.
 */
export function quantizeGroups(values: ArrayLike<number>, size: number, scheme: GroupScheme): GroupQuantized {
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`group size must be a positive integer, got ${size}`);
  const groups: Group[] = [];
  const dequantized = new Float32Array(values.length);
  for (let start = 0; start < values.length; start += size) {
    const x = Array.from({ length: Math.min(size, values.length - start) }, (_, i) => values[start + i]);
    let group: Group;
    if (scheme === 'int8') {
      // The scale maps the largest magnitude to ±127; every integer is the nearest multiple of it.
      const amax = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const d = f32(amax / 127);
      const inverse = d === 0 ? 0 : f32(1 / d);
      group = { start, scale: half(d), min: 0, q: x.map((v) => roundHalfAway(f32(v * inverse))) };
      group.q.forEach((q, i) => (dequantized[start + i] = group.scale * q));
    } else if (scheme === 'int4') {
      // The value of largest magnitude (sign kept) becomes q = 0 exactly; the rest fall in 0…15 around 8.
      const extreme = x.reduce((e, v) => (Math.abs(v) > Math.abs(e) ? v : e), 0);
      const d = f32(extreme / -8);
      const inverse = d === 0 ? 0 : f32(1 / d);
      const q = x.map((v) => Math.min(15, Math.max(0, Math.trunc(f32(f32(v * inverse) + 8.5)))));
      group = { start, scale: half(d), min: 0, q };
      q.forEach((value, i) => (dequantized[start + i] = group.scale * (value - 8)));
    } else {
      // 16 levels from the group's minimum to its maximum.
      const min = x.reduce((m, v) => Math.min(m, v), Infinity);
      const max = x.reduce((m, v) => Math.max(m, v), -Infinity);
      const d = f32(f32(max - min) / 15);
      const inverse = d === 0 ? 0 : f32(1 / d);
      const q = x.map((v) => Math.min(15, Math.max(0, Math.trunc(f32(f32(f32(v - min) * inverse) + 0.5)))));
      group = { start, scale: half(d), min: half(min), q };
      q.forEach((value, i) => (dequantized[start + i] = f32(group.scale * value) + group.min));
    }
    groups.push(group);
  }
  return { scheme, size, groups, dequantized, bytesPerWeight: bytesPerWeight(scheme, size) };
}

export interface RoundingError {
  /** √(mean of (x̂ − x)²). */
  rms: number;
  /** The largest |x̂ − x|. */
  max: number;
}

/** How far `approx` is from `exact`, element by element. */
export function roundingError(exact: ArrayLike<number>, approx: ArrayLike<number>): RoundingError {
  let squares = 0;
  let max = 0;
  for (let i = 0; i < exact.length; i++) {
    const e = approx[i] - exact[i];
    squares += e * e;
    max = Math.max(max, Math.abs(e));
  }
  return { rms: exact.length > 0 ? Math.sqrt(squares / exact.length) : 0, max };
}

/** The group sizes the chapter's slider offers. */
export const GROUP_SIZES = [8, 16, 32, 64, 128, 256] as const;

export interface GroupSizeRow {
  size: number;
  /** Per scheme: bytes per weight, and the rounding error over the whole matrix. */
  schemes: Record<GroupScheme, { bytesPerWeight: number; rms: number; max: number }>;
}

/** The rounding error of a whole matrix and the bytes per weight, for every group size and scheme. */
export function groupSizeSweep(
  values: ArrayLike<number>,
  sizes: readonly number[] = GROUP_SIZES,
): GroupSizeRow[] {
  return sizes.map((size) => {
    const schemes = {} as GroupSizeRow['schemes'];
    for (const scheme of Object.keys(SCHEME_TYPE) as GroupScheme[]) {
      const { dequantized } = quantizeGroups(values, size, scheme);
      schemes[scheme] = {
        bytesPerWeight: bytesPerWeight(scheme, size),
        ...roundingError(values, dequantized),
      };
    }
    return { size, schemes };
  });
}

// ----------------------------------------------------------------------------------------- the outlier

export interface OutlierBlock {
  /** The matrix and the flat index of the model's largest-magnitude weight. */
  matrix: string;
  index: number;
  row: number;
  column: number;
  value: number;
  /** The block of 32 (within its row) that holds it, and the weight's place in the block. */
  blockStart: number;
  at: number;
  values: number[];
  /** The block in q4_0 as it is, and again with the outlier set to 0 (as if it were stored apart). */
  withOutlier: GroupQuantized;
  withoutOutlier: GroupQuantized;
  /** The rounding error of the other 31 weights, both ways. */
  othersError: { withOutlier: RoundingError; withoutOutlier: RoundingError };
  /** How many distinct integers the other 31 weights use, both ways. */
  levelsUsed: { withOutlier: number; withoutOutlier: number };
}

/**
 * Which weight the outlier figure looks at: the model's largest in size, or the one that stands out most in its
 * own block of 32 (the largest ratio of the block's largest |w| to its second largest).
 */
export type OutlierPick = 'largest' | 'standout';

/** A weight and its q4_0 block, with and without it: the largest of the model, or the one that stands out most. */
export function outlierBlock(model: Model, pick: OutlierPick = 'largest', blockSize = 32): OutlierBlock {
  let best: { matrix: string; index: number; tensor: Tensor; score: number } | undefined;
  for (const { name, tensor } of weightMatrices(model)) {
    const data = tensor.data;
    if (pick === 'largest') {
      const { maxAbs, argMaxAbs } = histogram(data, 1);
      if (!best || maxAbs > best.score) best = { matrix: name, index: argMaxAbs, tensor, score: maxAbs };
      continue;
    }
    // Blocks run along rows, as the block formats store them (a row's last partial block is left out).
    const columns = tensor.shape[tensor.shape.length - 1];
    const starts: number[] = [];
    for (let row = 0; row * columns < data.length; row++) {
      for (let b = 0; (b + 1) * blockSize <= columns; b++) starts.push(row * columns + b * blockSize);
    }
    for (const start of starts) {
      let first = 0;
      let second = 0;
      let at = start;
      for (let i = start; i < start + blockSize; i++) {
        const size = Math.abs(data[i]);
        if (size > first) {
          second = first;
          first = size;
          at = i;
        } else if (size > second) second = size;
      }
      const score = second > 0 ? first / second : 0;
      if (!best || score > best.score) best = { matrix: name, index: at, tensor, score };
    }
  }
  const { matrix, index, tensor } = best!;
  const columns = tensor.shape[tensor.shape.length - 1];
  const row = Math.floor(index / columns);
  const column = index % columns;
  const blockStart = row * columns + Math.floor(column / blockSize) * blockSize;
  const at = index - blockStart;
  const values = Array.from(tensor.data.subarray(blockStart, blockStart + blockSize));
  const without = values.map((v, i) => (i === at ? 0 : v));
  const withOutlier = quantizeGroups(values, blockSize, 'int4');
  const withoutOutlier = quantizeGroups(without, blockSize, 'int4');
  const others = (array: ArrayLike<number>) => Array.from(array).filter((_, i) => i !== at);
  const levels = (g: GroupQuantized) => new Set(others(g.groups[0].q)).size;
  return {
    matrix,
    index,
    row,
    column,
    value: tensor.data[index],
    blockStart,
    at,
    values,
    withOutlier,
    withoutOutlier,
    othersError: {
      withOutlier: roundingError(others(values), others(withOutlier.dequantized)),
      withoutOutlier: roundingError(others(values), others(withoutOutlier.dequantized)),
    },
    levelsUsed: { withOutlier: levels(withOutlier), withoutOutlier: levels(withoutOutlier) },
  };
}

// --------------------------------------------------------------------------------------- whole models

/** The types the chapter compares, widest first. */
export const MODEL_TYPES = [
  'f32',
  'f16',
  'bf16',
  'q8_0',
  'q4_1',
  'q4_0',
] as const satisfies readonly QuantType[];
export type ModelType = (typeof MODEL_TYPES)[number];

/**
 * How a matrix is stored when the model is stored as `type`, as `glassbox quantize` (and llama.cpp) does it: in
 * `type`, unless its rows are not whole blocks of it; then as f16.
 */
export function storedAs(type: QuantType, shape: readonly number[]): QuantType {
  return tensorBytes(type, shape) === undefined ? 'f16' : type;
}

export interface ModelBytes {
  type: QuantType;
  /** Bytes of every weight: matrices as stored, norms' gains as f32, a shared classifier once. */
  bytes: number;
  /** The same model in f32. */
  f32Bytes: number;
  /** Matrices kept at f16 because their rows are not whole blocks of the type. */
  keptAtF16: string[];
}

/** What the weights of `model` take when stored as `type` (the block formats' sizes, from tensorBytes). */
export function modelBytes(model: Model, type: QuantType): ModelBytes {
  const { weights } = model;
  const gains = [weights.finalNorm, ...weights.layers.flatMap((layer) => [layer.attnNorm, layer.ffnNorm])];
  let bytes = gains.reduce((sum, gain) => sum + 4 * gain.data.length, 0);
  let f32Bytes = bytes;
  const keptAtF16: string[] = [];
  for (const { name, tensor } of weightMatrices(model)) {
    const as = storedAs(type, tensor.shape);
    if (as !== type) keptAtF16.push(name);
    bytes += tensorBytes(as, tensor.shape)!;
    f32Bytes += 4 * tensor.data.length;
  }
  return { type, bytes, f32Bytes, keptAtF16 };
}

/**
 * The model with every matrix stored as `type` and read back as float32 (dequantize(quantize(w))): the numbers a
 * quantized model multiplies with. Norms' gains stay f32; a shared classifier stays the embedding.
 */
export function roundTripModel(model: Model, type: QuantType): Model {
  const round = (tensor: Tensor): Tensor => ({
    shape: tensor.shape,
    data:
      type === 'f32'
        ? tensor.data
        : dequantize(quantize(tensor.data, tensor.shape, storedAs(type, tensor.shape))),
  });
  const { weights } = model;
  const tokenEmbedding = round(weights.tokenEmbedding);
  return {
    config: model.config,
    weights: {
      tokenEmbedding,
      layers: weights.layers.map((layer) => ({
        ...layer,
        ...Object.fromEntries(LAYER_MATRICES.map((key) => [key, round(layer[key])])),
      })),
      finalNorm: weights.finalNorm,
      classifier: model.config.sharedClassifier ? tokenEmbedding : round(weights.classifier),
    },
  };
}

/** Bytes per number of a type's blocks. */
export function typeBytesPerWeight(type: QuantType): number {
  return BLOCK_FORMATS[type].blockBytes / BLOCK_FORMATS[type].blockSize;
}

// ----------------------------------------------------------------------------------------- predictions

/** The index of the largest entry of each row of `logits` ([rows, width]); the first one on a tie. */
export function argmaxRows(logits: ArrayLike<number>, width: number): number[] {
  const rows = Math.floor(logits.length / width);
  const best: number[] = [];
  for (let r = 0; r < rows; r++) {
    let at = 0;
    for (let i = 1; i < width; i++) if (logits[r * width + i] > logits[r * width + at]) at = i;
    best.push(at);
  }
  return best;
}

export interface Flips {
  /** The top token at each position, for the reference and for the other logits. */
  reference: number[];
  other: number[];
  /** Positions whose top token differs. */
  flipped: number[];
}

/** Where two passes over the same tokens disagree on the most likely next token. */
export function predictionFlips(
  reference: ArrayLike<number>,
  other: ArrayLike<number>,
  width: number,
): Flips {
  if (reference.length !== other.length)
    throw new Error('predictionFlips: the two passes have different sizes');
  const a = argmaxRows(reference, width);
  const b = argmaxRows(other, width);
  return { reference: a, other: b, flipped: a.flatMap((token, t) => (token === b[t] ? [] : [t])) };
}

/** The first index where two token lists differ (the shorter one's length if one is a prefix of the other). */
export function firstDifference(a: readonly number[], b: readonly number[]): number | undefined {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? undefined : n;
}
