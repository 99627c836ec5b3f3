/**
 * The arithmetic of one attention head, taken apart so that a page or the CLI can show every step of it:
 * one score as the sum of its headDim products, the softmax of a row as numerators over a denominator, the
 * output as a sum of weighted values, the √d scale on random vectors, and the change in the next-token
 * distribution when an attention row is overridden. Pure functions (no Svelte, no DOM, no Node I/O) over the
 * Trace's arrays; sums in float64, so they check the engine's float32 rather than repeat it.
 */
import { mulberry32, normalSampler } from '../engine/init.ts';

/** Head `head`'s rows of a Trace tensor shaped [T, heads, headDim], as one [T, headDim] copy. */
export function headRows(
  data: ArrayLike<number>,
  T: number,
  heads: number,
  headDim: number,
  head: number,
): Float32Array {
  const rows = new Float32Array(T * headDim);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < headDim; i++) rows[t * headDim + i] = data[(t * heads + head) * headDim + i];
  return rows;
}

/** Head `head`'s [T, S] matrix of a Trace tensor shaped [H, T, S] (scores or weights), as a copy. */
export function headMatrix(data: Float32Array, T: number, S: number, head: number): Float32Array {
  return data.slice(head * T * S, (head + 1) * T * S);
}

/** One score taken apart: q·k / √d as its d products, their sum, and the scale. */
export interface DotBreakdown {
  /** terms[i] = q[i] · k[i]. */
  terms: Float64Array;
  /** Σ terms: the dot product q·k. */
  sum: number;
  /** 1 / √d, d = the head's width. */
  scale: number;
  /** sum · scale: the score. */
  score: number;
}

export function dotBreakdown(q: ArrayLike<number>, k: ArrayLike<number>): DotBreakdown {
  if (q.length !== k.length) throw new Error(`dotBreakdown: q has ${q.length} numbers, k ${k.length}`);
  const terms = new Float64Array(q.length);
  let sum = 0;
  for (let i = 0; i < q.length; i++) sum += terms[i] = q[i] * k[i];
  const scale = 1 / Math.sqrt(q.length);
  return { terms, sum, scale, score: sum * scale };
}

/**
 * Every query against every key, q_t · k_s / √d, the mask ignored ([T, T], row-major): what the scores
 * would be if a token could read the ones after it. Below the diagonal they are the Trace's scores.
 */
export function unmaskedScores(q: ArrayLike<number>, k: ArrayLike<number>, T: number, headDim: number) {
  const scores = new Float64Array(T * T);
  const scale = 1 / Math.sqrt(headDim);
  for (let t = 0; t < T; t++) {
    for (let s = 0; s < T; s++) {
      let dot = 0;
      for (let i = 0; i < headDim; i++) dot += q[t * headDim + i] * k[s * headDim + i];
      scores[t * T + s] = dot * scale;
    }
  }
  return scores;
}

/** The softmax of a row of scores, step by step: e^(score − max) over their sum. */
export interface SoftmaxBreakdown {
  /** The largest visible score (subtracted first, so no e^x overflows). */
  max: number;
  /** e^(score_s − max) for each visible key s. */
  numerators: Float64Array;
  /** Σ numerators. */
  denominator: number;
  /** numerators / denominator: the attention weights; they sum to 1. */
  weights: Float64Array;
}

/** Softmax over the first `visible` scores of a row (the keys the causal mask lets the query see). */
export function softmaxBreakdown(scores: ArrayLike<number>, visible: number): SoftmaxBreakdown {
  let max = -Infinity;
  for (let s = 0; s < visible; s++) max = Math.max(max, scores[s]);
  const numerators = new Float64Array(visible);
  let denominator = 0;
  for (let s = 0; s < visible; s++) denominator += numerators[s] = Math.exp(scores[s] - max);
  return { max, numerators, denominator, weights: numerators.map((n) => n / denominator) };
}

/** A head's output for one query: the weighted values, and their sum. */
export interface WeightedSum {
  /** [visible, headDim]: weight_s · v_s for each visible key s. */
  contributions: Float64Array;
  /** [headDim]: Σ_s weight_s · v_s. */
  output: Float64Array;
}

/** Σ_s weights[s] · values[s] over the first `visible` rows of values ([≥visible, headDim]). */
export function weightedSum(
  weights: ArrayLike<number>,
  values: ArrayLike<number>,
  visible: number,
  headDim: number,
): WeightedSum {
  const contributions = new Float64Array(visible * headDim);
  const output = new Float64Array(headDim);
  for (let s = 0; s < visible; s++) {
    for (let i = 0; i < headDim; i++) {
      const part = weights[s] * values[s * headDim + i];
      contributions[s * headDim + i] = part;
      output[i] += part;
    }
  }
  return { contributions, output };
}

/** What the √d experiment found at one width. */
export interface ScaleRow {
  width: number;
  /** Variance of q·k over the samples (it grows like the width). */
  rawVariance: number;
  /** Variance of q·k / √width (it stays near 1). */
  scaledVariance: number;
  /** Mean, over rows of `keys` such dot products, of the row's largest softmax weight: unscaled … */
  rawPeak: number;
  /** … and scaled by 1/√width. */
  scaledPeak: number;
}

/**
 * A toy, computed: q and k of `width` independent standard-normal numbers (mean 0, variance 1), `samples`
 * rows of `keys` dot products each, from a seeded generator. Each product q_i·k_i has variance 1, so their
 * sum has variance `width`, and dividing by √width brings it back to 1. The peaks say what that does to
 * softmax: unscaled, wide heads put nearly all the weight on one key.
 */
export function scaleExperiment(width: number, samples: number, keys: number, seed: number): ScaleRow {
  const normal = normalSampler(mulberry32(seed));
  const scale = 1 / Math.sqrt(width);
  const dots: number[] = [];
  let rawPeak = 0;
  let scaledPeak = 0;
  const q = new Float64Array(width);
  const row = new Float64Array(keys);
  for (let sample = 0; sample < samples; sample++) {
    for (let i = 0; i < width; i++) q[i] = normal();
    for (let s = 0; s < keys; s++) {
      let dot = 0;
      for (let i = 0; i < width; i++) dot += q[i] * normal();
      row[s] = dot;
      dots.push(dot);
    }
    rawPeak += largestWeight(row, 1);
    scaledPeak += largestWeight(row, scale);
  }
  const rawVariance = variance(dots);
  return {
    width,
    rawVariance,
    scaledVariance: rawVariance * scale * scale,
    rawPeak: rawPeak / samples,
    scaledPeak: scaledPeak / samples,
  };
}

function variance(values: readonly number[]): number {
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  return values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length;
}

/** The largest entry of softmax(row · factor). */
function largestWeight(row: Float64Array, factor: number): number {
  const { weights } = softmaxBreakdown(
    row.map((v) => v * factor),
    row.length,
  );
  return weights.reduce((best, w) => Math.max(best, w), 0);
}

/** One token in the comparison of two next-token distributions. */
export interface TokenChange {
  token: number;
  before: number;
  after: number;
}

export interface DistributionChange {
  /** The `count` likeliest tokens after, then any of the `count` likeliest before not among them. */
  rows: TokenChange[];
  /** The likeliest token before and after. */
  topBefore: number;
  topAfter: number;
  /** ½ Σ |after − before|: the share of the probability that moved (0 = none, 1 = all). */
  totalVariation: number;
}

/** Compares two probability distributions over the vocabulary. */
export function compareDistributions(
  before: ArrayLike<number>,
  after: ArrayLike<number>,
  count: number,
): DistributionChange {
  if (before.length !== after.length)
    throw new Error(`compareDistributions: ${before.length} and ${after.length} probabilities`);
  const ranked = (p: ArrayLike<number>) =>
    Array.from({ length: p.length }, (_, i) => i)
      .sort((a, b) => p[b] - p[a] || a - b)
      .slice(0, count);
  const topAfter = ranked(after);
  const topBefore = ranked(before);
  const tokens = [...topAfter, ...topBefore.filter((token) => !topAfter.includes(token))];
  let moved = 0;
  for (let i = 0; i < before.length; i++) moved += Math.abs(after[i] - before[i]);
  return {
    rows: tokens.map((token) => ({ token, before: before[token], after: after[token] })),
    topBefore: topBefore[0] ?? 0,
    topAfter: topAfter[0] ?? 0,
    totalVariation: moved / 2,
  };
}
