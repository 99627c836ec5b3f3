/**
 * The numbers behind chapter 6 (position and RoPE), as plain functions of the Trace's q and k: which two
 * dimensions of a head form each RoPE pair (following the loaded model's layout), the angle and wavelength
 * of each pair, queries and keys rotated to any position by the engine's own RoPE (ops.ts), the scores they
 * give, and the sinusoidal table of the original Transformer. No Svelte here, so tests can check each one.
 */
import { kvHeadOf, type RopeLayout } from '../../../engine/model.ts';
import { applyRope, ropeFrequency, ropePairMembers } from '../../../engine/ops.ts';

/** What RoPE needs to know about a model's heads. */
export interface RopeGeometry {
  headDim: number;
  layout: RopeLayout;
  /** The base of the frequencies (config.ropeTheta). */
  theta: number;
}

/** A 2-D pair of a head: its two members' values. */
export interface Pair {
  x: number;
  y: number;
}

/** What a figure knows of the model's RoPE (the worker sends it with q and k). */
export function ropeGeometry(data: {
  headDim: number;
  ropeLayout: RopeLayout;
  ropeTheta: number;
}): RopeGeometry {
  return { headDim: data.headDim, layout: data.ropeLayout, theta: data.ropeTheta };
}

/** A head's vector as its headDim/2 pairs, in pair order. */
export function headPairs(head: ArrayLike<number>, geometry: RopeGeometry): Pair[] {
  const pairs: Pair[] = [];
  for (let i = 0; i < geometry.headDim / 2; i++) {
    const [first, second] = ropePairMembers(i, geometry.headDim, geometry.layout);
    pairs.push({ x: head[first], y: head[second] });
  }
  return pairs;
}

/** Row t, head h of a Trace tensor shaped [T, heads, headDim] (a view, not a copy). */
export function headVector(
  data: Float32Array,
  heads: number,
  headDim: number,
  t: number,
  h: number,
): Float32Array {
  const start = (t * heads + h) * headDim;
  return data.subarray(start, start + headDim);
}

/** Turns (x, y) by `angle` radians anticlockwise: the 2-D rotation RoPE applies to every pair. */
export function rotatePair({ x, y }: Pair, angle: number): Pair {
  return { x: x * Math.cos(angle) - y * Math.sin(angle), y: x * Math.sin(angle) + y * Math.cos(angle) };
}

/** The angle (radians) pair `pair` is turned by at position `pos`: pos · θ_i, θ_i = theta^(−2i/headDim). */
export function pairAngle(pair: number, pos: number, geometry: RopeGeometry): number {
  return pos * ropeFrequency(pair, geometry.headDim, geometry.theta);
}

/** How many positions pair `pair` takes to turn once all the way round: 2π / θ_i. */
export function pairWavelength(pair: number, geometry: RopeGeometry): number {
  return (2 * Math.PI) / ropeFrequency(pair, geometry.headDim, geometry.theta);
}

/** An angle in degrees, folded into [0, 360). */
export function degrees(angle: number): number {
  const turned = ((angle * 180) / Math.PI) % 360;
  return turned < 0 ? turned + 360 : turned;
}

/** A copy of one head's vector rotated to position `pos` by the engine's own RoPE (ops.ts applyRope). */
export function ropeHead(head: ArrayLike<number>, pos: number, geometry: RopeGeometry): Float32Array {
  const rotated = Float32Array.from(head);
  applyRope(rotated, pos, 1, geometry.headDim, geometry.layout, geometry.theta);
  return rotated;
}

/** An attention score as attention.ts computes it: q·k / √headDim (summed in float64 here). */
export function attentionScore(q: ArrayLike<number>, k: ArrayLike<number>): number {
  let dot = 0;
  for (let i = 0; i < q.length; i++) dot += q[i] * k[i];
  return dot / Math.sqrt(q.length);
}

/** The score of query q at position m against key k at position n, both rotated by the engine's RoPE. */
export function rotatedScore(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  m: number,
  n: number,
  geometry: RopeGeometry,
): number {
  return attentionScore(ropeHead(q, m, geometry), ropeHead(k, n, geometry));
}

export interface ShiftedScore {
  shift: number;
  queryPos: number;
  keyPos: number;
  score: number;
}

/** The rotated score with the query at m + s and the key at n + s, for each shift s. */
export function shiftedScores(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  m: number,
  n: number,
  shifts: readonly number[],
  geometry: RopeGeometry,
): ShiftedScore[] {
  return shifts.map((shift) => ({
    shift,
    queryPos: m + shift,
    keyPos: n + shift,
    score: rotatedScore(q, k, m + shift, n + shift, geometry),
  }));
}

/**
 * How many distances the score-by-distance chart draws at most: all of a short context, and the first
 * 1,024 positions of a long one (a model may have 2^20). The cost of the chart must not grow with the
 * context: it is one RoPE and one dot product per distance.
 */
export const MAX_CURVE_DISTANCES = 1024;

/**
 * The rotated score as a function of distance alone: entry d is the score with the key at position 0 and
 * the query at position d, for d = 0 … count−1 (by the invariance, any m − n = d gives the same).
 */
export function scoreByDistance(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  count: number,
  geometry: RopeGeometry,
): Float64Array {
  const keyAtZero = ropeHead(k, 0, geometry);
  const scores = new Float64Array(count);
  for (let d = 0; d < count; d++) scores[d] = attentionScore(ropeHead(q, d, geometry), keyAtZero);
  return scores;
}

/** The rows of the sinusoidal table the figure computes at most (its first positions), whatever the context. */
export const MAX_SINUSOID_ROWS = 1024;

/** One entry of the sinusoidal table, PE[position, dimension], with the formula's parts. */
export function sinusoidalEntry(position: number, dimension: number, dim: number, base = 10000) {
  const i = Math.floor(dimension / 2);
  const frequency = 1 / Math.pow(base, (2 * i) / dim);
  const angle = position * frequency;
  return {
    i,
    fn: dimension % 2 === 0 ? ('sin' as const) : ('cos' as const),
    frequency,
    angle,
    wavelength: (2 * Math.PI) / frequency,
    value: dimension % 2 === 0 ? Math.sin(angle) : Math.cos(angle),
  };
}

/**
 * The sinusoidal position table of "Attention is all you need" ([positions, dim], row-major):
 * PE[p, 2i] = sin(p / base^(2i/dim)), PE[p, 2i+1] = cos(p / base^(2i/dim)). It is added to the embeddings.
 */
export function sinusoidalTable(positions: number, dim: number, base = 10000): Float32Array {
  const table = new Float32Array(positions * dim);
  for (let p = 0; p < positions; p++) {
    for (let d = 0; d < dim; d++) table[p * dim + d] = sinusoidalEntry(p, d, dim, base).value;
  }
  return table;
}

/** The tokens with BOS kept first and the rest in reverse order: the same words, shuffled. */
export function reversedTokens(tokens: readonly number[]): number[] {
  return tokens.length === 0 ? [] : [tokens[0], ...tokens.slice(1).reverse()];
}

/** Where the token at position t of a T-token text sits once the text is reversed (BOS stays at 0). */
export function reversedPosition(t: number, T: number): number {
  return t === 0 ? 0 : T - t;
}

/** One layer's queries and keys (before and after RoPE), [T, heads, headDim] each. */
export interface LayerQk {
  q: Float32Array;
  k: Float32Array;
  qRope: Float32Array;
  kRope: Float32Array;
}

export interface HeadShape {
  T: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/** q_t · k_s / √headDim for head h, every query t and key s (no mask): [T, T], row-major. */
export function allScores(q: Float32Array, k: Float32Array, shape: HeadShape, h: number): Float64Array {
  const { T, nHeads, nKvHeads, headDim } = shape;
  const g = kvHeadOf(h, nHeads, nKvHeads);
  const scores = new Float64Array(T * T);
  for (let t = 0; t < T; t++) {
    const query = headVector(q, nHeads, headDim, t, h);
    for (let s = 0; s < T; s++)
      scores[t * T + s] = attentionScore(query, headVector(k, nKvHeads, headDim, s, g));
  }
  return scores;
}

export interface OrderComparison {
  /** Query–key pairs compared (T², the mask ignored). */
  pairs: number;
  /** Largest |difference| between a pair's score in the text and in its reversal, before RoPE. */
  maxBefore: number;
  /** The same after RoPE. */
  maxAfter: number;
  /** Pairs whose score after RoPE moved by more than `tolerance`. */
  changedAfter: number;
}

/**
 * Compares every query–key pair's score in a text with the same two tokens' score in the reversed text
 * (each token found at its new position), before and after RoPE.
 */
export function compareOrders(
  written: LayerQk,
  reversed: LayerQk,
  shape: HeadShape,
  h: number,
  tolerance = 1e-4,
): OrderComparison {
  const { T } = shape;
  const before = [allScores(written.q, written.k, shape, h), allScores(reversed.q, reversed.k, shape, h)];
  const after = [
    allScores(written.qRope, written.kRope, shape, h),
    allScores(reversed.qRope, reversed.kRope, shape, h),
  ];
  let maxBefore = 0;
  let maxAfter = 0;
  let changedAfter = 0;
  for (let t = 0; t < T; t++) {
    for (let s = 0; s < T; s++) {
      const here = t * T + s;
      const there = reversedPosition(t, T) * T + reversedPosition(s, T);
      maxBefore = Math.max(maxBefore, Math.abs(before[0][here] - before[1][there]));
      const moved = Math.abs(after[0][here] - after[1][there]);
      maxAfter = Math.max(maxAfter, moved);
      if (moved > tolerance) changedAfter++;
    }
  }
  return { pairs: T * T, maxBefore, maxAfter, changedAfter };
}
