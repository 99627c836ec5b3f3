/**
 * Speculative decoding: a small draft model guesses the next k tokens one by one (cheap), then the large
 * target model checks all k in one pass (about the cost of one decode step, since decoding is limited by
 * reading the weights, not by arithmetic). Every guess the target agrees with is a token gained for free.
 *
 * The accept/reject rule (Leviathan et al. 2023; Chen et al. 2023) keeps the output distributed exactly as
 * the target alone would sample it: with p the target's and q the draft's distribution at a position, the
 * draft's token x is kept with probability min(1, p(x)/q(x)); at the first rejection, a token is drawn from
 * the leftover max(0, p − q) (renormalised) and the round ends; if all k are kept, one more is drawn from the
 * target's next distribution, which the checking pass computed anyway. Greedy decoding keeps x when it is the
 * target's argmax, so its text is exactly the target's.
 *
 * Both models keep a KV cache; after a rejection each is cut back (cache.length) to the tokens kept, and the
 * entries past it are overwritten by the next round.
 */
import type { MatrixKernels } from '../kernels/reference.ts';
import { forward } from './forward.ts';
import { clampSteps, type GeneratedToken } from './generate.ts';
import { KVCache } from './kv-cache.ts';
import type { Model } from './model.ts';
import type { XorShiftRng } from './rng.ts';
import { samplesGreedily, samplingDistribution, type SamplingSettings } from './sampling.ts';

export interface SpeculativeOptions {
  /** Positions to fill, prompt included, as in generateTokens. */
  steps: number;
  sampling: SamplingSettings;
  rng: XorShiftRng;
  stopTokens?: readonly number[];
  kernels: MatrixKernels;
  /** The small model that guesses; it must share the target's vocabulary. */
  draft: Model;
  /** Tokens the draft guesses per round (k ≥ 1). */
  draftTokens: number;
}

/** What a run did: how many guesses were made and kept, and how many passes each model ran. */
export interface SpeculativeStats {
  proposed: number;
  accepted: number;
  targetPasses: number;
  draftPasses: number;
}

/**
 * Yields every token after the first prompt token, like generateTokens (prompt tokens first, then sampled
 * ones), keeping count in `stats` as it goes (a caller can read it between tokens) and returning it. With
 * sampling, the same seed does not draw the same tokens as generateTokens (the coins are spent differently);
 * the distribution is the same.
 */
export function* speculativeGenerate(
  target: Model,
  promptTokens: readonly number[],
  options: SpeculativeOptions,
  stats: SpeculativeStats = { proposed: 0, accepted: 0, targetPasses: 0, draftPasses: 0 },
): Generator<GeneratedToken, SpeculativeStats> {
  const { draft, draftTokens, sampling, rng, kernels } = options;
  checkPair(target, draft, draftTokens, promptTokens);
  const steps = clampSteps(options.steps, target.config.seqLen);
  const stopTokens = options.stopTokens ?? [];

  const n = promptTokens.length;
  for (let position = 1; position <= Math.min(n - 1, steps); position++)
    yield { token: promptTokens[position], position, fromPrompt: true };
  if (steps < n) return stats;

  // The text so far; each cache holds a prefix of it, and each pass reads the rest ("pending").
  const text = [...promptTokens];
  const targetCache = new KVCache(target.config);
  const draftCache = new KVCache(draft.config);
  const distribution = (logits: Float32Array) => samplingDistribution(logits, sampling);

  while (text.length <= steps) {
    // 1. The draft guesses k tokens (fewer near the end: the round's extra token must fit too).
    const k = Math.min(draftTokens, steps - text.length);
    const guesses: number[] = [];
    const draftDistributions: Float64Array[] = [];
    let draftPending = text.slice(draftCache.length);
    for (let j = 0; j < k; j++) {
      const logits = forward(draft, draftPending, draftCache, { kernels, logits: 'last' }).logits;
      stats.draftPasses++;
      const q = distribution(logits);
      const guess = draw(q, rng, sampling);
      guesses.push(guess);
      draftDistributions.push(q);
      draftPending = [guess];
    }

    // 2. The target reads the pending text and every guess in one pass: row j is its distribution for guess j.
    const pending = text.slice(targetCache.length);
    const start = targetCache.length;
    const logits = forward(target, [...pending, ...guesses], targetCache, { kernels }).logits;
    stats.targetPasses++;
    const V = target.config.vocabSize;
    const row = (j: number) =>
      distribution(logits.subarray((pending.length - 1 + j) * V, (pending.length + j) * V));

    // 3. Keep guesses while the target agrees; the first refusal is replaced by a draw from what is left.
    stats.proposed += k;
    const emitted: number[] = [];
    let allKept = true;
    for (let j = 0; j < k; j++) {
      const p = row(j);
      if (keeps(guesses[j], p, draftDistributions[j], rng, sampling)) {
        emitted.push(guesses[j]);
        stats.accepted++;
        continue;
      }
      emitted.push(draw(leftover(p, draftDistributions[j]), rng, sampling));
      allKept = false;
      break;
    }
    if (allKept) emitted.push(draw(row(k), rng, sampling));

    // 4. Both caches forget what was not kept: the target holds the text but its newest token.
    const kept = emitted.length - 1; // guesses kept (the last emitted token is a fresh draw)
    targetCache.length = start + pending.length + kept;
    draftCache.length = Math.min(draftCache.length, targetCache.length);
    for (const token of emitted) {
      if (stopTokens.includes(token)) return stats;
      yield { token, position: text.length, fromPrompt: false };
      text.push(token);
    }
  }
  return stats;
}

/** The draft's guess x is kept with probability min(1, p(x)/q(x)); greedily, when it is the target's choice. */
function keeps(
  x: number,
  p: Float64Array,
  q: Float64Array,
  rng: XorShiftRng,
  sampling: SamplingSettings,
): boolean {
  if (samplesGreedily(sampling.temperature)) return p[x] === 1;
  return rng.nextFloat() * q[x] < p[x];
}

/** max(0, p − q), renormalised: the part of the target's distribution the draft under-proposed. */
function leftover(p: Float64Array, q: Float64Array): Float64Array {
  const rest = p.map((pi, i) => Math.max(0, pi - q[i]));
  const total = rest.reduce((sum, r) => sum + r, 0);
  // p = q exactly leaves nothing (a refusal is then impossible, but rounding): fall back to p itself.
  return total > 0 ? rest.map((r) => r / total) : p;
}

/** A token drawn from a written-out distribution with one coin (greedily: its only token). */
function draw(distribution: Float64Array, rng: XorShiftRng, sampling: SamplingSettings): number {
  if (samplesGreedily(sampling.temperature)) return distribution.indexOf(1);
  const coin = rng.nextFloat();
  let cumulative = 0;
  let last = 0;
  for (let token = 0; token < distribution.length; token++) {
    if (distribution[token] === 0) continue;
    cumulative += distribution[token];
    last = token;
    if (coin < cumulative) return token;
  }
  return last; // rounding left the coin just above the total
}

function checkPair(target: Model, draft: Model, draftTokens: number, promptTokens: readonly number[]): void {
  if (draft.config.vocabSize !== target.config.vocabSize)
    throw new Error(
      `speculative decoding: the draft's vocabulary has ${draft.config.vocabSize} tokens, the target's ${target.config.vocabSize}; they must share a tokenizer`,
    );
  if (!Number.isInteger(draftTokens) || draftTokens < 1)
    throw new Error(
      `speculative decoding: the draft must guess a whole number ≥ 1 of tokens, got ${draftTokens}`,
    );
  if (promptTokens.length === 0) throw new Error('generate: the prompt must hold at least one token (BOS)');
  if (draft.config.seqLen < target.config.seqLen)
    throw new Error(
      `speculative decoding: the draft reads ${draft.config.seqLen} positions, fewer than the target's ${target.config.seqLen}`,
    );
}
