/**
 * Chapter 6's one question to the worker: a layer's q and k (before and after RoPE) and scores for the
 * reader's text, with the pieces of the tokens it was asked about (so labels always match the numbers).
 * Each figure asks for the layer it shows; the worker slices them all from the same traced pass.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { handlers, RopeLayer } from './worker.ts';

export interface RopeView {
  data: RopeLayer;
  pieces: string[];
}

/** The newest answer for `layer()` of the reader's current text (and, with `reverse`, of its reversal). */
export function ropeLayerAnswer(
  layer: () => number,
  tokensOf = (tokens: number[]) => tokens,
): Answer<RopeView> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading) return undefined;
    const wanted = Math.max(0, Math.min(layer(), (engine.model?.config.nLayers ?? 1) - 1));
    const pieces = [...reading.pieces];
    return chapterWorker<typeof handlers>(chapter.slug)
      .ropeLayer(tokensOf([...reading.tokens]), wanted)
      .then((data) => ({ data, pieces }));
  });
}
