/** The messages between the Node driver (../chromium.ts), the page (main.ts) and its worker (worker.ts). */

import type { ModelConfig } from '../../../src/engine/model.ts';
import type { TrainStepOptions } from '../../../src/engine/train/step.ts';
import type { TrainBenchShape } from '../../bench-train-common.ts';

/** What the training bench's browser line trains (`&train=` JSON): the same steps bench-train.ts times. */
export interface TrainBenchRequest {
  config: ModelConfig;
  shape: TrainBenchShape;
  warmup: number;
  steps: number;
  threads: number[];
  stepOptions: TrainStepOptions;
}

/**
 * What the page is asked to do, from its URL: `?task=bench`, `?task=check`, `?task=train&train=…` or
 * `?task=decode&parts=batching,quantized`, and `&quick`.
 */
export interface PageRequest {
  task: 'bench' | 'check' | 'train' | 'decode';
  /** Shorter rounds (noisier figures). */
  quick: boolean;
  train?: TrainBenchRequest;
  /** What the decode task measures (page/decode.ts): batched decoding, quantized weights, or both. */
  parts?: { batching: boolean; quantized: boolean };
}

export type PageMessage =
  { type: 'log'; line: string } | { type: 'result'; result: unknown } | { type: 'error'; message: string };
