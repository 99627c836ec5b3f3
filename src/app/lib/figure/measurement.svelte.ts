/**
 * A measurement the reader starts (chapters 15 and 16 time the engine): a button runs it, it reports its
 * progress and can be stopped between timed runs, and it keeps its answer. Measurements never run by
 * themselves (they take seconds and keep a core busy). A measurement of the reader's text belongs to the
 * tokens it was measured on: `current` is its answer only while the text is still those tokens.
 */
import * as Comlink from 'comlink';
import { engine } from '$lib/worker/client.svelte.ts';
import { sameTokens } from './latest.ts';

/** Called by the worker as it goes (done of total); it answers whether to go on (false: the reader stopped). */
export type Progress = (done: number, total: number) => boolean | Promise<boolean>;

export interface Measurement<T> {
  readonly result: T | undefined;
  readonly running: boolean;
  /** 0 … 1 while running. */
  readonly progress: number;
  readonly failure: string | undefined;
  /** True when the reader stopped the last run. */
  readonly stopped: boolean;
  start(): Promise<void>;
  stop(): void;
  clear(): void;
}

/** `run` calls the worker with the progress callback it is given; it resolves to null when stopped. */
export function measurement<T>(
  run: (onProgress: Progress) => Promise<T | null> | undefined,
  keep?: (result: T) => void,
): Measurement<T> {
  let result = $state.raw<T | undefined>(undefined);
  let running = $state(false);
  let progress = $state(0);
  let failure = $state<string | undefined>(undefined);
  let stopped = $state(false);
  let stopRequested = false;
  let runs = 0;

  return {
    get result() {
      return result;
    },
    get running() {
      return running;
    },
    get progress() {
      return progress;
    },
    get failure() {
      return failure;
    },
    get stopped() {
      return stopped;
    },
    async start() {
      if (running) return;
      const mine = ++runs;
      stopRequested = false;
      stopped = false;
      failure = undefined;
      progress = 0;
      running = true;
      try {
        const request = run(
          Comlink.proxy((done: number, total: number) => {
            if (mine === runs) progress = total > 0 ? done / total : 0;
            return !stopRequested;
          }),
        );
        if (!request) return;
        const answer = await request;
        if (mine !== runs) return;
        if (answer === null) stopped = true;
        else {
          result = answer;
          keep?.(answer);
        }
      } catch (error) {
        if (mine === runs) failure = error instanceof Error ? error.message : String(error);
      } finally {
        if (mine === runs) running = false;
      }
    },
    stop() {
      stopRequested = true;
    },
    clear() {
      runs++;
      stopRequested = true;
      running = false;
      result = undefined;
    },
  };
}

/** A measurement of the reader's text, and its answer while the text is still the tokens it was measured on. */
export interface TextMeasurement<T> extends Measurement<T> {
  readonly current: T | undefined;
}

/** `run` is handed the reader's tokens when the reader starts it (nothing runs without a text). */
export function textMeasurement<T extends { tokens: readonly number[] }>(
  run: (tokens: number[], onProgress: Progress) => Promise<T | null>,
  keep?: (result: T) => void,
): TextMeasurement<T> {
  const m = measurement<T>((onProgress) => {
    const reading = engine.reading;
    return reading ? run([...reading.tokens], onProgress) : undefined;
  }, keep);
  const current = $derived(sameTokens(m.result?.tokens, engine.reading?.tokens) ? m.result : undefined);
  return Object.defineProperty(m, 'current', { get: () => current, enumerable: true }) as TextMeasurement<T>;
}
