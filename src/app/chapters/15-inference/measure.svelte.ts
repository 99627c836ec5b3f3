/**
 * A measurement the reader starts: a button runs one of the worker's handlers (worker.ts), shows its progress,
 * can stop it between timed runs, and keeps its answer. Measurements never run by themselves (they take
 * seconds and keep a core busy), and an answer belongs to the tokens it was measured on: a figure shows it
 * only while the reader's text is still those tokens. The answers are also kept in `lab`, where the roofline
 * reads every workload measured so far.
 */
import * as Comlink from 'comlink';
import { chapterWorker } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type {
  BatchAnswer,
  CurveAnswer,
  DeviceAnswer,
  handlers,
  PrefillDecodeAnswer,
  Progress,
  SpeculativeAnswer,
} from './worker.ts';

export const worker = () => chapterWorker<typeof handlers>(chapter.slug);

/** The newest answer of each measurement on this page, for the roofline. */
export const lab: {
  prefill: PrefillDecodeAnswer | undefined;
  curve: CurveAnswer | undefined;
  batch: BatchAnswer | undefined;
  speculative: SpeculativeAnswer | undefined;
  device: DeviceAnswer | undefined;
} = $state({
  prefill: undefined,
  curve: undefined,
  batch: undefined,
  speculative: undefined,
  device: undefined,
});

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

/** Whether an answer was measured on exactly these tokens. */
export function sameTokens(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  return a !== undefined && b !== undefined && a.length === b.length && a.every((t, i) => t === b[i]);
}

/** Milliseconds for the reader, three significant digits at most. */
export function ms(value: number): string {
  if (value >= 100) return `${Math.round(value).toLocaleString('en')} ms`;
  if (value >= 1) return `${Number(value.toPrecision(3))} ms`;
  return `${Number((value * 1000).toPrecision(3))} µs`;
}

/** A rate, three significant digits (e.g. tokens/s, GFLOP/s). */
export function rate(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return value >= 1000 ? Math.round(value).toLocaleString('en') : String(Number(value.toPrecision(3)));
}

/** Operations in words: 1.2 MFLOP, 3.4 GFLOP. */
export function flops(value: number): string {
  const units: [number, string][] = [
    [1e12, 'TFLOP'],
    [1e9, 'GFLOP'],
    [1e6, 'MFLOP'],
    [1e3, 'kFLOP'],
  ];
  const [scale, unit] = units.find(([s]) => value >= s) ?? [1, 'FLOP'];
  return `${Number((value / scale).toPrecision(3))} ${unit}`;
}

/** Bytes in binary units, three significant digits. */
export function bytes(value: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${Math.round(value)} bytes` : `${Number(value.toPrecision(3))} ${units[unit]}`;
}
