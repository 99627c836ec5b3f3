/**
 * Chapter 16's shared choices and questions: which matrix the histogram, the block and the group-size figures
 * show (and which row and block of it), and the whole-model measurements, asked once per model, type by type,
 * so that the reader's keystrokes can reach the worker between them.
 */
import { workerAnswer, type Answer } from '$lib/figure/answer.svelte.ts';
import { chapterWorker, engine } from '$lib/worker/client.svelte.ts';
import { MODEL_TYPES } from '../../../analysis/quantization.ts';
import { chapter } from './chapter.ts';
import type { Evaluation, handlers, MatrixInfo } from './worker.ts';

export const worker = () => chapterWorker<typeof handlers>(chapter.slug);

/** The matrix, row and block of 32 the figures look at, and the element whose bits are shown. */
export const choice = $state({ matrix: 'layers[0].wq', row: 0, block: 0, element: -1 });

/** The model's weight matrices (asked again when another model is loaded). */
export function matricesAnswer(): Answer<MatrixInfo[]> {
  return workerAnswer(() => (engine.model ? worker().matrices() : undefined));
}

/**
 * Every type's bytes and held-out perplexity, filled in as each arrives: one request per type, each sent when
 * the one before has answered, so a keystroke's figures are not queued behind all of them.
 */
export function evaluationsAnswer(): { readonly rows: Evaluation[]; readonly failure: string | undefined } {
  let rows = $state.raw<Evaluation[]>([]);
  let failure = $state<string | undefined>(undefined);
  $effect(() => {
    const model = engine.model;
    if (!model) return;
    let stale = false;
    rows = [];
    (async () => {
      const done: Evaluation[] = [];
      for (const type of MODEL_TYPES) {
        const row = await worker().evaluate(type);
        if (stale) return;
        done.push(row);
        rows = [...done];
      }
    })().catch((error: unknown) => {
      if (!stale) failure = error instanceof Error ? error.message : String(error);
    });
    return () => {
      stale = true;
    };
  });
  return {
    get rows() {
      return rows;
    },
    get failure() {
      return failure;
    },
  };
}

/** A number of bytes in words: 5,247,488 → "5.25 MB", 882,688 → "883 kB". */
export function megabytes(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${Math.round(bytes / 1e3)} kB`;
}

/** A weight: 4 significant digits, a true minus sign. */
export function weight(value: number): string {
  if (value === 0) return '0';
  return Number(value.toPrecision(4)).toString().replace('-', '−');
}
