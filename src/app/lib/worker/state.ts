/**
 * What the engine worker holds between requests: the loaded model and tokenizer, the kernels the reader
 * chose, and the traced forward passes it has run. Every chapter's handlers (chapters/NN-slug/worker.ts)
 * read it through `requireModel` and `traceFor`, so a keystroke costs one forward pass, whatever the
 * chapter shows: the first request for a text runs the pass, every slice after it reads the same Trace.
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

/**
 * How many traced passes stay at hand: the reader's text, and a few variants a chapter runs beside it
 * (chapter 6 reads the text reversed). A Trace of 64 tokens of the house model is about 3 MB.
 */
const TRACES_KEPT = 4;

interface TracedPass {
  key: string;
  trace: Trace;
}

export const current: {
  loaded: Loaded | undefined;
  /** The kernels the reader chose last (the model info reports them). */
  choice: KernelChoice;
  /** The newest traced passes, most recently used first. */
  passes: TracedPass[];
  /** Traced forward passes run since the worker started (the e2e suite counts one per keystroke). */
  tracedPasses: number;
} = { loaded: undefined, choice: 'auto', passes: [], tracedPasses: 0 };

export function setLoaded(loaded: Loaded): void {
  current.loaded = loaded;
  current.passes = []; // traces of the previous model are of no use now
}

export function requireModel(): Loaded {
  if (!current.loaded) throw new Error('no model is loaded yet');
  return current.loaded;
}

/**
 * The Trace of a forward pass over exactly `tokens` (BOS first) by the loaded model with the chosen
 * kernels: a pass already run for them, else a new one. Figures send the tokens they were drawn for, so an
 * answer can never belong to a different text than the figure shows.
 */
export function traceFor(tokens: readonly number[]): Trace {
  const { model } = requireModel();
  const key = `${current.choice}:${tokens.join(',')}`;
  const at = current.passes.findIndex((pass) => pass.key === key);
  if (at >= 0) {
    const [pass] = current.passes.splice(at, 1);
    current.passes.unshift(pass);
    return pass.trace;
  }
  const { trace } = forward(model, [...tokens], new KVCache(model.config), {
    trace: true,
    logits: 'last',
    kernels: selectKernels(current.choice),
  });
  current.tracedPasses++;
  current.passes.unshift({ key, trace });
  current.passes.length = Math.min(current.passes.length, TRACES_KEPT);
  return trace;
}
