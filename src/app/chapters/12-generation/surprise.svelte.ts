/**
 * Chapter 12's one question about the reader's text: the surprise of each of its tokens and of a shuffled
 * copy (shuffled with the course's seed). Asked once per text and seed, shared by the question and the figure.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { course } from '$lib/state/course.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { handlers, SurpriseAnswer } from './worker.ts';

export function surpriseAnswer(): Answer<SurpriseAnswer> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading) return undefined;
    const seed = Math.max(1, Math.round(course.seed) || 1);
    return chapterWorker<typeof handlers>(chapter.slug).surprise([...reading.tokens], seed);
  });
}
