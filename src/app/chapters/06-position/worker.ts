/** Chapter 6 (position and RoPE): what its figures ask the engine worker. */
import * as Comlink from 'comlink';
import { headDim, type RopeLayout } from '../../../engine/model.ts';
import { requireModel, traceFor } from '../../lib/worker/state.ts';

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

export const handlers = {
  /** Layer `layer`'s q, k (before and after RoPE) and scores for a pass over `tokens` (BOS first). */
  ropeLayer(tokens: number[], layer: number): RopeLayer {
    const { model } = requireModel();
    const { config } = model;
    if (!Number.isInteger(layer) || layer < 0 || layer >= config.nLayers) {
      throw new Error(`layer ${layer} does not exist: the model has ${config.nLayers} layers`);
    }
    const slice = traceFor(tokens).layers[layer];
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
