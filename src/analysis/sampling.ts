/**
 * What the sampler does to one row of logits, laid out to be seen: the whole vocabulary's probabilities at a
 * temperature, most likely first; how many of them each filter lets through (top-k, then min-p, then top-p,
 * the engine's order); the survivors' renormalised probabilities (the chance the sampler picks each); and
 * one seeded draw, with its coin. Everything is computed by the engine's own sampler (src/engine/sampling.ts):
 * the survivors are exactly the candidates `filterCandidates` returns, which `sampleToken` draws from.
 */
import { argmax } from '../engine/ops.ts';
import { XorShiftRng } from '../engine/rng.ts';
import {
  filterCandidates,
  sampleToken,
  samplesGreedily,
  temperatureSoftmax,
  type SamplingSettings,
} from '../engine/sampling.ts';

export interface SortedDistribution {
  settings: SamplingSettings;
  /** The temperature is below MIN_SAMPLING_TEMPERATURE: the most likely token always wins. */
  greedy: boolean;
  /** softmax(logits / T) in vocabulary order (temperatureSoftmax); when greedy, all of it on the argmax. */
  probabilities: Float32Array;
  /** Token ids, most likely first; equal probabilities in vocabulary order, as the sampler sorts them. */
  order: Int32Array;
  /** sorted[i] = probabilities[order[i]]. */
  sorted: Float32Array;
  /**
   * How many tokens of `order` are left after each filter, applied in the engine's order (a filter that is
   * off keeps everything it is given). The survivors are always the first `kept` tokens of `order`.
   */
  afterTopK: number;
  afterMinP: number;
  kept: number;
  /** Which filters are on, by the engine's rules: top-k > 0, min-p > 0, 0 < top-p < 1. */
  active: { topK: boolean; minP: boolean; topP: boolean };
  /** The survivors' total probability, summed in float32 in the sampler's order. */
  keptMass: number;
  /**
   * The chance the sampler picks order[i], for i < kept: sorted[i] / keptMass (the sampler scales its coin by
   * the kept mass instead of dividing). With no filter on, the sampler walks the whole vocabulary with an
   * unscaled coin, so the chance is the probability itself.
   */
  renormalised: Float32Array;
}

/** Which filters a setting turns on (the same tests as the engine's sampler). */
export function activeFilters(settings: SamplingSettings) {
  const topP = settings.topP ?? 0;
  return { topK: (settings.topK ?? 0) > 0, minP: (settings.minP ?? 0) > 0, topP: topP > 0 && topP < 1 };
}

/** Token ids below this fit beside a float32's 32 bits in one float64 key (32 + 21 = 53 bits). */
const PACKED_IDS = 2 ** 21;

/**
 * The tokens, most likely first, ties by id: the order in which filterCandidates sorts its candidates.
 * The figures re-sort on every slider move, so the sort is a plain numeric one of packed keys (10 times
 * faster than a comparator here): a non-negative float32's bits order like its value, so (2^32 − 1 − bits)
 * · 2^21 + id sorts by probability, descending, then by id.
 */
function sortedOrder(probabilities: Float32Array): Int32Array {
  const V = probabilities.length;
  if (V >= PACKED_IDS) {
    return Int32Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  }
  const bits = new Uint32Array(probabilities.buffer, probabilities.byteOffset, V);
  const keys = new Float64Array(V);
  for (let id = 0; id < V; id++) keys[id] = (0xffffffff - bits[id]) * PACKED_IDS + id;
  keys.sort();
  return Int32Array.from(keys, (key) => key % PACKED_IDS);
}

/** The distribution the sampler draws from for this row of logits and these settings. */
export function sortedDistribution(logits: Float32Array, settings: SamplingSettings): SortedDistribution {
  const greedy = samplesGreedily(settings.temperature);
  const active = activeFilters(settings);
  let probabilities: Float32Array;
  if (greedy) {
    probabilities = new Float32Array(logits.length);
    probabilities[argmax(logits)] = 1;
  } else {
    probabilities = temperatureSoftmax(logits, settings.temperature);
  }
  const order = sortedOrder(probabilities);
  const sorted = Float32Array.from(order, (token) => probabilities[token]);
  const V = logits.length;
  let afterTopK = V;
  let afterMinP = V;
  let kept = V;
  if (greedy) {
    afterTopK = afterMinP = kept = 1;
  } else if (active.topK || active.minP || active.topP) {
    // The stages on the sorted list, by the engine's rules (top-k: the first k; min-p: p ≥ minP · max p)…
    afterTopK = active.topK ? Math.min(settings.topK!, V) : V;
    afterMinP = afterTopK;
    if (active.minP) {
      const threshold = settings.minP! * sorted[0];
      while (afterMinP > 0 && sorted[afterMinP - 1] < threshold) afterMinP--;
    }
    // …and what survives all of them is what the engine's own filter returns, the list sampleToken draws from.
    kept = filterCandidates(probabilities, settings).length;
  }
  let keptMass = 0;
  for (let i = 0; i < kept; i++) keptMass = Math.fround(keptMass + sorted[i]);
  const scaled = !greedy && (active.topK || active.minP || active.topP);
  const renormalised = Float32Array.from(sorted.subarray(0, kept), (p) => (scaled ? p / keptMass : p));
  return {
    settings: { ...settings },
    greedy,
    probabilities,
    order,
    sorted,
    afterTopK,
    afterMinP,
    kept,
    active,
    keptMass,
    renormalised,
  };
}

/** Which step removed the token at `rank` of the sorted order, or 'kept'. */
export function removedBy(
  distribution: SortedDistribution,
  rank: number,
): 'kept' | 'greedy' | 'top-k' | 'min-p' | 'top-p' {
  if (rank < distribution.kept) return 'kept';
  if (distribution.greedy) return 'greedy';
  if (rank >= distribution.afterTopK) return 'top-k';
  if (rank >= distribution.afterMinP) return 'min-p';
  return 'top-p';
}

/** One seeded draw: the coin the seed gives, where it lands, and the token the engine's sampler picks. */
export interface SeededDraw {
  seed: number;
  /** The RNG's first float for this seed, in [0, 1); unused (undefined) when greedy. */
  coin: number | undefined;
  /** The coin on the survivors' scale: coin × keptMass with a filter on, the coin itself without. */
  landing: number | undefined;
  /** sampleToken(logits, settings, new XorShiftRng(seed)): the engine's pick. */
  token: number;
  /** Its rank in the sorted order. */
  rank: number;
}

export function seededDraw(
  logits: Float32Array,
  settings: SamplingSettings,
  seed: number,
  distribution: SortedDistribution = sortedDistribution(logits, settings),
): SeededDraw {
  const token = sampleToken(logits, settings, new XorShiftRng(seed));
  const rank = distribution.order.indexOf(token);
  if (distribution.greedy) return { seed, coin: undefined, landing: undefined, token, rank };
  const coin = new XorShiftRng(seed).nextFloat();
  const { topK, minP, topP } = distribution.active;
  const landing = topK || minP || topP ? Math.fround(coin * distribution.keptMass) : coin;
  return { seed, coin, landing, token, rank };
}
