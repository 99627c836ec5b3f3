/**
 * The training loop, the same for `glassbox train` in Node and for a page training in a browser worker:
 *
 *   until the last step, or until the caller asks to stop:
 *     batch = the sampler's next → trainStep (step.ts) → one log line
 *     every evalEvery steps, and at the last: the validation loss
 *     every checkpointEvery steps, at the last, and when stopped: save
 *
 * It does no I/O and imports nothing from Node: the caller supplies the shard workers (this thread or
 * worker threads), storage (`save`), and what to do with each step's report (print it, draw it).
 */
import { DEFAULT_ADAMW, type AdamWState } from './adamw.ts';
import type { Batch, BatchSampler } from './data.ts';
import type { Weights } from './parameters.ts';
import type { ShardWorker } from './shards.ts';
import { shardedEvaluateLoss } from './shards.ts';
import { trainStep, type TrainStepOptions } from './step.ts';

/** The settings the loop reads (a run's full settings also say what to train on and the model's shape). */
export interface LoopSettings {
  steps: number;
  batchSize: number;
  /** Training context length T (and the model's seqLen). */
  seqLen: number;
  learningRate: number;
  minLearningRate: number;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number;
  evalEvery: number;
  checkpointEvery: number;
}

/** One line of the training log (train-log.jsonl in the CLI). */
export interface TrainingLogLine {
  step: number;
  lr: number;
  trainLoss: number;
  /** Present on evaluation steps: the mean over every validation position (of all sources). */
  valLoss?: number;
  /** With several sources, present on evaluation steps: each source's own validation loss, by name. */
  valLossBySource?: Record<string, number>;
  gradNorm: number;
  tokensPerSecond: number;
}

/** The run being trained: the model's numbers, the optimizer and sampler, and who computes gradients. */
export interface TrainingState {
  weights: Weights;
  optimizer: AdamWState;
  sampler: BatchSampler;
  validationBatches: readonly Batch[];
  /**
   * The same batches grouped by source (texts of different kinds), when there are several: each is then also
   * reported on its own (`valLossBySource`), and valLoss is their mean weighted by positions.
   */
  validationSources?: readonly ValidationSource[];
  /** Computes shard k's gradient into shardGradients[k]; one worker on this thread, or one per thread. */
  workers: readonly ShardWorker[];
  shardGradients: readonly Weights[];
  /** Where the averaged gradient goes. */
  gradients: Weights;
  /** The log so far (a resumed run's earlier lines); the loop appends a line per step. */
  log: TrainingLogLine[];
}

export interface ValidationSource {
  name: string;
  batches: readonly Batch[];
}

/** What the caller hears after every step. */
export interface StepReport {
  line: TrainingLogLine;
  /** The most recent validation loss in the log, if any. */
  lastValLoss: number | undefined;
  /** Seconds per step, smoothed over recent steps (the first step alone, then an exponential average). */
  secondsPerStep: number;
}

export interface TrainingHost {
  /** Stores the run as it is now (weights, optimizer, sampler, log), so that it can resume from here. */
  save(): void | Promise<void>;
  onStep(report: StepReport): void;
  /** True once the reader asked to stop: the loop saves and returns before the next step. */
  stopRequested(): boolean;
  /**
   * Lets waiting events (a Ctrl-C, a message from the page) run between steps, since a step on this
   * thread never yields. Default: a zero-delay timer, which both Node and browsers have.
   */
  betweenSteps?(): Promise<void>;
}

export interface TrainingOutcome {
  /** The optimizer's step count when the loop returned. */
  stepsDone: number;
  interrupted: boolean;
  /** The training loss of every step this call ran. */
  losses: number[];
}

const zeroDelay = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export async function runTrainingLoop(
  settings: LoopSettings,
  state: TrainingState,
  host: TrainingHost,
): Promise<TrainingOutcome> {
  const { optimizer, log } = state;
  const options = stepOptions(settings);
  const betweenSteps = host.betweenSteps ?? zeroDelay;
  const losses: number[] = [];
  let recentSeconds = 0;
  while (optimizer.step < settings.steps) {
    const start = performance.now();
    const batch = state.sampler.next();
    const result = await trainStep(
      state.workers,
      state.shardGradients,
      state.gradients,
      state.weights,
      optimizer,
      batch,
      options,
    );
    const seconds = (performance.now() - start) / 1000;
    recentSeconds = recentSeconds === 0 ? seconds : 0.9 * recentSeconds + 0.1 * seconds;
    const step = optimizer.step;
    const isLast = step === settings.steps;
    const line: TrainingLogLine = {
      step,
      lr: result.learningRate,
      trainLoss: result.loss,
      gradNorm: result.gradNorm,
      tokensPerSecond: (settings.batchSize * settings.seqLen) / seconds,
    };
    if (step % settings.evalEvery === 0 || isLast) {
      Object.assign(line, await validationLoss(state));
    }
    log.push(line);
    losses.push(result.loss);
    host.onStep({ line, lastValLoss: lastValidationLoss(log), secondsPerStep: recentSeconds });

    if (step % settings.checkpointEvery === 0 || isLast) await host.save();
    await betweenSteps();
    if (host.stopRequested() && !isLast) {
      await host.save();
      return { stepsDone: step, interrupted: true, losses };
    }
  }
  return { stepsDone: optimizer.step, interrupted: false, losses };
}

/** The validation loss over every held-out position, and each source's own when there are several. */
async function validationLoss(
  state: TrainingState,
): Promise<Pick<TrainingLogLine, 'valLoss' | 'valLossBySource'>> {
  const sources = state.validationSources;
  if (!sources || sources.length < 2) {
    return { valLoss: await shardedEvaluateLoss(state.workers, state.validationBatches) };
  }
  const valLossBySource: Record<string, number> = {};
  let total = 0;
  let positions = 0;
  for (const source of sources) {
    const loss = await shardedEvaluateLoss(state.workers, source.batches);
    const count = source.batches.reduce((n, batch) => n + batch.batchSize * batch.seqLen, 0);
    valLossBySource[source.name] = loss;
    total += loss * count;
    positions += count;
  }
  return { valLoss: total / positions, valLossBySource };
}

/** The schedule, clipping and AdamW settings of every step. */
function stepOptions(settings: LoopSettings): TrainStepOptions {
  return {
    schedule: {
      maxLr: settings.learningRate,
      minLr: settings.minLearningRate,
      warmupSteps: settings.warmupSteps,
      totalSteps: settings.steps,
    },
    maxGradNorm: settings.maxGradNorm,
    adamw: { ...DEFAULT_ADAMW, weightDecay: settings.weightDecay },
  };
}

function lastValidationLoss(log: readonly TrainingLogLine[]): number | undefined {
  for (let i = log.length - 1; i >= 0; i--) if (log[i].valLoss !== undefined) return log[i].valLoss;
  return undefined;
}
