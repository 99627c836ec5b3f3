/**
 * Chapter 11's shared state: the sampler's settings (the course's, in the URL: chapter 12's loop samples with
 * them too), the last row of logits of the reader's
 * text with the vocabulary's pieces (one answer for every figure of the page), and the `glassbox generate`
 * command that reproduces a draw in Node.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { course } from '$lib/state/course.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import type { SamplingSettings } from '../../../engine/sampling.ts';
import { sortedDistribution, type SortedDistribution } from '../../../analysis/sampling.ts';
import { chapter } from './chapter.ts';
import type { handlers, LastLogits } from './worker.ts';

/** The settings the page samples with now. */
export function samplingSettings(): SamplingSettings {
  return { temperature: course.temperature, topK: course.topK, topP: course.topP, minP: course.minP };
}

let lastDistribution: { row: LastRow; key: string; view: SortedDistribution } | undefined;

/**
 * sortedDistribution of `row` at `settings`, computed once for the figures that show it (the distribution and
 * the draw ask for the same one on every slider move).
 */
export function distributionOf(row: LastRow, settings: SamplingSettings): SortedDistribution {
  const key = JSON.stringify(settings);
  if (lastDistribution?.row !== row || lastDistribution.key !== key) {
    lastDistribution = { row, key, view: sortedDistribution(row.logits, settings) };
  }
  return lastDistribution.view;
}

export function samplingWorker() {
  return chapterWorker<typeof handlers>(chapter.slug);
}

export interface LastRow extends LastLogits {
  /** Every token of the vocabulary as the figures write it, by id. */
  vocabulary: string[];
  /** The reader's tokens' pieces, for the text this answer belongs to. */
  pieces: string[];
  prompt: string;
}

let vocabularyFor: { model: unknown; pieces: Promise<string[]> } | undefined;

/** The vocabulary's pieces, asked once per loaded model. */
function vocabulary(): Promise<string[]> {
  const model = engine.model;
  if (vocabularyFor && vocabularyFor.model === model) return vocabularyFor.pieces;
  const pieces = samplingWorker().vocabulary();
  vocabularyFor = { model, pieces };
  return pieces;
}

/** The last row of logits of the reader's text, with the vocabulary: the one answer the page's figures share. */
export function lastRowAnswer(): Answer<LastRow> {
  return workerAnswer(() => {
    const reading = engine.reading;
    if (!reading) return undefined;
    const { pieces, prompt } = reading;
    return Promise.all([samplingWorker().lastLogits([...reading.tokens]), vocabulary()]).then(
      ([row, vocabulary]) => ({ ...row, vocabulary, pieces: [...pieces], prompt }),
    );
  });
}

/** A text quoted for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The `glassbox generate` command that draws the same tokens in Node: `--steps` counts positions with the
 * prompt (its T tokens, BOS included, fill positions 0 … T − 1), so T − 1 + n positions give n new tokens.
 */
export function generateCommand(
  prompt: string,
  promptTokens: number,
  settings: SamplingSettings,
  seed: number,
  newTokens: number,
): string {
  const model = engine.model?.id === 'house' ? 'models/house' : '<your model>';
  return [
    'npx glassbox generate',
    `--model ${model}`,
    `--prompt ${shellQuote(prompt)}`,
    `--temperature ${settings.temperature}`,
    `--top-k ${settings.topK ?? 0}`,
    `--top-p ${settings.topP ?? 0}`,
    `--min-p ${settings.minP ?? 0}`,
    `--seed ${seed}`,
    `--steps ${promptTokens - 1 + newTokens}`,
  ].join(' ');
}
