/** Chapter 6 (position and RoPE): what its figures ask the engine worker. */
import * as Comlink from 'comlink';
import { forward } from '../../../../engine/forward.ts';
import { KVCache } from '../../../../engine/kv-cache.ts';
import { headDim, type RopeLayout } from '../../../../engine/model.ts';
import type { Trace } from '../../../../engine/trace.ts';
import { selectKernels } from '../../../../kernels/select.ts';
import { current, requireModel, traceFor } from '../worker-state.ts';

/** One layer's queries and keys before and after RoPE, and its scores, from the Trace of a pass. */
export interface RopeLayer {
  /** The tokens of the pass (BOS first), so the page can drop an answer for an older text. */
  tokens: number[];
  layer: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  ropeTheta: number;
  ropeLayout: RopeLayout;
  seqLen: number;
  /** layers[layer].q / .k: [T, nHeads | nKvHeads, headDim], before RoPE. */
  q: Float32Array;
  k: Float32Array;
  /** layers[layer].qRope / .kRope: the same after RoPE. */
  qRope: Float32Array;
  kRope: Float32Array;
  /** layers[layer].scores: [nHeads, T, T], q·k/√headDim, −Infinity where the causal mask forbids. */
  scores: Float32Array;
}

/**
 * A traced pass over `tokens`. The reader's own text shares the worker's last pass with the other
 * chapters (traceFor); any other order of the tokens (the reversed text) gets a pass of its own that does
 * not replace it.
 */
function traceOf(tokens: number[], keepAsLastPass: boolean): Trace {
  if (keepAsLastPass) return traceFor(tokens);
  const { model } = requireModel();
  const { trace } = forward(model, tokens, new KVCache(model.config), {
    trace: true,
    logits: 'last',
    kernels: selectKernels(current.choice),
  });
  return trace;
}

export const positionViews = {
  /**
   * Layer `layer`'s q, k (before and after RoPE) and scores for a pass over `tokens` (BOS first).
   * `ownPass` is false for a text that is not the reader's (the reversed tokens), so the reader's Trace
   * stays the one other figures reuse.
   */
  ropeLayer(tokens: number[], layer: number, ownPass = true): RopeLayer {
    const { model } = requireModel();
    const { config } = model;
    if (!Number.isInteger(layer) || layer < 0 || layer >= config.nLayers) {
      throw new Error(`layer ${layer} does not exist: the model has ${config.nLayers} layers`);
    }
    const slice = traceOf(tokens, ownPass).layers[layer];
    const answer: RopeLayer = {
      tokens: [...tokens],
      layer,
      nHeads: config.nHeads,
      nKvHeads: config.nKvHeads,
      headDim: headDim(config),
      ropeTheta: config.ropeTheta,
      ropeLayout: config.ropeLayout,
      seqLen: config.seqLen,
      // Copies: the Trace keeps its own arrays for the next figure that asks.
      q: slice.q.data.slice(),
      k: slice.k.data.slice(),
      qRope: slice.qRope.data.slice(),
      kRope: slice.kRope.data.slice(),
      scores: slice.scores.data.slice(),
    };
    return Comlink.transfer(answer, [
      answer.q.buffer,
      answer.k.buffer,
      answer.qRope.buffer,
      answer.kRope.buffer,
      answer.scores.buffer,
    ]);
  },
};
