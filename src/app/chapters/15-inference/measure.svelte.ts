/**
 * Chapter 15's measurements (lib/figure/measurement.svelte.ts runs them): the worker they ask, `lab`, where
 * each figure keeps its newest answer and the roofline reads every workload measured so far, and the units
 * the figures say them in.
 */
import { chapterWorker } from '$lib/worker/client.svelte.ts';
import { chapter } from './chapter.ts';
import type {
  BatchAnswer,
  CurveAnswer,
  DeviceAnswer,
  handlers,
  PrefillDecodeAnswer,
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
