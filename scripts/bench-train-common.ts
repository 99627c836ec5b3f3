/**
 * The part of `npm run bench:train` that Node and Chromium share: the configuration, the seeded random
 * batches, and the timed loop of `trainStep`s, so that the browser's trainer (scripts/browser/page/train.ts,
 * with the page's shard workers) is timed on exactly the steps Node's is (bench-train.ts, worker threads).
 */
import { mulberry32 } from '../src/engine/init.ts';
import type { ModelConfig } from '../src/engine/model.ts';
import { createAdamWState } from '../src/engine/train/adamw.ts';
import { BatchSampler, type Batch } from '../src/engine/train/data.ts';
import { namedParameters, zerosLike, type Weights } from '../src/engine/train/parameters.ts';
import type { ShardWorker } from '../src/engine/train/shards.ts';
import { trainStep, type TrainStepOptions } from '../src/engine/train/step.ts';

/** What one side measured at one thread count. */
export interface Measurement {
  name: string;
  threads: number;
  tokensPerSecond: number;
  bestStepTokensPerSecond: number;
  stepSeconds: number[];
  /** The loss of the first step: about ln(vocab) for random weights on both sides, a check of the setup. */
  firstLoss: number;
  parameters: number;
}

/** The shape and batch a bench run trains. */
export interface TrainBenchShape {
  batchSize: number;
  seqLen: number;
  vocabSize: number;
  shards: number;
  seed: number;
}

/** Random token batches: windows of a seeded random token stream, drawn by the trainer's own sampler. */
export function randomBatches(shape: TrainBenchShape, count: number): Batch[] {
  const random = mulberry32(shape.seed);
  const tokens = Int32Array.from({ length: 64 * shape.batchSize * (shape.seqLen + 1) }, () =>
    Math.floor(random() * shape.vocabSize),
  );
  const sampler = new BatchSampler(tokens, shape.batchSize, shape.seqLen, shape.seed);
  return Array.from({ length: count }, () => sampler.next());
}

/** Times `trainStep` over `batches` (the first `warmup` untimed) with the given workers. */
export async function timeTrainSteps(
  name: string,
  threads: number,
  config: ModelConfig,
  weights: Weights,
  workers: readonly ShardWorker[],
  perShard: Weights[],
  batches: readonly Batch[],
  warmup: number,
  stepOptions: TrainStepOptions,
): Promise<Measurement> {
  const gradients = zerosLike(weights);
  const optimizer = createAdamWState(weights);
  const tokens = batches[0].batchSize * batches[0].seqLen;
  let firstLoss = NaN;
  const stepSeconds: number[] = [];
  for (const [index, batch] of batches.entries()) {
    const start = performance.now();
    const { loss } = await trainStep(workers, perShard, gradients, weights, optimizer, batch, stepOptions);
    if (index >= warmup) stepSeconds.push((performance.now() - start) / 1000);
    if (index === 0) firstLoss = loss;
  }
  const total = stepSeconds.reduce((a, b) => a + b, 0);
  let best = Infinity;
  for (const seconds of stepSeconds) best = Math.min(best, seconds);
  return {
    name,
    threads,
    tokensPerSecond: (tokens * stepSeconds.length) / total,
    bestStepTokensPerSecond: tokens / best,
    stepSeconds,
    firstLoss,
    parameters: namedParameters(weights).reduce((sum, p) => sum + p.tensor.data.length, 0),
  };
}
