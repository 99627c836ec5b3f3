/**
 * The keys that move through a row of options (a listbox of cells, chips or dials; a group of token
 * buttons), the same in every figure: an arrow moves one step (right and down forward, left and up back),
 * Home and End go to either end. A grid of cells (a layers × heads map) moves the same way, but up and down
 * move a whole row.
 */
const STEPS: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

/** Where `key` moves `current` by `steps`, Home and End, within 0 … count−1; undefined for a key that does not move. */
function move(
  steps: Record<string, number>,
  key: string,
  current: number,
  count: number,
): number | undefined {
  let next: number;
  if (key in steps) next = current + steps[key];
  else if (key === 'Home') next = 0;
  else if (key === 'End') next = count - 1;
  else return undefined;
  return Math.max(0, Math.min(next, count - 1));
}

/** The index `key` moves `current` to, within 0 … count−1, or undefined for a key that does not move. */
export function optionMove(key: string, current: number, count: number): number | undefined {
  return move(STEPS, key, current, count);
}

/** The same in a grid of `count` cells laid out in rows of `width`: up and down move one row. */
export function gridMove(key: string, current: number, count: number, width: number): number | undefined {
  return move({ ArrowLeft: -1, ArrowRight: 1, ArrowUp: -width, ArrowDown: width }, key, current, count);
}
