/**
 * Chapter 13's questions to the worker, as reactive answers shared by its figures, and its shared choices:
 * the weight whose gradient is checked, the block walk's step, and the race's settings.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import type { TinyBlockWalk } from '../../../analysis/learning.ts';
import { chapter } from './chapter.ts';
import type { handlers, LandscapeCheck, TokenLossAnswer, WeightGradientAnswer } from './worker.ts';

export const worker = () => chapterWorker<typeof handlers>(chapter.slug);

/** The chapter's choices, shared by its figures. */
export const choices = $state({
  /** The weight whose gradient is checked: a parameter's name, and a row and column of it. */
  parameter: 'layers.0.wq',
  row: 0,
  col: 0,
});

/** The loss of each token of the reader's text (undefined while the text has fewer than 2 tokens). */
export function tokenLossAnswer(): Answer<TokenLossAnswer> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading || reading.tokens.length < 2) return undefined;
    return worker().tokenLoss([...reading.tokens]);
  });
}

/**
 * How long the text and the chosen weight must stay the same before the gradient is asked for: a backward
 * pass and fourteen forward passes take the worker longer than a keystroke's traced pass, and while the
 * reader types they would hold up the other figures' answers.
 */
const GRADIENT_PAUSE_MS = 250;

/** The chosen weight's gradient by backpropagation and by finite differences on the reader's text. */
export function weightGradientAnswer(): Answer<WeightGradientAnswer> {
  let asked = 0;
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading || reading.tokens.length < 2) return undefined;
    const tokens = [...reading.tokens];
    const { parameter, row, col } = choices;
    const question = ++asked;
    return new Promise<void>((resolve) => setTimeout(resolve, GRADIENT_PAUSE_MS)).then(() => {
      // A newer question replaced this one while it waited: never ask the worker (its answer would be dropped).
      if (question !== asked) throw new Error('superseded');
      return worker().weightGradient(tokens, parameter, row, col);
    });
  });
}

/** The tiny block's walk: the same for every text and model, asked once the worker is up. */
export function tinyBlockAnswer(): Answer<TinyBlockWalk> {
  return workerAnswer(() => (engine.status === 'ready' ? worker().tinyBlock() : undefined));
}

/** Whether the loaded model is the one the shipped surface belongs to (asked again for a new model). */
export function landscapeCheckAnswer(): Answer<LandscapeCheck> {
  return workerAnswer(() => {
    if (engine.status !== 'ready' || !engine.model) return undefined;
    void engine.model.id;
    return worker().landscapeCheck();
  });
}
