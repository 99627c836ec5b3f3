/**
 * Chapter 10 (the residual stream and normalization): what its figures ask the engine worker. Everything
 * is read from the one traced pass over the reader's text (traceFor) by src/analysis/lens.ts; the logit
 * lens runs its classifier products on the kernels the reader chose, like the pass itself.
 */
import * as Comlink from 'comlink';
import {
  contextSimilarity,
  logitLens,
  normSite,
  streamNorms,
  type EarlierLens,
  type LogitLens,
  type NormSite,
} from '../../../analysis/lens.ts';
import type { Model } from '../../../engine/model.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel, traceFor } from '../../lib/worker/state.ts';

/** How many tokens each lens cell keeps. */
export const LENS_TOP = 5;

export interface StreamView {
  /** The tokens of the pass (BOS first), so the page can drop an answer for an older text. */
  tokens: number[];
  /** The boundaries' Trace names: layers[0].input … layers[L−1].input, layers[L−1].residualAfterFfn. */
  names: string[];
  /** [L + 1, T] ‖stream‖, [L, T] ‖attnProjected‖ and ‖ffnOutput‖. */
  stream: Float64Array;
  attention: Float64Array;
  feedForward: Float64Array;
}

export interface LensView {
  tokens: number[];
  /** The boundaries' Trace names, one per row of the lens. */
  names: string[];
  lens: {
    k: number;
    /** [L + 1, T, k] top ids and their probabilities. */
    ids: Int32Array;
    probabilities: Float32Array;
    /** [L + 1, T] the probability and rank of the last row's top token in each cell. */
    finalTopProbability: Float32Array;
    finalTopRank: Int32Array;
    /** Each id that appears in the grid, as the reader should see it. */
    pieces: Record<number, string>;
    /** How long the lens took in the worker (its L + 1 classifier products and softmaxes). */
    ms: number;
  };
}

export interface NormView {
  tokens: number[];
  position: number;
  inputName: string;
  outputName: string;
  /** The vector RMSNorm reads, its gain, and what the Trace recorded it returned. */
  input: Float32Array;
  gain: Float32Array;
  traceOutput: Float32Array;
  eps: number;
}

/**
 * The last lens computed for each model (a replaced model and its entry are then free to go): the next text's
 * lens copies its cells wherever the two texts begin alike (logitLens's `earlier`), so a keystroke at the end
 * of the text computes the last position or two rather than every position. (Its arrays are copies: the
 * answer's are sent away.)
 */
const lastLens = new WeakMap<Model, EarlierLens>();

function copyOfLens(lens: LogitLens): LogitLens {
  return {
    ...lens,
    ids: lens.ids.slice(),
    probabilities: lens.probabilities.slice(),
    finalTopProbability: lens.finalTopProbability.slice(),
    finalTopRank: lens.finalTopRank.slice(),
  };
}

function checkPosition(tokens: readonly number[], position: number): void {
  if (!Number.isInteger(position) || position < 0 || position >= tokens.length)
    throw new Error(`position ${position} does not exist: the text has positions 0…${tokens.length - 1}`);
}

export const handlers = {
  /** The stream's norms and what each block adds, for a pass over `tokens`. */
  stream(tokens: number[]): StreamView {
    const norms = streamNorms(traceFor(tokens));
    const answer: StreamView = { tokens: [...tokens], ...norms };
    return Comlink.transfer(answer, [norms.stream.buffer, norms.attention.buffer, norms.feedForward.buffer]);
  },

  /**
   * The logit lens of a pass over `tokens`: L + 1 more classifier products on the reader's kernels, asked
   * apart from the stream's norms so that those figures need not wait for it.
   */
  lens(tokens: number[]): LensView {
    const { model, tokenizer } = requireModel();
    const trace = traceFor(tokens);
    const started = performance.now();
    // Its L classifier products are the heaviest work of a keystroke in the course: they share both cores
    // where the page may (threads split a product bit for bit, and never wait on a paused thread).
    const kernels = selectKernels(current.choice, { threads: 'auto' });
    const lens = logitLens(model, trace, kernels, LENS_TOP, lastLens.get(model));
    const ms = performance.now() - started;
    lastLens.set(model, { model, kernels, trace, lens: copyOfLens(lens) });
    const pieces: Record<number, string> = {};
    for (const id of lens.ids) pieces[id] ??= tokenizer.pieceLabel(id);
    const answer: LensView = {
      tokens: [...tokens],
      names: lens.names,
      lens: {
        k: lens.k,
        ids: lens.ids,
        probabilities: lens.probabilities,
        finalTopProbability: lens.finalTopProbability,
        finalTopRank: lens.finalTopRank,
        pieces,
        ms,
      },
    };
    return Comlink.transfer(answer, [
      lens.ids.buffer,
      lens.probabilities.buffer,
      lens.finalTopProbability.buffer,
      lens.finalTopRank.buffer,
    ]);
  },

  /** One RMSNorm of the pass at one position: its input, gain and the Trace's output. */
  norm(tokens: number[], site: NormSite, position: number): NormView {
    const { model } = requireModel();
    checkPosition(tokens, position);
    if (site.kind !== 'finalNorm' && !(site.layer >= 0 && site.layer < model.config.nLayers))
      throw new Error(`layer ${site.layer} does not exist: the model has ${model.config.nLayers} layers`);
    const found = normSite(model, traceFor(tokens), site);
    const { dim } = model.config;
    const row = (data: Float32Array) => data.slice(position * dim, (position + 1) * dim);
    const answer: NormView = {
      tokens: [...tokens],
      position,
      inputName: found.inputName,
      outputName: found.outputName,
      input: row(found.input.data),
      gain: found.gain.slice(),
      traceOutput: row(found.output.data),
      eps: model.config.normEps,
    };
    return Comlink.transfer(answer, [answer.input.buffer, answer.gain.buffer, answer.traceOutput.buffer]);
  },

  /** cos(stream at a, stream at b) at every boundary, for two positions of the reader's text. */
  contexts(
    tokens: number[],
    a: number,
    b: number,
  ): { tokens: number[]; a: number; b: number; cosines: number[] } {
    checkPosition(tokens, a);
    checkPosition(tokens, b);
    const trace = traceFor(tokens);
    return {
      tokens: [...tokens],
      a,
      b,
      cosines: contextSimilarity({ trace, position: a }, { trace, position: b }),
    };
  },
};
