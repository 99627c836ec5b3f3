/**
 * Continuous batching: many generations share every forward pass.
 *
 * Decoding one token reads every weight of the model to do very little arithmetic with it, so its speed is the
 * memory's, not the processor's. Running several sequences in the same pass (forwardBatch) reads the weights
 * once for all of them. Requests join and leave between steps — a new request's whole prompt is prefilled in
 * the same pass as the others' decode steps, and a finished one frees its place at once — which is how
 * inference servers (Orca's iteration-level scheduling, vLLM) keep the hardware busy.
 *
 * Each request keeps its own KV cache, sampler settings and RNG, so it gets exactly the tokens generateTokens
 * gives it alone (llama2.c's semantics: `steps` counts positions including the prompt; a stop token ends it).
 */
import type { MatrixKernels } from '../kernels/reference.ts';
import { forwardBatch } from './forward.ts';
import { clampSteps } from './generate.ts';
import { KVCache } from './kv-cache.ts';
import type { Model } from './model.ts';
import type { XorShiftRng } from './rng.ts';
import { sampleToken, type SamplingSettings } from './sampling.ts';

export interface GenerationRequest {
  /** The caller's name for it, unique among the requests the batcher holds. */
  id: number;
  /** The prompt, BOS first. */
  promptTokens: readonly number[];
  /** Positions to fill, prompt included (clamped to the context, 0 = all of it), as in generateTokens. */
  steps: number;
  sampling: SamplingSettings;
  rng: XorShiftRng;
  /** Tokens that end this request when sampled (not emitted). */
  stopTokens?: readonly number[];
}

/** A token a step sampled for a request, and the position it occupies. */
export interface BatchedToken {
  id: number;
  token: number;
  position: number;
}

export interface FinishedRequest {
  id: number;
  /** 'stop token': one was sampled; 'steps': its positions are filled; 'cancelled': the caller stopped it. */
  reason: 'stop token' | 'steps' | 'cancelled';
}

/** What one step did. */
export interface BatchStep {
  /** Sequences in this step's pass, and the tokens (rows) it read: prompts being prefilled count whole. */
  sequences: number;
  rows: number;
  tokens: BatchedToken[];
  finished: FinishedRequest[];
}

/** A request with its own cache and the tokens its next pass reads (its prompt at first, then its last token). */
interface Running {
  request: GenerationRequest;
  steps: number;
  cache: KVCache;
  pending: readonly number[];
}

export class ContinuousBatcher {
  private readonly running: Running[] = [];
  private readonly waiting: GenerationRequest[] = [];
  private readonly cancelled: FinishedRequest[] = [];

  /** `maxBatch`: the most sequences in one pass; later requests wait for a place (default: no limit). */
  constructor(
    private readonly model: Model,
    private readonly options: { kernels: MatrixKernels; maxBatch?: number },
  ) {
    const { maxBatch } = options;
    if (maxBatch !== undefined && (!Number.isInteger(maxBatch) || maxBatch < 1))
      throw new Error(`ContinuousBatcher: maxBatch must be a whole number ≥ 1, got ${maxBatch}`);
  }

  /** Requests running or waiting. */
  get size(): number {
    return this.running.length + this.waiting.length;
  }

  /** Adds a request; it joins the next step (or waits while the batch is full). */
  submit(request: GenerationRequest): void {
    const { id, promptTokens } = request;
    if (this.holds(id)) throw new Error(`ContinuousBatcher: request ${id} is already running or waiting`);
    if (promptTokens.length === 0)
      throw new Error(`ContinuousBatcher: request ${id} has no prompt tokens (it needs at least BOS)`);
    if (promptTokens.length > this.model.config.seqLen)
      throw new Error(
        `ContinuousBatcher: request ${id}'s prompt is ${promptTokens.length} tokens; the context holds ${this.model.config.seqLen}`,
      );
    this.waiting.push(request);
  }

  /** Stops a request between steps; it is reported as finished by the next step. False if unknown. */
  cancel(id: number): boolean {
    const index = this.running.findIndex((r) => r.request.id === id);
    if (index >= 0) this.running.splice(index, 1);
    const waitingIndex = this.waiting.findIndex((request) => request.id === id);
    if (waitingIndex >= 0) this.waiting.splice(waitingIndex, 1);
    const found = index >= 0 || waitingIndex >= 0;
    if (found) this.cancelled.push({ id, reason: 'cancelled' });
    return found;
  }

  /** One pass over every running request (admitting waiting ones first), and one sampled token for each. */
  step(): BatchStep {
    const finished = this.cancelled.splice(0);
    this.admitWaiting(finished);
    if (this.running.length === 0) return { sequences: 0, rows: 0, tokens: [], finished };

    const batch = this.running.map(({ pending, cache }) => ({ tokens: pending, cache }));
    const rows = batch.reduce((sum, { tokens }) => sum + tokens.length, 0);
    const logits = forwardBatch(this.model, batch, { kernels: this.options.kernels, logits: 'last' });

    const tokens: BatchedToken[] = [];
    const stillRunning = this.running.filter((running, i) => {
      const { request, cache, steps } = running;
      const token = sampleToken(logits[i], request.sampling, request.rng);
      const position = cache.length;
      if (request.stopTokens?.includes(token)) {
        finished.push({ id: request.id, reason: 'stop token' });
        return false;
      }
      tokens.push({ id: request.id, token, position });
      if (position === steps) {
        finished.push({ id: request.id, reason: 'steps' });
        return false;
      }
      running.pending = [token];
      return true;
    });
    this.running.splice(0, this.running.length, ...stillRunning);
    return { sequences: batch.length, rows, tokens, finished };
  }

  private holds(id: number): boolean {
    return this.running.some((r) => r.request.id === id) || this.waiting.some((request) => request.id === id);
  }

  /** Moves waiting requests into the batch while there is room; one whose steps end inside its prompt is done. */
  private admitWaiting(finished: FinishedRequest[]): void {
    const maxBatch = this.options.maxBatch ?? Infinity;
    while (this.waiting.length > 0 && this.running.length < maxBatch) {
      const request = this.waiting.shift()!;
      const steps = clampSteps(request.steps, this.model.config.seqLen);
      // As in generateTokens: with fewer positions than the prompt, nothing is sampled.
      if (steps < request.promptTokens.length) {
        finished.push({ id: request.id, reason: 'steps' });
        continue;
      }
      const cache = new KVCache(this.model.config);
      this.running.push({ request, steps, cache, pending: request.promptTokens });
    }
  }
}
