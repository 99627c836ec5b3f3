/**
 * The row the block figures look at: `choice.matrix`, row `choice.row`, asked of the worker; the block of 32
 * chosen in it is cut out here.
 */
import { workerAnswer } from '$lib/figure/answer.svelte.ts';
import { engine } from '$lib/worker/client.svelte.ts';
import { choice, worker } from './quant.svelte.ts';
import type { RowAnswer } from './worker.ts';

export const BLOCK = 32;

export interface ChosenBlock {
  row: RowAnswer;
  /** How many blocks of 32 the row holds, the one chosen, and its 32 values. */
  blocks: number;
  block: number;
  values: number[];
  /** Its first column in the row. */
  start: number;
}

export function rowAnswer() {
  const answer = workerAnswer(() => (engine.model ? worker().row(choice.matrix, choice.row) : undefined));
  const chosen = $derived.by((): ChosenBlock | undefined => {
    const row = answer.current;
    if (!row) return undefined;
    const blocks = Math.max(1, Math.floor(row.values.length / BLOCK));
    const block = Math.max(0, Math.min(choice.block, blocks - 1));
    const start = block * BLOCK;
    return { row, blocks, block, start, values: Array.from(row.values.subarray(start, start + BLOCK)) };
  });
  return {
    get current() {
      return chosen;
    },
    get failure() {
      return answer.failure;
    },
  };
}
