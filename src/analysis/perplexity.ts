/**
 * Perplexity of a text of any length: the model reads it in windows of its context, each window starting
 * afresh from BOS, and every token of the text is predicted once (the first of a window from BOS alone, the
 * rest from the window's earlier tokens). The mean negative log-likelihood over all of them, in nats, and its
 * exponential, the perplexity. A window that carried the previous one's end would give each token more
 * context (a lower perplexity) at the cost of more passes; this is the simple, stated choice.
 */
import { forward } from '../engine/forward.ts';
import { KVCache } from '../engine/kv-cache.ts';
import type { Model } from '../engine/model.ts';
import type { MatrixKernels } from '../kernels/reference.ts';
import { textSurprise } from './surprise.ts';

export interface Perplexity {
  /** Tokens predicted: every token of the text (BOS, added per window, is not counted). */
  tokens: number;
  /** Mean negative log-likelihood per token, in nats. */
  nll: number;
  /** e^nll. */
  perplexity: number;
  /** Windows (forward passes) it took, each at most the model's context long. */
  windows: number;
}

/** `textTokens` without BOS; `bosId` starts every window. */
export function perplexity(
  model: Model,
  textTokens: readonly number[],
  bosId: number,
  kernels: MatrixKernels,
): Perplexity {
  if (textTokens.length === 0) throw new Error('perplexity: the text has no tokens');
  const { seqLen, vocabSize } = model.config;
  if (seqLen < 2) throw new Error(`perplexity: a context of ${seqLen} position cannot predict anything`);
  const perWindow = seqLen - 1;
  let total = 0;
  let windows = 0;
  for (let start = 0; start < textTokens.length; start += perWindow) {
    const window = [bosId, ...textTokens.slice(start, start + perWindow)];
    const { logits } = forward(model, window, new KVCache(model.config), { kernels });
    total += textSurprise(window, logits, vocabSize).surprise.reduce((sum, s) => sum + s, 0);
    windows++;
  }
  const nll = total / textTokens.length;
  return { tokens: textTokens.length, nll, perplexity: Math.exp(nll), windows };
}
