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

/**
 * The tokens that end generation for a tokenizer: llama2.c's models end a story by starting the next one, so
 * only BOS stops them (as in llama2.c's `run`); our own models also stop at EOS.
 */
export function stopTokensFor(tokenizer: {
  family: 'llama2c' | 'bpe';
  bosId: number;
  eosId: number;
}): number[] {
  return tokenizer.family === 'llama2c' ? [tokenizer.bosId] : [tokenizer.bosId, tokenizer.eosId];
}

/** llama2.c's rule: 0, negative or too many steps mean "the whole context". */
export function clampSteps(steps: number, seqLen: number): number {
  return steps <= 0 || steps > seqLen ? seqLen : Math.floor(steps);
}

/** What one turn of the loop did: the pass it ran, the distribution it sampled from, and the token it chose. */
export interface LoopStep {
  /** 'prefill': the whole prompt in one batched pass; 'decode': the one token sampled last. */
  kind: 'prefill' | 'decode';
  /** The tokens this step's forward pass read. */
  read: number[];
  /** The logits of the last position read: the row the token was sampled from. */
  logits: Float32Array;
  /** The sampled token, and the position it will occupy. */
  token: number;
  position: number;
}

/**
 * The loop one turn at a time, for a caller that wants to look between turns (the course steps through it):
 * each `step()` runs the tokens not yet read through the model (the prompt at first, then the token sampled
 * last), which adds their keys and values to the KV cache, and samples the next token from the last row of
 * logits with the shared RNG. generateTokens is this loop run to its end, so both give the same tokens.
 */
export class GenerationLoop {
  readonly cache: KVCache;
  private pending: number[];

  constructor(
    private readonly model: Model,
    promptTokens: readonly number[],
    private readonly options: Pick<GenerateOptions, 'sampling' | 'rng' | 'kernels'>,
  ) {
    if (promptTokens.length === 0) throw new Error('generate: the prompt must hold at least one token (BOS)');
    if (promptTokens.length > model.config.seqLen) {
      throw new Error(
        `generate: the prompt is ${promptTokens.length} tokens; the context holds ${model.config.seqLen}`,
      );
    }
    this.cache = new KVCache(model.config);
    this.pending = [...promptTokens];
  }

  /** False once the context is full: the token sampled last would sit at position seqLen, never read. */
  get canStep(): boolean {
    return this.cache.length + this.pending.length <= this.cache.capacity;
  }

  step(): LoopStep {
    if (!this.canStep) throw new Error(`generate: the context of ${this.cache.capacity} positions is full`);
    const kind = this.cache.length === 0 ? 'prefill' : 'decode';
    const read = this.pending;
    const { logits } = forward(this.model, read, this.cache, {
      logits: 'last',
      kernels: this.options.kernels,
    });
    const token = sampleToken(logits, this.options.sampling, this.options.rng);
    this.pending = [token];
    return { kind, read, logits, token, position: this.cache.length };
  }
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

  const loop = new GenerationLoop(model, promptTokens, options);
  for (let position = n; position <= steps; position++) {
    const { token } = loop.step();
    if (stopTokens.includes(token)) return;
    yield { token, position, fromPrompt: false };
  }
}
