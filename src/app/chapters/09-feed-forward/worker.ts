/**
 * Chapter 9 (the feed-forward block): what its figures ask the engine worker. The block's steps, its most
 * active neurons and a neuron's activations come from the one traced pass over the reader's text
 * (traceFor); a neuron's promoted and suppressed tokens from the weights; scaling a neuron runs one more,
 * untraced, forward pass with the engine's scaleNeuron intervention (src/analysis/neurons.ts).
 */
import * as Comlink from 'comlink';
import {
  activationShare,
  neuronActivations,
  neuronValue,
  scaleNeuronEffect,
  swigluSteps,
  topNeurons,
  type ActiveNeuron,
  type SwigluSteps,
} from '../../../analysis/neurons.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel, traceFor } from '../../lib/worker/state.ts';

/** How many of the most active neurons the list shows. */
export const TOP_NEURONS = 10;
/** How many tokens a neuron's value lists on each side. */
export const VALUE_TOKENS = 8;

export interface BlockView {
  tokens: number[];
  layer: number;
  position: number;
  steps: SwigluSteps;
  /** layers[layer].ffnActivation, [T, hidden]: every neuron at every position. */
  activations: Float32Array;
  hidden: number;
  /** The most active neurons at `position`, largest |activation| first. */
  top: ActiveNeuron[];
  /** What share of Σ|activation| at `position` they carry. */
  topShare: number;
}

export interface ScoredToken {
  token: number;
  piece: string;
  score: number;
}

export interface NeuronView {
  tokens: number[];
  layer: number;
  neuron: number;
  /** Its activation at every position of the text. */
  activations: Float32Array;
  columnNorm: number;
  promoted: ScoredToken[];
  suppressed: ScoredToken[];
}

export interface NextTokenRow {
  token: number;
  piece: string;
  before: number;
  after: number;
}

export interface ScaleView {
  tokens: number[];
  layer: number;
  neuron: number;
  factor: number;
  /** The union of the most likely tokens before and after, most likely before first. */
  rows: NextTokenRow[];
  topBefore: number;
  topAfter: number;
  klDivergence: number;
}

export interface QuestionView {
  tokens: number[];
  layer: number;
  neuron: number;
  activation: number;
  before: { token: number; piece: string; probability: number };
  after: { token: number; piece: string; probability: number };
  /** The probability after of the token that was most likely before. */
  afterOfBefore: number;
}

function checkLayer(layer: number): void {
  const { nLayers } = requireModel().model.config;
  if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers)
    throw new Error(`layer ${layer} does not exist: the model has ${nLayers} layers`);
}

/** The next-token distribution with (layer, neuron) scaled, as rows for the page. */
function scaled(tokens: number[], layer: number, neuron: number, factor: number, k: number) {
  const { model, tokenizer } = requireModel();
  const effect = scaleNeuronEffect(model, traceFor(tokens), selectKernels(current.choice), {
    layer,
    neuron,
    factor,
    k,
  });
  const ids = [...effect.topBefore, ...effect.topAfter.filter((id) => !effect.topBefore.includes(id))];
  return {
    effect,
    rows: ids.map((token) => ({
      token,
      piece: tokenizer.pieceLabel(token),
      before: effect.before[token],
      after: effect.after[token],
    })),
  };
}

export const handlers = {
  /** The block of `layer` at `position`, step by step, with the layer's activations and top neurons. */
  block(tokens: number[], layer: number, position: number): BlockView {
    checkLayer(layer);
    const trace = traceFor(tokens);
    const steps = swigluSteps(trace, layer, position);
    const activations = trace.layers[layer].ffnActivation.data.slice();
    const answer: BlockView = {
      tokens: [...tokens],
      layer,
      position,
      steps,
      activations,
      hidden: trace.layers[layer].ffnActivation.shape[1],
      top: topNeurons(trace, layer, position, TOP_NEURONS),
      topShare: activationShare(trace, layer, position, TOP_NEURONS),
    };
    return Comlink.transfer(answer, [
      activations.buffer,
      ...[steps.input, steps.gate, steps.siluGate, steps.up, steps.activation, steps.output].map(
        (row) => row.buffer as ArrayBuffer,
      ),
    ]);
  },

  /** Neuron `neuron` of `layer`: where in the text it fires, and the tokens its value promotes and suppresses. */
  neuron(tokens: number[], layer: number, neuron: number): NeuronView {
    checkLayer(layer);
    const { model, tokenizer } = requireModel();
    const value = neuronValue(model, layer, neuron, VALUE_TOKENS);
    const activations = neuronActivations(traceFor(tokens), layer, neuron);
    const named = (list: { token: number; score: number }[]) =>
      list.map(({ token, score }) => ({ token, score, piece: tokenizer.pieceLabel(token) }));
    return Comlink.transfer(
      {
        tokens: [...tokens],
        layer,
        neuron,
        activations,
        columnNorm: value.columnNorm,
        promoted: named(value.promoted),
        suppressed: named(value.suppressed),
      },
      [activations.buffer],
    );
  },

  /** The next-token distribution before and after multiplying the neuron by `factor` at every position. */
  scale(tokens: number[], layer: number, neuron: number, factor: number): ScaleView {
    checkLayer(layer);
    const { effect, rows } = scaled(tokens, layer, neuron, factor, 6);
    return {
      tokens: [...tokens],
      layer,
      neuron,
      factor,
      rows,
      topBefore: effect.topBefore[0],
      topAfter: effect.topAfter[0],
      klDivergence: effect.klDivergence,
    };
  },

  /** The chapter's question: the most active neuron at the last position (any layer), silenced. */
  question(tokens: number[]): QuestionView {
    const { model, tokenizer } = requireModel();
    const trace = traceFor(tokens);
    const last = tokens.length - 1;
    const strongest = Array.from(
      { length: model.config.nLayers },
      (_, l) => topNeurons(trace, l, last, 1)[0],
    ).reduce((best, entry) => (Math.abs(entry.activation) > Math.abs(best.activation) ? entry : best));
    const { effect } = scaled(tokens, strongest.layer, strongest.neuron, 0, 1);
    const [before, after] = [effect.topBefore[0], effect.topAfter[0]];
    return {
      tokens: [...tokens],
      layer: strongest.layer,
      neuron: strongest.neuron,
      activation: strongest.activation,
      before: { token: before, piece: tokenizer.pieceLabel(before), probability: effect.before[before] },
      after: { token: after, piece: tokenizer.pieceLabel(after), probability: effect.after[after] },
      afterOfBefore: effect.after[before],
    };
  },
};
