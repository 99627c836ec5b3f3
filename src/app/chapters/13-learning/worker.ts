/**
 * Chapter 13 (learning): what its figures ask the engine worker. The loss of each token of the reader's text
 * is read from the logits of the Trace of their pass; everything else runs the trainer (src/engine/train)
 * on the loaded model's own weights: one weight's gradient by backpropagation beside finite differences
 * (asked once the reader stops typing: a backward pass and fourteen forward passes), the tiny block's walk
 * (computed once), and the optimisers' race on the plane of the shipped landscape, one step per request so
 * that the reader's other questions are answered between steps.
 */
import {
  centralDifference,
  FINITE_DIFFERENCE_STEPS,
  LossPlane,
  OPTIMISERS,
  parameterNamed,
  Race,
  textBatch,
  tinyBlockWalk,
  type FiniteDifference,
  type OptimiserName,
  type RacePoint,
  type TinyBlockWalk,
} from '../../../analysis/learning.ts';
import { textSurprise } from '../../../analysis/surprise.ts';
import type { Model } from '../../../engine/model.ts';
import { TrainingModel } from '../../../engine/train/model.ts';
import { zerosLike, type Weights } from '../../../engine/train/parameters.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel, traceFor } from '../../lib/worker/state.ts';
import landscape from './landscape.json';
import { LANDSCAPE_SETTINGS } from './landscape-settings.ts';

export interface TokenLossAnswer {
  tokens: number[];
  pieces: string[];
  /** −ln softmax(logits[t − 1])[tokens[t]] for t = 1 … T − 1. */
  losses: number[];
  mean: number;
}

export interface WeightGradientAnswer {
  tokens: number[];
  parameter: string;
  row: number;
  col: number;
  /** The weight's value. */
  value: number;
  /** ∂L/∂w from the trainer's backward pass. */
  backprop: number;
  /** The trainer's loss on the text (its forward pass): the mean of the per-token losses. */
  trainerLoss: number;
  differences: FiniteDifference[];
  /** How long the backward pass and the differences took, in the worker. */
  backwardMs: number;
  differencesMs: number;
}

export interface LandscapeCheck {
  /** Whether the loaded model is the one the shipped surface was computed for (its loss at θ agrees). */
  matches: boolean;
  /** The loaded model's loss on the held-out batch at θ, live, beside the shipped value. */
  liveCentre: number;
  shippedCentre: number;
}

export interface RaceAnswer {
  id: number;
  learningRate: number;
  start: [number, number];
  steps: number;
  paths: Record<OptimiserName, RacePoint[]>;
  diverged: Record<OptimiserName, boolean>;
  /** Milliseconds the last request took (one forward and one backward pass). */
  elapsedMs: number;
}

let trainer:
  | {
      model: Model;
      kernels: ReturnType<typeof selectKernels>;
      training: TrainingModel;
      gradients: Weights;
      /** The tokens whose gradient `gradients` holds. */
      gradientKey: string;
      loss?: number;
    }
  | undefined;

let walk: TinyBlockWalk | undefined;

let plane: { model: Model; plane: LossPlane; check: LandscapeCheck } | undefined;
let race: { id: number; race: Race } | undefined;
let races = 0;

/** The trainer on the loaded model's own weights; kernels that cache packed weights are told of each nudge. */
function trainerFor(model: Model) {
  const kernels = selectKernels(current.choice);
  if (trainer?.model !== model || trainer.kernels !== kernels) {
    trainer = {
      model,
      kernels,
      training: new TrainingModel(model.config, model.weights, { kernels }),
      gradients: zerosLike(model.weights),
      gradientKey: '',
    };
  }
  return trainer;
}

function planeFor(model: Model) {
  if (plane?.model !== model) {
    const tokens = landscape.tokens as number[];
    const { size } = landscape;
    const centre = (size - 1) / 2;
    const shippedCentre = landscape.losses[centre * size + centre] as number;
    const fits =
      tokens.every((token) => token < model.config.vocabSize) && tokens.length <= model.config.seqLen + 1;
    const built = fits
      ? new LossPlane(model.config, model.weights, textBatch(tokens), selectKernels(current.choice))
      : undefined;
    const liveCentre = built ? built.loss(0, 0) : NaN;
    plane = {
      model,
      plane: built!,
      check: { matches: Math.abs(liveCentre - shippedCentre) < 1e-3, liveCentre, shippedCentre },
    };
  }
  return plane;
}

function raceAnswer(id: number, running: Race, elapsedMs: number): RaceAnswer {
  const paths = {} as Record<OptimiserName, RacePoint[]>;
  for (const { name } of OPTIMISERS) paths[name] = running.paths[name].map((point) => ({ ...point }));
  return {
    id,
    learningRate: running.settings.learningRate,
    start: [running.settings.start[0], running.settings.start[1]],
    steps: running.steps,
    paths,
    diverged: { ...running.diverged },
    elapsedMs,
  };
}

export const handlers = {
  /** The loss of every token of the reader's text, from the logits of its traced pass. */
  tokenLoss(tokens: number[]): TokenLossAnswer {
    const { model, tokenizer } = requireModel();
    const result = textSurprise(tokens, traceFor(tokens).logits.data, model.config.vocabSize);
    return {
      tokens: [...tokens],
      pieces: tokens.map((token) => tokenizer.pieceLabel(token)),
      losses: Array.from(result.surprise),
      mean: result.meanNll,
    };
  },

  /**
   * ∂L/∂w for one weight of the loaded model on the reader's text: the trainer's backward pass (run once per
   * text) beside central differences at each step size, the weight nudged in place and restored exactly.
   */
  weightGradient(tokens: number[], parameter: string, row: number, col: number): WeightGradientAnswer {
    const { model } = requireModel();
    const state = trainerFor(model);
    const batch = textBatch(tokens);
    const tensor = parameterNamed(model.weights, parameter);
    const width = tensor.shape.length > 1 ? tensor.shape[1] : tensor.shape[0];
    const rows = tensor.shape.length > 1 ? tensor.shape[0] : 1;
    if (!(row >= 0 && row < rows && col >= 0 && col < width)) {
      throw new Error(`${parameter} has no weight at row ${row}, column ${col}`);
    }
    const index = row * width + col;
    const key = tokens.join(',');
    let started = performance.now();
    if (state.gradientKey !== key) {
      state.gradientKey = '';
      state.loss = state.training.forward(batch);
      state.training.backward(state.gradients);
      state.gradientKey = key;
    }
    const backwardMs = performance.now() - started;
    started = performance.now();
    const changed = () => state.kernels.invalidate(tensor.data);
    const differences = FINITE_DIFFERENCE_STEPS.map((h) =>
      centralDifference(() => state.training.forward(batch), tensor.data, index, h, changed),
    );
    return {
      tokens: [...tokens],
      parameter,
      row,
      col,
      value: tensor.data[index],
      backprop: parameterNamed(state.gradients, parameter).data[index],
      trainerLoss: state.loss!,
      differences,
      backwardMs,
      differencesMs: performance.now() - started,
    };
  },

  /** The tiny block's forward and backward passes, every tensor, and every gradient's check. */
  tinyBlock(): TinyBlockWalk {
    walk ??= tinyBlockWalk();
    return walk;
  },

  /** Whether the shipped surface is the loaded model's: its loss at θ on the held-out batch, recomputed. */
  landscapeCheck(): LandscapeCheck {
    return planeFor(requireModel().model).check;
  },

  /** A new race from `start` at this learning rate: the start's gradient, no step yet. */
  raceStart(start: [number, number], learningRate: number): RaceAnswer {
    const started = performance.now();
    const { plane: surface, check } = planeFor(requireModel().model);
    if (!check.matches) throw new Error('the race runs on the house model’s surface: open the house model');
    const running = new Race(surface, { start, learningRate }, LANDSCAPE_SETTINGS.bound);
    race = { id: ++races, race: running };
    return raceAnswer(race.id, running, performance.now() - started);
  },

  /**
   * One more step of race `id`, by the optimiser furthest behind: one forward and one backward pass per
   * request, so that a keystroke's pass waits for at most one of them.
   */
  raceStep(id: number): RaceAnswer {
    if (!race || race.id !== id) throw new Error('this race was replaced by a newer one');
    const started = performance.now();
    race.race.stepNext();
    return raceAnswer(id, race.race, performance.now() - started);
  },
};
