/**
 * The part of `npm run bench:train` that Node and Chromium share: the configuration, the seeded random
 * batches, and the timed loop of `trainStep`s, so that the browser's trainer (scripts/browser/page/train.ts,
 * with the page's shard workers) is timed on exactly the steps Node's is (bench-train.ts, worker threads).
 */
import { mulberry32 } from '../src/engine/init.ts';
import { createAdamWState } from '../src/engine/train/adamw.ts';
import { BatchSampler, type Batch } from '../src/engine/train/data.ts';
import { namedParameters, zerosLike, type Weights } from '../src/engine/train/parameters.ts';
import type { ShardWorker } from '../src/engine/train/shards.ts';
import { trainStep, type TrainStepOptions } from '../src/engine/train/step.ts';

/** What one side measured at one thread count. */
export interface Measurement {
  name: string;
  threads: number;
  /** Over all timed steps: their tokens ÷ their total time. */
  tokensPerSecond: number;
  /** The median step's: what a typical step gives, whatever a few disturbed ones did. */
  medianStepTokensPerSecond: number;
  /** The fastest step's: the one least disturbed when the machine is shared. */
  bestStepTokensPerSecond: number;
  stepSeconds: number[];
  /** The loss of the first step: about ln(vocab) for random weights on both sides, a check of the setup. */
  firstLoss: number;
  parameters: number;
}

/** Mean, median and best tokens/s of steps of `tokens` tokens that took `stepSeconds` each. */
export function stepRates(
  tokens: number,
  stepSeconds: readonly number[],
): Pick<Measurement, 'tokensPerSecond' | 'medianStepTokensPerSecond' | 'bestStepTokensPerSecond'> {
  const sorted = [...stepSeconds].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  const total = sorted.reduce((a, b) => a + b, 0);
  return {
    tokensPerSecond: (tokens * sorted.length) / total,
    medianStepTokensPerSecond: tokens / median,
    bestStepTokensPerSecond: tokens / sorted[0],
  };
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

/**
 * One side's training, a step at a time: `step` runs trainStep on a batch and returns its seconds, so that a
 * caller can interleave its steps with another side's (bench-train.ts alternates with PyTorch's).
 */
export class TrainStepTimer {
  private readonly gradients: Weights;
  private readonly optimizer;
  private readonly seconds: number[] = [];
  private firstLoss = NaN;
  private tokens = 0;

  constructor(
    private readonly name: string,
    private readonly threads: number,
    private readonly weights: Weights,
    private readonly workers: readonly ShardWorker[],
    private readonly perShard: Weights[],
    private readonly stepOptions: TrainStepOptions,
  ) {
    this.gradients = zerosLike(weights);
    this.optimizer = createAdamWState(weights);
  }

  /** One step on `batch`; `timed` false for a warm-up step (its time is not kept). Returns its seconds. */
  async step(batch: Batch, timed = true): Promise<number> {
    const { workers, perShard, gradients, weights, optimizer, stepOptions } = this;
    const start = performance.now();
    const { loss } = await trainStep(workers, perShard, gradients, weights, optimizer, batch, stepOptions);
    const seconds = (performance.now() - start) / 1000;
    if (Number.isNaN(this.firstLoss)) this.firstLoss = loss;
    if (timed) this.seconds.push(seconds);
    this.tokens = batch.batchSize * batch.seqLen;
    return seconds;
  }

  measurement(): Measurement {
    return {
      name: this.name,
      threads: this.threads,
      ...stepRates(this.tokens, this.seconds),
      stepSeconds: [...this.seconds],
      firstLoss: this.firstLoss,
      parameters: namedParameters(this.weights).reduce((sum, p) => sum + p.tensor.data.length, 0),
    };
  }
}

/** Times `trainStep` over `batches` (the first `warmup` untimed) with the given workers. */
export async function timeTrainSteps(
  name: string,
  threads: number,
  weights: Weights,
  workers: readonly ShardWorker[],
  perShard: Weights[],
  batches: readonly Batch[],
  warmup: number,
  stepOptions: TrainStepOptions,
): Promise<Measurement> {
  const timer = new TrainStepTimer(name, threads, weights, workers, perShard, stepOptions);
  for (const [index, batch] of batches.entries()) await timer.step(batch, index >= warmup);
  return timer.measurement();
}
