/**
 * How surprised a model is by a text: for each token after the first, −ln p(token | the tokens before it),
 * read from the logits of one forward pass over the whole text (row t − 1 predicts token t, at temperature 1);
 * their mean, the negative log-likelihood per token (NLL, in nats); and the perplexity, e^(mean NLL): the
 * number of equally likely tokens the model's average uncertainty amounts to. This is the function a
 * `glassbox perplexity` command would call; pure, no I/O.
 */
import { XorShiftRng } from '../engine/rng.ts';

export interface TextSurprise {
  /** The text's tokens (BOS first). */
  tokens: number[];
  /** surprise[t − 1] = −ln p(tokens[t] | tokens[0..t−1]), in nats, for t = 1 … T − 1. */
  surprise: Float64Array;
  /** probability[t − 1] = p(tokens[t] | tokens before it) = e^(−surprise). */
  probability: Float64Array;
  /** The mean of `surprise` (NaN for a text of one token: nothing is predicted). */
  meanNll: number;
  /** e^meanNll. */
  perplexity: number;
}

/**
 * −ln p(token) under softmax(row) at temperature 1, in float64 as ln Σ e^(z − max) − (z_token − max), so no
 * exponent overflows.
 */
export function tokenSurpriseAt(row: ArrayLike<number>, token: number): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return Math.log(sum) - (row[token] - max);
}

/**
 * The surprise of every token of `tokens` from `logits` ([T, vocabSize], row-major: every position's row, as a
 * Trace holds them), each by tokenSurpriseAt.
 */
export function textSurprise(
  tokens: readonly number[],
  logits: Float32Array,
  vocabSize: number,
): TextSurprise {
  const T = tokens.length;
  if (logits.length !== T * vocabSize) {
    throw new Error(`textSurprise: ${logits.length} logits are not ${T} rows of ${vocabSize}`);
  }
  const surprise = new Float64Array(Math.max(0, T - 1));
  for (let t = 1; t < T; t++) {
    surprise[t - 1] = tokenSurpriseAt(logits.subarray((t - 1) * vocabSize, t * vocabSize), tokens[t]);
  }
  const probability = surprise.map((s) => Math.exp(-s));
  const meanNll = surprise.length > 0 ? surprise.reduce((a, b) => a + b, 0) / surprise.length : NaN;
  return { tokens: [...tokens], surprise, probability, meanNll, perplexity: Math.exp(meanNll) };
}

/**
 * The same tokens in a seeded random order, the first (BOS) kept first: a Fisher–Yates shuffle whose every
 * choice comes from the engine's xorshift64* RNG, so a seed always gives the same copy. (Each index is a
 * 32-bit random number mod i: its bias, at most i / 2^32, changes nothing a reader could see.)
 */
export function shuffledTokens(tokens: readonly number[], seed: number | bigint): number[] {
  const shuffled = [...tokens];
  const rng = new XorShiftRng(seed);
  for (let i = shuffled.length - 1; i >= 2; i--) {
    const j = 1 + (rng.nextU32() % i); // 1 … i: position 0 stays
    [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
  }
  return shuffled;
}
