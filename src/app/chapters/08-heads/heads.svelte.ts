/**
 * Chapter 8's questions to the worker, as reactive answers shared by its figures: every head's weights on
 * the reader's text (with the pieces they were asked for, so labels always match the numbers), the induction
 * test for a seed and length, and the ablation map. Also the chapter's shared choices: the head shown large,
 * and the induction test's seed and length (the question and the figures read the same ones).
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import type { AblationMode } from '../../../analysis/heads.ts';
import { INDUCTION_DEFAULTS, inductionLengthLimit } from '../../../analysis/heads.ts';
import { chapter } from './chapter.ts';
import type { AblationAnswer, handlers, HeadPatterns, InductionTest } from './worker.ts';

const worker = () => chapterWorker<typeof handlers>(chapter.slug);

export interface PatternsView {
  data: HeadPatterns;
  pieces: string[];
}

/** Every head's weights and pattern scores for the reader's current text. */
export function patternsAnswer(): Answer<PatternsView> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading) return undefined;
    const pieces = [...reading.pieces];
    return worker()
      .patterns([...reading.tokens])
      .then((data) => ({ data, pieces }));
  });
}

/** The chapter's choices, shared by its figures. */
export const choices = $state({
  /** The head shown large, as layer·nHeads + head. */
  cell: 0,
  inductionSeed: INDUCTION_DEFAULTS.seed as number,
  inductionLength: INDUCTION_DEFAULTS.length as number,
  ablationMode: 'zero' as AblationMode,
  /** The head whose ablation is shown token by token, as layer·nHeads + head; undefined: the strongest. */
  ablationCell: undefined as number | undefined,
});

/** The induction length the loaded model can take (its context bounds it). */
export function inductionLength(): number {
  const config = engine.model?.config;
  if (!config) return choices.inductionLength;
  return Math.max(1, Math.min(choices.inductionLength, inductionLengthLimit(config)));
}

/** The induction test for the chosen seed and length (asked again only when those or the model change). */
export function inductionAnswer(): Answer<InductionTest> {
  return workerAnswer(() => {
    if (engine.status !== 'ready' || !engine.model) return undefined;
    void engine.model.id;
    return worker().induction(inductionLength(), choices.inductionSeed);
  });
}

export interface AblationView {
  data: AblationAnswer;
  pieces: string[];
}

/**
 * How long the text must stay the same before the ablation map is asked for: its passes (one per head) take
 * the worker longer than a keystroke's traced pass, so while the reader types they would hold up the other
 * figures' answers.
 */
const ABLATION_PAUSE_MS = 150;

/** The ablation map of the reader's text (undefined while the text has fewer than 2 tokens). */
export function ablationAnswer(): Answer<AblationView> {
  let asked = 0;
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading || reading.tokens.length < 2) return undefined;
    const tokens = [...reading.tokens];
    const pieces = [...reading.pieces];
    const mode = choices.ablationMode;
    const question = ++asked;
    return new Promise<void>((resolve) => setTimeout(resolve, ABLATION_PAUSE_MS)).then(() => {
      // A newer question replaced this one while it waited: never ask the worker (its answer would be dropped).
      if (question !== asked) throw new Error('superseded');
      return worker()
        .ablation(tokens, mode)
        .then((data) => ({ data, pieces }));
    });
  });
}
