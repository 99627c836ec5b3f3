/**
 * The whole next-token distribution at a glance: probabilities sorted from most to least likely, their
 * running total, and how many tokens it takes to cover a given share of the probability; and the
 * distribution at the reader's temperature, the one Generate samples from.
 */
import { argmax } from '../../../engine/ops.ts';
import { samplesGreedily, temperatureSoftmax } from '../../../engine/sampling.ts';

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

/** The next-token distribution at a temperature: what Generate samples from, and what the bars show. */
export interface DistributionAt {
  /** One probability per vocabulary entry; never NaN. */
  probabilities: Float32Array;
  /** True when the temperature is below MIN_SAMPLING_TEMPERATURE (or not a number): the most likely token
   * always wins, so all the probability is on it. */
  greedy: boolean;
}

/**
 * softmax(logits / temperature) with the engine's temperatureSoftmax, or, below the engine's greedy
 * threshold, all the probability on the highest logit (as sampleToken picks it). A temperature so small
 * that logits / T overflows would give NaN: the threshold keeps it from ever reaching the softmax.
 */
export function distributionAt(logits: Float32Array, temperature: number): DistributionAt {
  if (!Number.isFinite(temperature) || samplesGreedily(temperature)) {
    const probabilities = new Float32Array(logits.length);
    if (logits.length > 0) probabilities[argmax(logits)] = 1;
    return { probabilities, greedy: true };
  }
  return { probabilities: temperatureSoftmax(logits, temperature), greedy: false };
}

/** A temperature as the page writes it: one decimal from 0.1 up, two significant digits below. */
export function temperatureText(temperature: number): string {
  return temperature >= 0.1 || temperature === 0 ? temperature.toFixed(1) : temperature.toPrecision(2);
}
