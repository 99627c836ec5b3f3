/**
 * Chapter 10's shared questions to the worker: the stream's norms, and the logit lens, of the reader's text
 * (each asked once per text by the page and handed to the figures and the question), with the pieces of
 * the tokens they were asked about, so labels always match the numbers.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { handlers, LensView, StreamView } from './worker.ts';

/** A worker answer with the reader's tokens as text, position by position. */
export interface WithPieces<T> {
  data: T;
  pieces: string[];
}

export type Stream = WithPieces<StreamView>;
export type Lens = WithPieces<LensView>;

function ask<T>(question: (tokens: number[]) => Promise<T>): Answer<WithPieces<T>> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading) return undefined;
    const pieces = [...reading.pieces];
    return question([...reading.tokens]).then((data) => ({ data, pieces }));
  });
}

export function streamAnswer(): Answer<Stream> {
  return ask((tokens) => chapterWorker<typeof handlers>(chapter.slug).stream(tokens));
}

export function lensAnswer(): Answer<Lens> {
  return ask((tokens) => chapterWorker<typeof handlers>(chapter.slug).lens(tokens));
}

/** A boundary (lens row) in words: 0 is the embedding, r ≥ 1 what layer r−1 left. */
export function boundaryLabel(row: number): string {
  return row === 0 ? 'embedding' : `after layer ${row - 1}`;
}

/** The same, as a row of the lens grid in a sentence: "the embedding row", "the row after layer 2". */
export function boundaryRow(row: number): string {
  return row === 0 ? 'the embedding row' : `the row after layer ${row - 1}`;
}
