/**
 * For a figure's $effect that asks the engine worker something: hands the answer to `show` (or the error's
 * message to `fail`) only while the effect that asked is current. When the reader's text changes, the effect
 * runs again and the older answer, arriving late, is dropped. Return the result from the effect.
 */
export function whileCurrent<T>(
  request: Promise<T>,
  show: (answer: T) => void,
  fail: (message: string) => void = () => {},
): () => void {
  let stale = false;
  request.then(
    (answer) => {
      if (!stale) show(answer);
    },
    (error: unknown) => {
      if (!stale) fail(error instanceof Error ? error.message : String(error));
    },
  );
  return () => {
    stale = true;
  };
}

/** Whether an answer was computed for exactly these tokens (an answer belongs to the text it was asked for). */
export function sameTokens(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((t, i) => t === b[i]);
}
