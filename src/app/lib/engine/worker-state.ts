/**
 * What the engine worker holds between requests: the loaded model and tokenizer, the kernels the reader
 * chose, and the Trace of the last forward pass. The worker's chapter modules (views/) read it through
 * `requireModel` and `traceFor`, so each answers from the same model the figures of chapter 1 use.
 */
import { forward } from '../../../engine/forward.ts';
import { KVCache } from '../../../engine/kv-cache.ts';
import type { Model } from '../../../engine/model.ts';
import type { Trace } from '../../../engine/trace.ts';
import { selectKernels } from '../../../kernels/select.ts';
import type { Tokenizer } from '../../../tokenizers/tokenizer.ts';
import type { KernelChoice, ModelInfo } from './protocol.ts';

export interface Loaded {
  model: Model;
  tokenizer: Tokenizer;
  info: ModelInfo;
}

export const current: {
  loaded: Loaded | undefined;
  /** The kernels the reader chose last (the model info reports them). */
  choice: KernelChoice;
  /** The tokens and Trace of the newest traced pass (analyze, or traceFor). */
  lastPass: { tokens: number[]; trace: Trace } | undefined;
} = { loaded: undefined, choice: 'auto', lastPass: undefined };

export function setLoaded(loaded: Loaded): void {
  current.loaded = loaded;
  current.lastPass = undefined;
}

export function requireModel(): Loaded {
  if (!current.loaded) throw new Error('no model is loaded yet');
  return current.loaded;
}

/**
 * The Trace of a forward pass over exactly `tokens` (BOS first, as the analysis returned them): the last
 * pass's when it read the same tokens, else a new traced pass. Figures send the tokens they were drawn
 * for, so an answer can never belong to a different text than the figure shows.
 */
export function traceFor(tokens: readonly number[]): Trace {
  const { model } = requireModel();
  const last = current.lastPass;
  if (last && last.tokens.length === tokens.length && last.tokens.every((t, i) => t === tokens[i])) {
    return last.trace;
  }
  const { trace } = forward(model, [...tokens], new KVCache(model.config), {
    trace: true,
    logits: 'last',
    kernels: selectKernels(current.choice),
  });
  current.lastPass = { tokens: [...tokens], trace: trace };
  return trace;
}
