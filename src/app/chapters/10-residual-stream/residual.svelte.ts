/**
 * Chapter 10's shared question to the worker: the stream's norms and the logit lens of the reader's text
 * (one answer per text, asked once by the page and handed to the figures and the question), with the
 * pieces of the tokens it was asked about, so labels always match the numbers.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { handlers, ResidualView } from './worker.ts';

export interface Residual {
  data: ResidualView;
  /** The reader's tokens as text, position by position. */
  pieces: string[];
}

export function residualAnswer(): Answer<Residual> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading) return undefined;
    const pieces = [...reading.pieces];
    return chapterWorker<typeof handlers>(chapter.slug)
      .residual([...reading.tokens])
      .then((data) => ({ data, pieces }));
  });
}

/** A boundary (lens row) in words: 0 is the embedding, r ≥ 1 what layer r−1 left. */
export function boundaryLabel(row: number): string {
  return row === 0 ? 'embedding' : `after layer ${row - 1}`;
}

/** The same, as a row of the lens grid in a sentence: "the embedding row", "the row after layer 2". */
export function boundaryRow(row: number): string {
  return row === 0 ? 'the embedding row' : `the row after layer ${row - 1}`;
}
