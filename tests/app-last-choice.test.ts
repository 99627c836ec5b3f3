/**
 * src/app/lib/worker/last-choice.ts, the rule every change of the course's model follows: changes never
 * overlap, and the reader's last choice is the one that ends loaded.
 */
import { describe, expect, it } from 'vitest';
import { lastChoiceWins } from '../src/app/lib/worker/last-choice.ts';

/** A change that logs when it starts and ends, and ends when the test says so. */
function change(name: string, log: string[]) {
  let finish: (ok: boolean) => void = () => {};
  const run = () =>
    new Promise<boolean>((resolve) => {
      log.push(`${name} starts`);
      finish = (ok) => {
        log.push(`${name} ends`);
        resolve(ok);
      };
    });
  return { run, finish: (ok = true) => finish(ok) };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

describe('lastChoiceWins', () => {
  it('runs the change under way to its end, skips those overtaken while it ran, then runs the last', async () => {
    const inTurn = lastChoiceWins();
    const log: string[] = [];
    const [checkpoint, other, back] = ['step 630', 'step 1,200', 'house'].map((name) => change(name, log));
    const first = inTurn(checkpoint.run);
    await settle();
    const second = inTurn(other.run);
    const third = inTurn(back.run);
    await settle();
    expect(log).toEqual(['step 630 starts']); // nothing overlaps the change under way
    checkpoint.finish();
    await settle();
    back.finish();
    expect(await first).toBe(true);
    expect(await second).toBe(false);
    expect(await third).toBe(true);
    expect(log).toEqual(['step 630 starts', 'step 630 ends', 'house starts', 'house ends']);
  });

  it('skips every choice but the last of those asked for at once', async () => {
    const inTurn = lastChoiceWins();
    const ran: number[] = [];
    const answers = await Promise.all([1, 2, 3].map((n) => inTurn(async () => (ran.push(n), true))));
    expect(ran).toEqual([3]);
    expect(answers).toEqual([false, false, true]);
  });

  it('waits for what every change must wait for, and goes on after a change that throws', async () => {
    let loaded = false;
    const firstLoad = new Promise<void>((resolve) => setTimeout(() => ((loaded = true), resolve()), 5));
    const inTurn = lastChoiceWins(() => firstLoad);
    const failing = inTurn(async () => {
      expect(loaded).toBe(true);
      throw new Error('no such checkpoint');
    });
    await expect(failing).rejects.toThrow('no such checkpoint');
    await expect(inTurn(async () => true)).resolves.toBe(true);
  });
});
