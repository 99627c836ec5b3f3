/**
 * One training step, and the validation loss: the pieces of this folder in the order a training loop
 * uses them.
 *
 *   loss, gradient = the batch's mean over its shards (shards.ts: forward → backward on each shard)
 *        → clip the gradient norm → lr = schedule(step) → AdamW update → tell the workers the weights changed
 *
 * There is one step for every way of computing the gradient: one shard on this thread is the plain step
 * (the whole batch through one TrainingModel), several shards are averaged by size, on one thread or many.
 */
import { adamwStep, DEFAULT_ADAMW, type AdamWConfig, type AdamWState } from './adamw.ts';
import { clipGradientNorm } from './clip.ts';
import type { Batch } from './data.ts';
import type { TrainingModel } from './model.ts';
import type { FloatArray } from './ops.ts';
import type { Weights } from './parameters.ts';
import { learningRateAt, type ScheduleConfig } from './schedule.ts';
import { batchGradient, meanOverPositions, type ShardWorker } from './shards.ts';

export interface TrainStepOptions {
  schedule: ScheduleConfig;
  /** Gradients longer than this (L2 norm over all parameters) are scaled down to it. */
  maxGradNorm: number;
  adamw?: AdamWConfig;
}

export interface TrainStepResult {
  /** The batch's mean cross-entropy loss, before the update. */
  loss: number;
  /** The gradient norm before clipping. */
  gradNorm: number;
  learningRate: number;
}

/**
 * Trains on one batch, cut into `shardGradients.length` shards (one: the whole batch) whose gradients the
 * workers compute; the averaged gradient lands in `gradients`, and AdamW updates `weights` on this thread.
 * The step number (for the schedule) is the optimizer's step count, so a restored optimizer state resumes
 * the schedule where it stopped. Throws, leaving the weights untouched, if the loss or the gradient is not
 * finite.
 */
export async function trainStep(
  workers: readonly ShardWorker[],
  shardGradients: readonly Weights[],
  gradients: Weights,
  weights: Weights,
  optimizer: AdamWState,
  batch: Batch,
  options: TrainStepOptions,
): Promise<TrainStepResult> {
  const learningRate = learningRateAt(optimizer.step, options.schedule);
  const loss = await batchGradient(workers, shardGradients, gradients, batch);
  const gradNorm = clipGradientNorm(gradients, options.maxGradNorm);
  if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
    throw new Error(
      `training step ${optimizer.step}: loss ${loss}, gradient norm ${gradNorm} — not finite; weights not updated`,
    );
  }
  adamwStep(optimizer, weights, gradients, learningRate, options.adamw ?? DEFAULT_ADAMW);
  for (const worker of workers) worker.weightsChanged();
  return { loss, gradNorm, learningRate };
}

/** The mean cross-entropy over every target position of the batches (each position weighs the same). */
export function evaluateLoss<A extends FloatArray>(
  model: TrainingModel<A>,
  batches: readonly Batch[],
): number {
  return meanOverPositions(
    batches,
    batches.map((batch) => model.forward(batch)),
  );
}
