/**
 * The whole next-token distribution at a glance: probabilities sorted from most to least likely, their
 * running total, and how many tokens it takes to cover a given share of the probability.
 */

export interface Coverage {
  /** Probabilities, most likely first. */
  sorted: Float32Array;
  /** cumulative[i] = sorted[0] + … + sorted[i] (in float64, so the sum is exact enough to read). */
  cumulative: Float64Array;
  /** For each threshold, the fewest tokens whose probabilities add up to at least it. */
  tokensFor: { threshold: number; count: number }[];
}

export function coverage(probabilities: Float32Array, thresholds: readonly number[] = [0.5, 0.9]): Coverage {
  const sorted = Float32Array.from(probabilities).sort().reverse();
  const cumulative = new Float64Array(sorted.length);
  let sum = 0;
  sorted.forEach((p, i) => (cumulative[i] = sum += p));
  const total = sum;
  const tokensFor = thresholds.map((threshold) => {
    // The total of float32 probabilities can fall a hair short of 1: compare against the share of it.
    const index = cumulative.findIndex((c) => c >= threshold * total);
    return { threshold, count: index < 0 ? sorted.length : index + 1 };
  });
  return { sorted, cumulative, tokensFor };
}
