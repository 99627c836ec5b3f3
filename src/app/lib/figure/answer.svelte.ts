/**
 * A figure's question to the engine worker, as reactive state: `ask` runs in an effect, so it is asked
 * again whenever what it reads changes (the reader's text, a chosen layer…), and only the newest answer
 * is drawn (whileCurrent). While a new answer is on its way the previous one stays, so a figure never
 * collapses while the reader types. Call while a component initialises.
 */
import { whileCurrent } from './latest.ts';

export interface Answer<T> {
  /** The newest answer, or undefined before the first. */
  readonly current: T | undefined;
  /** Why the newest question failed, if it did (cleared by the next answer). */
  readonly failure: string | undefined;
}

/** `ask` returns the worker's promise, or undefined when there is nothing to ask yet (no model, no text). */
export function workerAnswer<T>(ask: () => Promise<T> | undefined): Answer<T> {
  let current = $state.raw<T | undefined>(undefined);
  let failure = $state<string | undefined>(undefined);
  $effect(() => {
    const request = ask();
    if (!request) return;
    return whileCurrent(
      request,
      (answer) => {
        current = answer;
        failure = undefined;
      },
      (message) => (failure = message),
    );
  });
  return {
    get current() {
      return current;
    },
    get failure() {
      return failure;
    },
  };
}
