/**
 * Changes that must not overlap, where only the reader's last choice matters (which model the course runs):
 * each runs after the one before has finished, and one that a newer choice overtook before its turn is
 * skipped. Plain TypeScript, so that the rule is tested on its own (tests/app-last-choice.test.ts).
 */

/**
 * A queue of changes: `inTurn(change)` runs `change` once every earlier change has finished and
 * `waitFor()` (something every change must wait for, such as the first load) has settled, and resolves to
 * its answer; or resolves to false without running it, when a newer change was asked for before its turn.
 * A change that throws rejects its own promise only: the next still runs.
 */
export function lastChoiceWins(
  waitFor: () => unknown = () => undefined,
): (change: () => Promise<boolean>) => Promise<boolean> {
  let newest = 0;
  let previous: Promise<unknown> = Promise.resolve();
  return (change) => {
    const request = ++newest;
    const run = previous.then(waitFor).then(() => (request === newest ? change() : false));
    previous = run.catch(() => undefined);
    return run;
  };
}
