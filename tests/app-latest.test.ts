/** src/app/lib/figure/latest.ts: a figure keeps only the answer to its newest question, for the tokens it asked about. */
import { describe, expect, it } from 'vitest';
import { sameTokens, whileCurrent } from '../src/app/lib/figure/latest.ts';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('whileCurrent', () => {
  it('shows the answer of a current request and drops one that arrives after its effect ended', async () => {
    const shown: string[] = [];
    const failed: string[] = [];
    const older = deferred<string>();
    const newer = deferred<string>();
    const stopOlder = whileCurrent(
      older.promise,
      (a) => shown.push(a),
      (m) => failed.push(m),
    );
    stopOlder(); // the text changed: the effect runs again with a new request
    whileCurrent(
      newer.promise,
      (a) => shown.push(a),
      (m) => failed.push(m),
    );
    newer.resolve('new text');
    older.resolve('old text'); // arrives late
    await Promise.resolve();
    await Promise.resolve();
    expect(shown).toEqual(['new text']);
    expect(failed).toEqual([]);
  });

  it("passes a current request's error message on, and drops a stale one's", async () => {
    const failed: string[] = [];
    const current = deferred<number>();
    const stale = deferred<number>();
    whileCurrent(
      current.promise,
      () => {},
      (m) => failed.push(m),
    );
    whileCurrent(
      stale.promise,
      () => {},
      (m) => failed.push(m),
    )();
    current.reject(new Error('no model is loaded yet'));
    stale.reject(new Error('old'));
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(failed).toEqual(['no model is loaded yet']);
  });
});

describe('sameTokens', () => {
  it('is true only for the same tokens in the same order', () => {
    expect(sameTokens([256, 5, 9], [256, 5, 9])).toBe(true);
    expect(sameTokens([256, 5, 9], [256, 5])).toBe(false);
    expect(sameTokens([256, 5], [256, 5, 9])).toBe(false);
    expect(sameTokens([256, 9, 5], [256, 5, 9])).toBe(false);
    expect(sameTokens(undefined, [256])).toBe(false);
    expect(sameTokens([256], undefined)).toBe(false);
  });
});
