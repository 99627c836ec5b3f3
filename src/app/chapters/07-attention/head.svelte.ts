/**
 * The one (layer, head) chapter 7 looks at, shared by all its figures (each shows the picker, so the choice
 * is at hand wherever the reader is), and the chapter's question to the worker: that head's q, k, v, scores,
 * mask, weights and output for the reader's text, with the pieces of the tokens it was asked about (so
 * labels always match the numbers). The figures share one request per (text, layer, head), and the worker
 * slices it from the text's one traced pass.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { AttentionHead, handlers } from './worker.ts';

/** The reader's choice; a model with fewer layers or heads shows its last one. */
export const chosen = $state({ layer: 0, head: 0 });

/** The chosen layer and head, within the loaded model. */
export function chosenHead(): { layer: number; head: number } {
  const config = engine.model?.config;
  return {
    layer: Math.max(0, Math.min(chosen.layer, (config?.nLayers ?? 1) - 1)),
    head: Math.max(0, Math.min(chosen.head, (config?.nHeads ?? 1) - 1)),
  };
}

export interface HeadView {
  data: AttentionHead;
  pieces: string[];
}

/**
 * The last question asked, shared: the chapter's figures all ask the same one, and it crosses once. A new
 * reading (new text, kernels or model) is a new object, so the reading itself is part of the key.
 */
let asked: { reading: object; key: string; answer: Promise<HeadView> } | undefined;

/** The newest answer for the chosen head of the reader's current text. */
export function headAnswer(): Answer<HeadView> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading) return undefined;
    const { layer, head } = chosenHead();
    const key = `${layer}|${head}`;
    if (asked?.reading !== reading || asked.key !== key) {
      const pieces = [...reading.pieces];
      const answer = chapterWorker<typeof handlers>(chapter.slug)
        .head([...reading.tokens], layer, head)
        .then((data) => ({ data, pieces }));
      asked = { reading, key, answer };
      // A failed question is asked again next time rather than remembered.
      answer.catch(() => {
        if (asked?.answer === answer) asked = undefined;
      });
    }
    return asked.answer;
  });
}

/** Row t of a [T, width] array (a view). */
export function row(data: Float32Array, t: number, width: number): Float32Array {
  return data.subarray(t * width, (t + 1) * width);
}
