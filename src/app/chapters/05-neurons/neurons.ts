/**
 * Chapter 5's arithmetic, kept free of Svelte so that tests can hold it to independent computations:
 * one neuron (weighted sum, bias, activation), and a real weight matrix times a real vector, one row at a
 * time, as the engine's matrix kernels compute it.
 */
import { headDim as headDimOf, type ModelConfig } from '../../../engine/model.ts';
import { silu } from '../../../engine/ops.ts';
import type { LayerTrace } from '../../../engine/trace.ts';

// --- one neuron -------------------------------------------------------------------------------------------

export type Activation = 'none' | 'relu' | 'gelu' | 'silu';

export const ACTIVATIONS: readonly { id: Activation; label: string; formula: string }[] = [
  { id: 'none', label: 'None', formula: 'f(z) = z' },
  { id: 'relu', label: 'ReLU', formula: 'f(z) = max(0, z)' },
  { id: 'gelu', label: 'GELU (erf)', formula: 'f(z) = z · Φ(z) = z · ½(1 + erf(z/√2))' },
  { id: 'silu', label: 'SiLU', formula: 'f(z) = z · σ(z) = z / (1 + e^(−z))' },
];

export function relu(z: number): number {
  return z > 0 ? z : 0;
}

/**
 * The error function, by Abramowitz & Stegun's formula 7.1.26 (absolute error below 1.5e-7): JavaScript's
 * Math has no erf, and figures show three significant digits.
 */
export function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const a = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * a);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return sign * (1 - poly * Math.exp(-a * a));
}

/** GELU in its exact form, z·Φ(z) with Φ the standard normal CDF (BERT's; GPT-2 used a tanh approximation). */
export function gelu(z: number): number {
  return 0.5 * z * (1 + erf(z / Math.SQRT2));
}

/** The activation `kind` at z. SiLU is the engine's own function, the one the loaded model runs. */
export function activate(kind: Activation, z: number): number {
  switch (kind) {
    case 'relu':
      return relu(z);
    case 'gelu':
      return gelu(z);
    case 'silu':
      return silu(z);
    default:
      return z;
  }
}

export interface NeuronResult {
  /** products[i] = weights[i] · inputs[i] */
  products: number[];
  /** z = Σ products + bias: the weighted sum before the activation. */
  sum: number;
  /** f(z) */
  output: number;
}

export function neuron(
  inputs: readonly number[],
  weights: readonly number[],
  bias: number,
  kind: Activation,
): NeuronResult {
  if (inputs.length !== weights.length) throw new Error('neuron: one weight per input');
  const products = inputs.map((x, i) => weights[i] * x);
  const sum = products.reduce((total, p) => total + p, bias);
  return { products, sum, output: activate(kind, sum) };
}

/** An SVG path through f over [zMin, zMax], with `toX`/`toY` mapping values to pixels. */
export function activationPath(
  kind: Activation,
  zMin: number,
  zMax: number,
  steps: number,
  toX: (z: number) => number,
  toY: (y: number) => number,
): string {
  const points: string[] = [];
  for (let i = 0; i <= steps; i++) {
    const z = zMin + ((zMax - zMin) * i) / steps;
    points.push(`${i === 0 ? 'M' : 'L'}${toX(z).toFixed(2)},${toY(activate(kind, z)).toFixed(2)}`);
  }
  return points.join(' ');
}

// --- a real matrix × vector product -----------------------------------------------------------------------

/** The weight matrices of a layer (model.ts's LayerWeights names), in the order a token meets them. */
export const MATRIX_NAMES = ['wq', 'wk', 'wv', 'wo', 'wGate', 'wUp', 'wDown'] as const;
export type MatrixName = (typeof MATRIX_NAMES)[number];

export interface MatrixRole {
  /** What it does, in words. */
  label: string;
  block: 'attention' | 'feed-forward';
  /** The Trace tensor it multiplies (one row per token) … */
  input: keyof LayerTrace;
  /** … and the Trace tensor the product is (one row per token). */
  output: keyof LayerTrace;
}

/** Which Trace tensor feeds each matrix and which one its product is (see forward.ts and trace.ts). */
export const MATRIX_ROLES: Record<MatrixName, MatrixRole> = {
  wq: { label: 'query projection', block: 'attention', input: 'attnNorm', output: 'q' },
  wk: { label: 'key projection', block: 'attention', input: 'attnNorm', output: 'k' },
  wv: { label: 'value projection', block: 'attention', input: 'attnNorm', output: 'v' },
  wo: {
    label: 'attention output projection',
    block: 'attention',
    input: 'attnOutput',
    output: 'attnProjected',
  },
  wGate: { label: 'SwiGLU gate projection', block: 'feed-forward', input: 'ffnNorm', output: 'ffnGate' },
  wUp: { label: 'SwiGLU up projection', block: 'feed-forward', input: 'ffnNorm', output: 'ffnUp' },
  wDown: {
    label: 'SwiGLU down projection',
    block: 'feed-forward',
    input: 'ffnActivation',
    output: 'ffnOutput',
  },
};

export function isMatrixName(name: string): name is MatrixName {
  return (MATRIX_NAMES as readonly string[]).includes(name);
}

/** products[k] = w[row, k] · x[k], in float64: the terms that row `row` of the product adds up. */
export function rowProducts(
  weights: Float32Array,
  x: Float32Array,
  cols: number,
  row: number,
  out = new Float64Array(cols),
): Float64Array {
  const offset = row * cols;
  for (let k = 0; k < cols; k++) out[k] = weights[offset + k] * x[k];
  return out;
}

/**
 * Output `row` of w·x: the dot product of that row with x, summed in float64 from k = 0 up and rounded to
 * float32 once at the end, as the engine's reference kernels do (src/kernels/reference.ts).
 */
export function rowSum(weights: Float32Array, x: Float32Array, cols: number, row: number): number {
  const offset = row * cols;
  let sum = 0;
  for (let k = 0; k < cols; k++) sum += weights[offset + k] * x[k];
  return Math.fround(sum);
}

/** w[rows, cols] · x[cols], one row at a time. */
export function matrixTimesVector(
  weights: Float32Array,
  x: Float32Array,
  rows: number,
  cols: number,
): Float32Array {
  if (weights.length !== rows * cols || x.length !== cols) {
    throw new Error(`matrixTimesVector: a [${rows} × ${cols}] matrix needs a vector of ${cols}`);
  }
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) out[r] = rowSum(weights, x, cols, r);
  return out;
}

/** max |a[i] − b[i]| over the first `length` entries (all of them by default). */
export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>, length = a.length): number {
  let max = 0;
  for (let i = 0; i < length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** The `quantile` of |values|: a colour scale that a few outliers cannot wash out. */
export function magnitudeQuantile(values: ArrayLike<number>, quantile = 0.99): number {
  if (values.length === 0) return 1;
  const magnitudes = Float64Array.from(values, Math.abs).sort();
  const at = Math.min(magnitudes.length - 1, Math.floor(quantile * (magnitudes.length - 1)));
  return magnitudes[at] || magnitudes[magnitudes.length - 1] || 1;
}

/** The terms of one row with the largest magnitudes, largest first: where its sum comes from. */
export function largestTerms(products: ArrayLike<number>, count: number): { index: number; value: number }[] {
  return Array.from(products, (value, index) => ({ index, value }))
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || a.index - b.index)
    .slice(0, count);
}

export interface MultiplyAdds {
  /** rows × cols of each matrix of one layer. */
  perMatrix: Record<MatrixName, number>;
  /** All seven matrices of one layer. */
  perLayer: number;
  /** The classifier that turns the final vector into logits (vocabSize × dim). */
  classifier: number;
  /** Every weight-matrix product of one token: layers × perLayer + classifier. */
  weights: number;
  /** Attention's own products for a token at `position` (0-based): q·k for each earlier key and the
   * weighted sum of as many values, per head and layer. They grow with the position. */
  attentionAt(position: number): number;
}

/**
 * Multiply-adds per token, from the model's shapes: a matrix × vector product of [rows × cols] does exactly
 * rows × cols of them, one per weight.
 */
export function multiplyAdds(config: ModelConfig): MultiplyAdds {
  const { dim, hiddenDim, nHeads, nKvHeads, nLayers, vocabSize } = config;
  const headDim = headDimOf(config);
  const perMatrix: Record<MatrixName, number> = {
    wq: nHeads * headDim * dim,
    wk: nKvHeads * headDim * dim,
    wv: nKvHeads * headDim * dim,
    wo: dim * nHeads * headDim,
    wGate: hiddenDim * dim,
    wUp: hiddenDim * dim,
    wDown: dim * hiddenDim,
  };
  const perLayer = MATRIX_NAMES.reduce((sum, name) => sum + perMatrix[name], 0);
  const classifier = vocabSize * dim;
  return {
    perMatrix,
    perLayer,
    classifier,
    weights: nLayers * perLayer + classifier,
    attentionAt: (position) => nLayers * 2 * nHeads * headDim * (position + 1),
  };
}

/** The kernels' description (describeKernels's line) in a few words, e.g. "WebAssembly 128-bit SIMD …". */
export function kernelsInWords(line: string): string {
  return /—\s*([^;]+)/.exec(line)?.[1].trim() ?? (line || 'the engine');
}

/** A number with `digits` significant digits and a true minus sign. */
export function precise(value: number, digits = 7): string {
  return value.toPrecision(digits).replace('-', '−');
}

/** A small difference, e.g. "2.4 × 10⁻⁷", or "0" when there is none. */
export function scientific(value: number): string {
  if (value === 0) return '0';
  const exponent = Math.floor(Math.log10(Math.abs(value)));
  const mantissa = value / 10 ** exponent;
  const superscript = String(exponent)
    .split('')
    .map((c) => '⁻⁰¹²³⁴⁵⁶⁷⁸⁹'['-0123456789'.indexOf(c)])
    .join('');
  return `${mantissa.toFixed(1)} × 10${superscript}`;
}

/** A square block of a [rows, cols] matrix, `size` × `size` at most, placed to contain (row, col). */
export interface MatrixBlock {
  top: number;
  left: number;
  rows: number;
  cols: number;
  /** The block's values, row-major. */
  values: Float32Array;
}

export function matrixBlock(
  weights: Float32Array,
  rows: number,
  cols: number,
  row: number,
  col: number,
  size: number,
): MatrixBlock {
  const height = Math.min(size, rows);
  const width = Math.min(size, cols);
  const top = Math.max(0, Math.min(row - Math.floor(height / 2), rows - height));
  const left = Math.max(0, Math.min(col - Math.floor(width / 2), cols - width));
  const values = new Float32Array(height * width);
  for (let r = 0; r < height; r++) {
    values.set(weights.subarray((top + r) * cols + left, (top + r) * cols + left + width), r * width);
  }
  return { top, left, rows: height, cols: width, values };
}
