/**
 * The autoregressive loop: run the prompt through the model, sample a token, feed it back, repeat.
 *
 * The semantics are llama2.c's `run`: `steps` counts positions including the prompt; the prompt is
 * "teacher-forced" (its tokens are emitted as they are, not sampled); generation stops when the stop token
 * (BOS in llama2.c's convention: it starts the next story) is sampled or the positions run out.
 * Unlike llama2.c, the prompt goes through the model in one batched pass (prefill), then each new token is
 * one decode step that reuses the KV cache.
 */
import type { MatrixKernels } from '../kernels/reference.ts';
import { forward } from './forward.ts';
import { KVCache } from './kv-cache.ts';
import type { Model } from './model.ts';
import type { XorShiftRng } from './rng.ts';
import { sampleToken, type SamplingSettings } from './sampling.ts';

export interface GenerateOptions {
  /** Positions to fill, prompt included; clamped to the model's seqLen (0 means seqLen). */
  steps: number;
  sampling: SamplingSettings;
  rng: XorShiftRng;
  /** Tokens that end generation when sampled (llama2.c: BOS = 1). */
  stopTokens?: readonly number[];
  /** The kernels every forward pass runs on (see forward.ts): the caller chooses. */
  kernels: MatrixKernels;
}

export interface GeneratedToken {
  token: number;
  /** The position this token will occupy. */
  position: number;
  /** True for prompt tokens (emitted as given), false for sampled ones. */
  fromPrompt: boolean;
}

/** llama2.c's rule: 0, negative or too many steps mean "the whole context". */
export function clampSteps(steps: number, seqLen: number): number {
  return steps <= 0 || steps > seqLen ? seqLen : Math.floor(steps);
}

/**
 * Yields every token after the first prompt token, in order: the rest of the prompt, then sampled tokens.
 * The first prompt token (usually BOS) is the starting point and is not yielded.
 */
export function* generateTokens(
  model: Model,
  promptTokens: readonly number[],
  options: GenerateOptions,
): Generator<GeneratedToken> {
  if (promptTokens.length === 0) throw new Error('generate: the prompt must hold at least one token (BOS)');
  const steps = clampSteps(options.steps, model.config.seqLen);
  const stopTokens = options.stopTokens ?? [];

  // Prompt tokens fill positions 1 … n−1 (position 0 is the first token itself), as far as `steps` allows.
  const n = promptTokens.length;
  const lastPromptPosition = Math.min(n - 1, steps);
  for (let position = 1; position <= lastPromptPosition; position++) {
    yield { token: promptTokens[position], position, fromPrompt: true };
  }
  if (steps < n) return;

  const cache = new KVCache(model.config);
  let logits = forward(model, promptTokens, cache, { logits: 'last', kernels: options.kernels }).logits;
  for (let position = n; position <= steps; position++) {
    const token = sampleToken(logits, options.sampling, options.rng);
    if (stopTokens.includes(token)) return;
    yield { token, position, fromPrompt: false };
    if (position === steps) return;
    logits = forward(model, [token], cache, { logits: 'last', kernels: options.kernels }).logits;
  }
}
