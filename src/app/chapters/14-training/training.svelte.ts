/** Chapter 14's question to the engine worker, as a reactive answer (see worker.ts). */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { handlers, UntrainedLossAnswer } from './worker.ts';

export const worker = () => chapterWorker<typeof handlers>(chapter.slug);

/** The loss of a randomly initialised model of the loaded model's shape on the reader's text. */
export function untrainedLossAnswer(): Answer<UntrainedLossAnswer> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading || reading.tokens.length < 2) return undefined;
    return worker().untrainedLoss([...reading.tokens]);
  });
}
