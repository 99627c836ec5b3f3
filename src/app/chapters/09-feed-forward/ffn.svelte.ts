/**
 * Chapter 9's shared choices and its one question per text and layer: the layer the figures look at and
 * the neuron chosen (by default the most active at the focus token), and the worker's answer for the block
 * (steps, activations, top neurons), asked once by the page and handed to the figures.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { focusPosition } from '$lib/figure/focus.ts';
import { course } from '$lib/state/course.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type { BlockView, handlers } from './worker.ts';
import { sameTokens } from '$lib/figure/latest.ts';

export const ffnChoice = $state({
  /** The layer the figures show; −1 is the last (and stays the last for a model with other depth). */
  layer: -1,
  /** The chosen neuron; −1 follows the most active one at the focus token. */
  neuron: -1,
});

/** The layer the figures show, for a model of `nLayers` layers. */
export function chosenLayer(nLayers: number): number {
  return ffnChoice.layer < 0 || ffnChoice.layer >= nLayers ? nLayers - 1 : ffnChoice.layer;
}

export interface Block {
  data: BlockView;
  pieces: string[];
}

export function blockAnswer(): Answer<Block> {
  return workerAnswer(() => {
    const reading = engine.reading;
    const config = engine.model?.config;
    if (!reading || !config) return undefined;
    const pieces = [...reading.pieces];
    const position = Math.max(0, focusPosition(course.token, reading.tokens.length));
    return chapterWorker<typeof handlers>(chapter.slug)
      .block([...reading.tokens], chosenLayer(config.nLayers), position)
      .then((data) => ({ data, pieces }));
  });
}

/** The neuron the figures follow: the reader's choice, else the block's most active one. */
export function chosenNeuron(block: BlockView | undefined): number {
  if (!block) return 0;
  return ffnChoice.neuron >= 0 && ffnChoice.neuron < block.hidden ? ffnChoice.neuron : block.top[0].neuron;
}

/**
 * A figure's question about the chosen neuron of the page's block (read through `block`, so a new block asks
 * again): asked once the block answers for the text being read (never for a stale block), with the reading's
 * tokens, the block's layer and the chosen neuron; the pieces are kept beside the answer, as the block keeps them.
 */
export function neuronAnswer<T>(
  block: () => BlockView | undefined,
  ask: (tokens: number[], layer: number, neuron: number) => Promise<T>,
): Answer<{ data: T; pieces: string[] }> {
  return workerAnswer(() => {
    const reading = engine.reading;
    const current = block();
    if (!reading || !current || !sameTokens(current.tokens, reading.tokens)) return undefined;
    const pieces = [...reading.pieces];
    return ask([...reading.tokens], current.layer, chosenNeuron(current)).then((data) => ({ data, pieces }));
  });
}
