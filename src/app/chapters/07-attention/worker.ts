/** Chapter 7 (attention): what its figures ask the engine worker. */
import * as Comlink from 'comlink';
import { forward } from '../../../engine/forward.ts';
import type { OverrideAttention } from '../../../engine/interventions.ts';
import { KVCache } from '../../../engine/kv-cache.ts';
import { headDim, kvHeadOf } from '../../../engine/model.ts';
import { temperatureSoftmax } from '../../../engine/sampling.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { compareDistributions, headMatrix, headRows } from '../../../analysis/attention.ts';
import { current, requireModel, traceFor } from '../../lib/worker/state.ts';

/** One head of one layer for the reader's text, sliced from the Trace of its pass. */
export interface AttentionHead {
  /** The tokens of the pass (BOS first), so the page can drop an answer for an older text. */
  tokens: number[];
  layer: number;
  head: number;
  /** The key/value head this query head reads (GQA). */
  kvHead: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** layers[layer].qRope[:, head]: [T, headDim], the queries after RoPE. */
  q: Float32Array;
  /** layers[layer].kRope[:, kvHead]: [T, headDim], the keys after RoPE. */
  k: Float32Array;
  /** layers[layer].v[:, kvHead]: [T, headDim]. */
  v: Float32Array;
  /** layers[layer].scores[head]: [T, T], q·k/√headDim, −Infinity where the mask forbids. */
  scores: Float32Array;
  /** layers[layer].mask: [T, T], 1 where query t may read key s. */
  mask: Float32Array;
  /** layers[layer].weights[head]: [T, T], softmax of each row of scores. */
  weights: Float32Array;
  /** layers[layer].attnOutput[:, head]: [T, headDim], the weighted sums of values. */
  output: Float32Array;
}

/** How many tokens the override's comparison lists from each distribution. */
export const COMPARED_TOKENS = 5;

/** The next-token distribution at one position, with and without an attention override. */
export interface OverrideResult {
  tokens: number[];
  intervention: OverrideAttention;
  /** layers[layer].weights[head, position, 0…position] as the model computed them, and with the override. */
  weightsBefore: Float32Array;
  weightsAfter: Float32Array;
  /** The tokens whose probability the figure lists (see compareDistributions), with their pieces. */
  rows: { token: number; piece: string; before: number; after: number }[];
  topBefore: number;
  topAfter: number;
  totalVariation: number;
}

function checkHead(layer: number, head: number) {
  const { model } = requireModel();
  const { nLayers, nHeads } = model.config;
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers)
    throw new Error(`layer ${layer} does not exist: the model has layers 0…${nLayers - 1}`);
  if (!Number.isInteger(head) || head < 0 || head >= nHeads)
    throw new Error(`head ${head} does not exist: the model has heads 0…${nHeads - 1}`);
  return model;
}

/** softmax(logits[position]) of a Trace whose logits are [T, V]. */
function distributionAt(logits: Float32Array, position: number, vocabSize: number): Float32Array {
  return temperatureSoftmax(logits.subarray(position * vocabSize, (position + 1) * vocabSize), 1);
}

/** The likeliest next tokens after `position` in the reader's pass (no extra pass: its Trace's logits). */
export interface Prediction {
  tokens: number[];
  position: number;
  top: { token: number; piece: string; probability: number }[];
}

export const handlers = {
  /** The COMPARED_TOKENS likeliest tokens to follow position `position` of `tokens`, from the text's Trace. */
  prediction(tokens: number[], position: number): Prediction {
    const { model, tokenizer } = requireModel();
    if (!Number.isInteger(position) || position < 0 || position >= tokens.length)
      throw new Error(`position ${position} is not in the text: it has positions 0…${tokens.length - 1}`);
    const probabilities = distributionAt(traceFor(tokens).logits.data, position, model.config.vocabSize);
    const { rows } = compareDistributions(probabilities, probabilities, COMPARED_TOKENS);
    return {
      tokens: [...tokens],
      position,
      top: rows.map(({ token, after }) => ({
        token,
        piece: tokenizer.pieceLabel(token),
        probability: after,
      })),
    };
  },

  /** Layer `layer`, head `head` of a pass over `tokens` (BOS first). */
  head(tokens: number[], layer: number, head: number): AttentionHead {
    const model = checkHead(layer, head);
    const { nLayers, nHeads, nKvHeads } = model.config;
    const D = headDim(model.config);
    const T = tokens.length;
    const kvHead = kvHeadOf(head, nHeads, nKvHeads);
    const slice = traceFor(tokens).layers[layer];
    const answer: AttentionHead = {
      tokens: [...tokens],
      layer,
      head,
      kvHead,
      nLayers,
      nHeads,
      nKvHeads,
      headDim: D,
      q: headRows(slice.qRope.data, T, nHeads, D, head),
      k: headRows(slice.kRope.data, T, nKvHeads, D, kvHead),
      v: headRows(slice.v.data, T, nKvHeads, D, kvHead),
      scores: headMatrix(slice.scores.data, T, T, head),
      mask: slice.mask.data.slice(),
      weights: headMatrix(slice.weights.data, T, T, head),
      output: headRows(slice.attnOutput.data, T, nHeads, D, head),
    };
    return Comlink.transfer(
      answer,
      [answer.q, answer.k, answer.v, answer.scores, answer.mask, answer.weights, answer.output].map(
        (array) => array.buffer as ArrayBuffer,
      ),
    );
  },

  /**
   * Query `position` of head `head` in layer `layer` gives `weight` to key `key`, the other keys sharing the
   * rest in proportion to their own weights (overrideAttention with renormalise); the engine runs the pass
   * again with that intervention. Run only when the reader moves a weight, never per keystroke.
   */
  override(
    tokens: number[],
    layer: number,
    head: number,
    position: number,
    key: number,
    weight: number,
  ): OverrideResult {
    const model = checkHead(layer, head);
    const { tokenizer } = requireModel();
    const T = tokens.length;
    if (!Number.isInteger(position) || position < 0 || position >= T)
      throw new Error(`position ${position} is not in the text: it has positions 0…${T - 1}`);
    const intervention: OverrideAttention = {
      kind: 'overrideAttention',
      layer,
      head,
      position,
      set: [{ key, weight }],
      renormalise: true,
    };
    const plain = traceFor(tokens);
    // forward checks the intervention (a key after the position, a weight outside 0…1) and says what is wrong.
    const { trace: changed } = forward(model, [...tokens], new KVCache(model.config), {
      trace: true,
      logits: 'all',
      kernels: selectKernels(current.choice),
      interventions: [intervention],
    });
    current.tracedPasses++;
    const { vocabSize } = model.config;
    const row = (head * T + position) * T;
    const before = distributionAt(plain.logits.data, position, vocabSize);
    const after = distributionAt(changed.logits.data, position, vocabSize);
    const change = compareDistributions(before, after, COMPARED_TOKENS);
    const answer: OverrideResult = {
      tokens: [...tokens],
      intervention,
      weightsBefore: plain.layers[layer].weights.data.slice(row, row + position + 1),
      weightsAfter: changed.layers[layer].weights.data.slice(row, row + position + 1),
      rows: change.rows.map((entry) => ({ ...entry, piece: tokenizer.pieceLabel(entry.token) })),
      topBefore: change.topBefore,
      topAfter: change.topAfter,
      totalVariation: change.totalVariation,
    };
    return Comlink.transfer(answer, [answer.weightsBefore.buffer, answer.weightsAfter.buffer]);
  },
};
