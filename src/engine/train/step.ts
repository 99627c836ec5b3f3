/**
 * One training step, and the validation loss: the pieces of this folder in the order a training loop
 * uses them.
 *
 *   loss = forward(batch)        → backward(gradients)   → clip the gradient norm
 *        → lr = schedule(step)   → AdamW update           → tell the kernels the weights changed
 */
import { adamwStep, DEFAULT_ADAMW, type AdamWConfig, type AdamWState } from './adamw.ts';
import { clipGradientNorm } from './clip.ts';
import type { Batch } from './data.ts';
import type { TrainingModel } from './model.ts';
import type { FloatArray } from './ops.ts';
import type { Weights } from './parameters.ts';
import { learningRateAt, type ScheduleConfig } from './schedule.ts';

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
 * Trains on one batch. The step number (for the schedule) is the optimizer's step count, so a restored
 * optimizer state resumes the schedule where it stopped. Throws, leaving the weights untouched, if the loss
 * or the gradient is not finite.
 */
export function trainStep<A extends FloatArray>(
  model: TrainingModel<A>,
  gradients: Weights<A>,
  optimizer: AdamWState<A>,
  batch: Batch,
  options: TrainStepOptions,
): TrainStepResult {
  const learningRate = learningRateAt(optimizer.step, options.schedule);
  const loss = model.forward(batch);
  model.backward(gradients);
  const gradNorm = clipGradientNorm(gradients, options.maxGradNorm);
  if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
    throw new Error(
      `training step ${optimizer.step}: loss ${loss}, gradient norm ${gradNorm} — not finite; weights not updated`,
    );
  }
  adamwStep(optimizer, model.weights, gradients, learningRate, options.adamw ?? DEFAULT_ADAMW);
  model.weightsChanged();
  return { loss, gradNorm, learningRate };
}

/** The mean cross-entropy over every target position of the batches (each position weighs the same). */
export function evaluateLoss<A extends FloatArray>(
  model: TrainingModel<A>,
  batches: readonly Batch[],
): number {
  let total = 0;
  let positions = 0;
  for (const batch of batches) {
    const count = batch.batchSize * batch.seqLen;
    total += model.forward(batch) * count;
    positions += count;
  }
  return total / positions;
}
