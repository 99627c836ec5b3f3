/**
 * Turning logits into the next token.
 *
 *   temperature T < MIN_SAMPLING_TEMPERATURE (0 included) → greedy: the highest logit wins.
 *   temperature T ≥ MIN_SAMPLING_TEMPERATURE → probabilities = softmax(logits / T); low T sharpens, high T
 *                                              flattens.
 *   then optional filters on the candidates, sorted by probability:
 *     top-k  keep the k most likely;
 *     min-p  keep those with p ≥ minP · p(most likely);
 *     top-p  keep the smallest prefix whose cumulative probability exceeds p ("nucleus");
 *   and one seeded coin picks among what is left, in proportion to probability.
 *
 * With only temperature and top-p this is llama2.c's sampler step for step, in float32 arithmetic (Math.fround
 * and Float32Array), so the same seed picks the same tokens as its `run`.
 */
import { argmax } from './ops.ts';
import type { XorShiftRng } from './rng.ts';

/**
 * Temperatures below this sample greedily, as 0 does. Two reasons: at T = 0.001 a logit lead of 0.02 already
 * gives odds of e^20 ≈ 5·10^8 to 1, so smaller temperatures change nothing a reader could see; and far
 * smaller ones break the arithmetic: logits / 1e-40 overflows float32 to ±Infinity, and Infinity − Infinity in
 * the softmax is NaN. The CLI and the page use this one constant and say when they apply it.
 */
export const MIN_SAMPLING_TEMPERATURE = 1e-3;

/** True when `temperature` means "greedy": 0, or too small to sample with (see MIN_SAMPLING_TEMPERATURE). */
export function samplesGreedily(temperature: number): boolean {
  return temperature < MIN_SAMPLING_TEMPERATURE;
}

export interface SamplingSettings {
  /** 0 (or anything below MIN_SAMPLING_TEMPERATURE) means greedy. */
  temperature: number;
  /** Keep only the k most likely tokens; 0 turns it off. */
  topK?: number;
  /** Nucleus threshold in (0, 1); 0 or ≥ 1 turns it off. */
  topP?: number;
  /** Keep tokens with p ≥ minP · max p; 0 turns it off. */
  minP?: number;
}

const f32 = Math.fround;

/** softmax(logits / temperature) in float32, the way llama2.c computes it. */
export function temperatureSoftmax(logits: Float32Array, temperature: number): Float32Array {
  const probs = new Float32Array(logits.length);
  const t = f32(temperature);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    probs[i] = logits[i] / t;
    if (probs[i] > max) max = probs[i];
  }
  let sum = 0;
  for (let i = 0; i < probs.length; i++) {
    probs[i] = Math.exp(probs[i] - max);
    sum = f32(sum + probs[i]);
  }
  for (let i = 0; i < probs.length; i++) probs[i] = probs[i] / sum;
  return probs;
}

/**
 * For each of `rows` rows of `width` logits: the largest logit and softmax's denominator at temperature 1,
 * Σ e^(logit − max), added in float32 in the order and precision of temperatureSoftmax, so that
 * e^(logit − max) / sum is its probability bit for bit without writing the whole distribution out (the
 * logit lens needs a few entries of each of its many rows).
 */
export function softmaxSumsRows(
  maxOut: Float32Array,
  sumOut: Float32Array,
  logits: Float32Array,
  rows: number,
  width: number,
): void {
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * width, (r + 1) * width);
    let max = -Infinity;
    let at = 0;
    for (let i = 0; i < width; i++) {
      if (row[i] > max) {
        max = row[i];
        at = i;
      }
    }
    let sum = 0;
    for (let i = 0; i < at; i++) sum = f32(sum + f32(Math.exp(row[i] - max)));
    // From the largest term on (e^0 = 1) the float32 sum is ≥ 1, so a term below 2⁻²⁴, half its last bit,
    // rounds away to nothing: e^x < 2⁻²⁴ for x < −16.64, and skipping those terms changes no bit.
    const negligible = max - 17;
    for (let i = at; i < width; i++) {
      if (row[i] < negligible) continue;
      sum = f32(sum + f32(Math.exp(row[i] - max)));
    }
    maxOut[r] = max;
    sumOut[r] = sum;
  }
}

export interface Candidate {
  token: number;
  probability: number;
}

/**
 * The candidates that survive top-k, min-p and top-p, most likely first, as llama2.c orders them.
 * Before sorting, tokens below (1 − topP)/(n − 1) are dropped: they can never be in the nucleus, and
 * skipping them makes the sort cheap (llama2.c's trick; it does not change the result).
 */
export function filterCandidates(probs: Float32Array, settings: SamplingSettings): Candidate[] {
  const n = probs.length;
  const topP = settings.topP ?? 0;
  const nucleus = topP > 0 && topP < 1;
  const cutoff = nucleus ? f32(f32(1 - f32(topP)) / (n - 1)) : 0;
  let candidates: Candidate[] = [];
  for (let token = 0; token < n; token++) {
    if (probs[token] >= cutoff) candidates.push({ token, probability: probs[token] });
  }
  // Most likely first; equal probabilities keep vocabulary order so the result never depends on the sort.
  candidates.sort((a, b) => b.probability - a.probability || a.token - b.token);

  const topK = settings.topK ?? 0;
  if (topK > 0 && candidates.length > topK) candidates = candidates.slice(0, topK);
  const minP = settings.minP ?? 0;
  if (minP > 0 && candidates.length > 0) {
    const threshold = minP * candidates[0].probability;
    candidates = candidates.filter((c) => c.probability >= threshold);
  }
  if (nucleus) {
    let cumulative = 0;
    for (let i = 0; i < candidates.length; i++) {
      cumulative = f32(cumulative + candidates[i].probability);
      if (cumulative > topP) {
        candidates = candidates.slice(0, i + 1);
        break;
      }
    }
  }
  return candidates;
}

/** Walks the cumulative distribution until it passes `coin` (in [0, total)). */
function pickByCoin(candidates: Candidate[], coin: number): number {
  let cdf = 0;
  for (const c of candidates) {
    cdf = f32(cdf + c.probability);
    if (coin < cdf) return c.token;
  }
  return candidates[candidates.length - 1].token; // in case rounding left coin just above the total
}

function anyFilter(settings: SamplingSettings): boolean {
  const topP = settings.topP ?? 0;
  return (settings.topK ?? 0) > 0 || (settings.minP ?? 0) > 0 || (topP > 0 && topP < 1);
}

/** Chooses the next token from one row of logits. */
export function sampleToken(logits: Float32Array, settings: SamplingSettings, rng: XorShiftRng): number {
  if (samplesGreedily(settings.temperature)) return argmax(logits);
  const probs = temperatureSoftmax(logits, settings.temperature);
  const coin = rng.nextFloat();
  if (!anyFilter(settings)) {
    // Plain multinomial sampling over the whole vocabulary, in vocabulary order (llama2.c's sample_mult).
    const all = Array.from(probs, (probability, token) => ({ token, probability }));
    return pickByCoin(all, coin);
  }
  const candidates = filterCandidates(probs, settings);
  const keptMass = candidates.reduce((sum, c) => f32(sum + c.probability), 0);
  // Scaling the coin by the kept mass samples from the renormalised distribution without dividing.
  return pickByCoin(candidates, f32(coin * keptMass));
}

/** Checks settings and says precisely what is wrong (for the CLI and the app). */
export function validateSamplingSettings(s: SamplingSettings): void {
  const check = (ok: boolean, message: string) => {
    if (!ok) throw new RangeError(message);
  };
  check(
    Number.isFinite(s.temperature) && s.temperature >= 0,
    `temperature must be ≥ 0, got ${s.temperature}`,
  );
  const topK = s.topK ?? 0;
  check(Number.isInteger(topK) && topK >= 0, `top-k must be a whole number ≥ 0, got ${topK}`);
  const topP = s.topP ?? 0;
  check(Number.isFinite(topP) && topP >= 0 && topP <= 1, `top-p must be between 0 and 1, got ${topP}`);
  const minP = s.minP ?? 0;
  check(Number.isFinite(minP) && minP >= 0 && minP <= 1, `min-p must be between 0 and 1, got ${minP}`);
}

/**
 * The whole distribution sampleToken draws from, as one probability per vocabulary entry: softmax(logits / T),
 * with the tokens the filters drop set to 0 and the rest renormalised to sum to 1 (greedy: all of it on the
 * highest logit). Speculative decoding needs it written out, to compare the draft's and the target's.
 */
export function samplingDistribution(logits: Float32Array, settings: SamplingSettings): Float64Array {
  const distribution = new Float64Array(logits.length);
  if (samplesGreedily(settings.temperature)) {
    distribution[argmax(logits)] = 1;
    return distribution;
  }
  const probs = temperatureSoftmax(logits, settings.temperature);
  const kept = anyFilter(settings)
    ? filterCandidates(probs, settings)
    : Array.from(probs, (probability, token) => ({ token, probability }));
  const keptMass = kept.reduce((sum, c) => sum + c.probability, 0);
  for (const { token, probability } of kept) distribution[token] = probability / keptMass;
  return distribution;
}
