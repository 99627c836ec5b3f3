/**
 * The keys that move through a row of options (a listbox of cells, chips or dials; a group of token
 * buttons), the same in every figure: an arrow moves one step (right and down forward, left and up back),
 * Home and End go to either end.
 */
const STEPS: Record<string, number> = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

/** The index `key` moves `current` to, within 0 … count−1, or undefined for a key that does not move. */
export function optionMove(key: string, current: number, count: number): number | undefined {
  let next: number;
  if (key in STEPS) next = current + STEPS[key];
  else if (key === 'Home') next = 0;
  else if (key === 'End') next = count - 1;
  else return undefined;
  return Math.max(0, Math.min(next, count - 1));
}
