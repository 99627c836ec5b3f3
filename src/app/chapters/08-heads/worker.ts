/**
 * Chapter 8 (many heads): what its figures ask the engine worker. The patterns and their scores are slices
 * of the reader's traced pass; the induction test is one traced pass over BOS + a seeded random sequence
 * twice (run when the seed or length changes, not per keystroke); the ablation map is layers × heads untraced
 * passes that start from the reader's traced pass (src/analysis/heads.ts).
 */
import * as Comlink from 'comlink';
import {
  ablationMap,
  headPatternScores,
  inductionInput,
  inductionScores,
  specialTokenIds,
  uniformBaseline,
  type AblationMode,
  type HeadPatternScores,
} from '../../../analysis/heads.ts';
import type { Trace } from '../../../engine/trace.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel, traceFor } from '../../lib/worker/state.ts';

/** Every head's weights on a text, [nLayers, nHeads, T, T] (layers[l].weights side by side). */
function allWeights(trace: Trace): Float32Array {
  const layers = trace.layers.map((layer) => layer.weights.data);
  const out = new Float32Array(layers.reduce((sum, data) => sum + data.length, 0));
  let offset = 0;
  for (const data of layers) {
    out.set(data, offset);
    offset += data.length;
  }
  return out;
}

export interface HeadPatterns {
  tokens: number[];
  nLayers: number;
  nHeads: number;
  /** [nLayers, nHeads, T, T]: layers[l].weights[h, t, s] at ((l·H + h)·T + t)·T + s. */
  weights: Float32Array;
  /** Previous-token and first-token scores, layer-major (l·H + h). */
  scores: HeadPatternScores[];
  /** What a head attending evenly to every visible token would score on this text (null for one token). */
  baseline: number | null;
}

export interface InductionTest {
  /** BOS, the random sequence, the same sequence again. */
  tokens: number[];
  pieces: string[];
  length: number;
  seed: number;
  nLayers: number;
  nHeads: number;
  /** [nLayers, nHeads, T, T], T = 1 + 2·length. */
  weights: Float32Array;
  /** Induction score per head, layer-major. */
  scores: number[];
  /** What uniform attention would score. */
  baseline: number;
}

export interface AblationAnswer {
  tokens: number[];
  mode: AblationMode;
  nLayers: number;
  nHeads: number;
  /** Mean change of log p(next token) per head, layer-major, in nats. */
  delta: Float32Array;
  /** [(l·H + h), t]: the change at position t = 0 … T−2. */
  perPosition: Float32Array;
  /** log p(next token) of the clean pass at t = 0 … T−2. */
  clean: Float32Array;
  passes: number;
  /** Milliseconds the worker spent on the ablated passes (the clean one is the reader's traced pass). */
  ms: number;
}

export const handlers = {
  /** Every head's attention weights on the reader's text and their previous-token and first-token scores. */
  patterns(tokens: number[]): HeadPatterns {
    const { model } = requireModel();
    const trace = traceFor(tokens);
    const answer: HeadPatterns = {
      tokens: [...tokens],
      nLayers: model.config.nLayers,
      nHeads: model.config.nHeads,
      weights: allWeights(trace),
      scores: headPatternScores(trace),
      baseline: uniformBaseline(1, tokens.length),
    };
    return Comlink.transfer(answer, [answer.weights.buffer]);
  },

  /** The induction test: BOS + `length` seeded random tokens, repeated; every head's weights and score. */
  induction(length: number, seed: number): InductionTest {
    const { model, tokenizer } = requireModel();
    const input = inductionInput(model.config, tokenizer.bosId, specialTokenIds(tokenizer), length, seed);
    const trace = traceFor(input.tokens);
    const answer: InductionTest = {
      tokens: input.tokens,
      pieces: input.tokens.map((token) => tokenizer.pieceLabel(token)),
      length,
      seed,
      nLayers: model.config.nLayers,
      nHeads: model.config.nHeads,
      weights: allWeights(trace),
      scores: inductionScores(trace, length).map((score) => score.induction),
      baseline: uniformBaseline(length + 1, 2 * length + 1) ?? 0,
    };
    return Comlink.transfer(answer, [answer.weights.buffer]);
  },

  /** The ablation map of the reader's text: every head silenced in turn, with the chosen kernels. */
  ablation(tokens: number[], mode: AblationMode): AblationAnswer {
    const { model } = requireModel();
    const clean = traceFor(tokens);
    const started = performance.now();
    const map = ablationMap(model, clean, selectKernels(current.choice), mode);
    const answer: AblationAnswer = {
      tokens: [...tokens],
      mode,
      nLayers: map.nLayers,
      nHeads: map.nHeads,
      delta: map.delta,
      perPosition: map.perPosition,
      clean: map.clean,
      passes: map.passes,
      ms: performance.now() - started,
    };
    return Comlink.transfer(answer, [answer.delta.buffer, answer.perPosition.buffer, answer.clean.buffer]);
  },
};
