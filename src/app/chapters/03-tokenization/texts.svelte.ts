/**
 * What chapter 3's figures share, as reactive state: GPT-4o's tokenizer (fetched from this site when the
 * first figure that needs it appears) and the text a figure tokenizes, the reader's own or a sample.
 * Call while a component initialises.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { course } from '$lib/state/course.svelte.ts';
import { cutText, loadO200k, MAX_TEXT_CHARS, SAMPLES, type O200k } from './tokenization.ts';

/** GPT-4o's tokenizer once it is loaded (loadO200k fetches it once for the whole page). */
export function o200kTokenizer(): Answer<O200k> {
  return workerAnswer(() => loadO200k());
}

/** The choices of a text picker: the reader's text first, then the samples. */
export const TEXT_OPTIONS: readonly string[] = ['Your text', ...SAMPLES.map((sample) => sample.name)];

export interface TextChoice {
  /** Which of TEXT_OPTIONS is chosen (0: the reader's text). */
  choice: number;
  /** The chosen sample, or undefined for the reader's text. */
  readonly sample: (typeof SAMPLES)[number] | undefined;
  /** What the text is, in words: "your text", "Hindi"… */
  readonly source: string;
  /** The text itself, cut to MAX_TEXT_CHARS. */
  readonly text: string;
}

/** The text a figure shows, following the reader's prompt while it is the one chosen. */
export function textChoice(): TextChoice {
  let choice = $state(0);
  const sample = $derived(choice === 0 ? undefined : SAMPLES[choice - 1]);
  const text = $derived(cutText(sample ? sample.text : course.prompt, MAX_TEXT_CHARS));
  return {
    get choice() {
      return choice;
    },
    set choice(value: number) {
      choice = value;
    },
    get sample() {
      return sample;
    },
    get source() {
      return sample ? sample.name : 'your text';
    },
    get text() {
      return text;
    },
  };
}
