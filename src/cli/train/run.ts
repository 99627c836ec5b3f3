/**
 * `glassbox train`: train a Llama-style model on a text file, end to end.
 *
 *   text → train/validation split → tokenizer (given, or trained here) → token ids
 *        → random model → steps of (batch → forward → backward → clip → AdamW) → checkpoints, log, plot
 *
 * Everything is seeded, so the same settings give the same run; checkpoints are written atomically every
 * `checkpointEvery` steps and on Ctrl-C, and `--resume` continues from the last one exactly as if the run
 * had never stopped. The output folder is a Hugging Face Llama checkpoint (config.json, model.safetensors,
 * tokenizer.json) that `glassbox generate --model DIR` runs, plus train-log.jsonl and loss.svg.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { randomModel } from '../../engine/init.ts';
import type { Model } from '../../engine/model.ts';
import { createAdamWState, type AdamWState } from '../../engine/train/adamw.ts';
import { BatchSampler, sequentialBatches } from '../../engine/train/data.ts';
import { runTrainingLoop, type StepReport } from '../../engine/train/loop.ts';
import { TrainingModel } from '../../engine/train/model.ts';
import { zerosLike } from '../../engine/train/parameters.ts';
import { LocalShardWorker, shardGradients, type ShardWorker } from '../../engine/train/shards.ts';
import {
  modelConfig,
  tokenize,
  trainRunTokenizer,
  trainValidationSplit,
  type RunShape,
} from '../../engine/train/prepare.ts';
import { toHfLlama } from '../../formats/hf-llama.ts';
import { selectKernels, type KernelPreference } from '../../kernels/select.ts';
import { bpeTokenizer, toTokenizerJson } from '../../tokenizers/bpe.ts';
import type { BpeTokenizer } from '../../tokenizers/bpe.ts';
import { readTextFile } from '../text-input.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { writeFileAtomic } from './files.ts';
import { logText, readLog, truncateLog, type LogLine } from './log.ts';
import {
  CHECKPOINT_FILE,
  LOG_FILE,
  prepareOutputFolder,
  TOKENIZER_FILE,
  TRAINING_SUMMARY_FILE,
} from './output-folder.ts';
import { readTokenizerJson } from './tokenizer-file.ts';
import { lossPlotSvg, type LossPoint } from './plot.ts';
import { progressLine } from './progress.ts';
import { sharedFloat32, startShardThreads } from './thread-shards.ts';

/**
 * Everything that determines a run: the loop's settings (loop.ts) plus the text, tokenizer, model shape, seed
 * and shards. Stored in every checkpoint, so a resumed run uses the same values.
 */
export interface TrainSettings extends RunShape {
  /** The training text's path, absolute (so --resume works from any directory). */
  input: string;
  /** SHA-256 of the training text, set when the run starts: --resume warns if the text has changed since. */
  inputSha256?: string;
  /** An existing tokenizer.json, or undefined to train one on the training split. */
  tokenizer?: string;
}

/** The house model's configuration (models/house; it was trained before shards existed, i.e. with one). */
export const DEFAULT_TRAIN_SETTINGS: Omit<TrainSettings, 'input'> = {
  vocabSize: 4096,
  dim: 128,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  hidden: 384,
  seqLen: 128,
  batchSize: 16,
  steps: 3000,
  learningRate: 2e-3,
  minLearningRate: 2e-4,
  warmupSteps: 100,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
  evalEvery: 100,
  checkpointEvery: 100,
  seed: 1337,
  shards: 2,
};

export interface TrainIO {
  log(line: string): void;
  /** Redraws the progress line (a terminal) or is undefined (print plain lines instead). */
  progress?: (line: string) => void;
  /** True once the user asked to stop (Ctrl-C): the loop saves a checkpoint and returns. */
  stopRequested(): boolean;
}

export interface TrainResult {
  stepsDone: number;
  interrupted: boolean;
  losses: number[];
}

export { CHECKPOINT_FILE, LOG_FILE, TRAINING_SUMMARY_FILE };

export { modelConfig, tokenize, trainValidationSplit };

/**
 * The run's tokenizer: a resumed run's own (saved with its first checkpoint), else the one --tokenizer names,
 * else one trained here. It is written to the folder with the model, never before: a run that fails early
 * leaves no tokenizer.json for a later run to mistake for its own.
 */
function prepareTokenizer(
  settings: TrainSettings,
  trainText: readonly string[],
  out: string,
  resume: boolean,
  io: TrainIO,
): BpeTokenizer {
  if (resume) return readTokenizerJson(join(out, TOKENIZER_FILE));
  if (settings.tokenizer) return readTokenizerJson(settings.tokenizer);
  const start = performance.now();
  const tokenizer = trainRunTokenizer(trainText, settings.vocabSize);
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  // A short text runs out of pairs to merge before the asked-for size: say what was learned, not what was asked.
  const learned = tokenizer.tokenBytes.length;
  const shortfall =
    learned < settings.vocabSize
      ? ` (${settings.vocabSize} asked; the text has no more pairs to merge, so the model's vocabulary is ${learned})`
      : '';
  io.log(`trained a ${learned}-token BPE tokenizer in ${seconds} s${shortfall}`);
  return tokenizer;
}

/** Everything but the checkpoint, which is written last: its rename is the moment a save is complete. */
function writeOutputs(
  out: string,
  model: Model,
  tokenizer: BpeTokenizer,
  log: LogLine[],
  title: string,
): void {
  const { configJson, safetensors } = toHfLlama(model);
  writeFileAtomic(join(out, LOG_FILE), logText(log));
  writeFileAtomic(join(out, TOKENIZER_FILE), toTokenizerJson(tokenizer));
  writeFileAtomic(join(out, 'model.safetensors'), safetensors);
  writeFileAtomic(join(out, 'config.json'), configJson);
  const points: LossPoint[] = log.map((l) => ({ step: l.step, trainLoss: l.trainLoss, valLoss: l.valLoss }));
  writeFileAtomic(join(out, 'loss.svg'), lossPlotSvg(points, title));
}

export async function trainModel(
  requested: TrainSettings,
  out: string,
  options: {
    resume: boolean;
    /** Start over in a folder holding an earlier run's files (they are removed first). */
    force?: boolean;
    /** On resume: train to this step instead of the run's own total (its schedule is stretched to match). */
    steps?: number;
    /** On resume: read the training text from here instead of the path the run stored. */
    input?: string;
    kernels: KernelPreference;
    /** Worker threads computing the shards at once; 1 computes them in turn on this thread. */
    threads?: number;
  },
  io: TrainIO,
): Promise<TrainResult> {
  prepareOutputFolder(out, options, io.log);
  const checkpointPath = join(out, CHECKPOINT_FILE);
  const resumed = options.resume
    ? loadCheckpoint<TrainSettings>(checkpointPath, (config) => randomModel(config, 1))
    : undefined;
  if (resumed) {
    io.log(`resuming from ${checkpointPath} at step ${resumed.optimizer.step}`);
    truncateLog(join(out, LOG_FILE), resumed.optimizer.step);
  }
  const settings = resumed
    ? resumedSettings(resumed.settings, resumed.optimizer.step, options, io)
    : requested;
  if (!(Number.isInteger(settings.shards) && settings.shards >= 1 && settings.shards <= settings.batchSize)) {
    throw new Error(
      `shards must be a whole number from 1 to the batch size ${settings.batchSize}, got ${settings.shards}`,
    );
  }

  const text = await readTextFile(settings.input);
  checkInputUnchanged(settings, text, io);
  const split = trainValidationSplit(text);
  const tokenizer = prepareTokenizer(settings, split.train, out, options.resume, io);
  const { vocabSize } = bpeTokenizer(tokenizer);
  const trainTokens = tokenize(bpeTokenizer(tokenizer), split.train);
  const valTokens = tokenize(bpeTokenizer(tokenizer), split.val);
  io.log(
    `${trainTokens.length.toLocaleString('en-US')} training tokens, ${valTokens.length.toLocaleString('en-US')} validation tokens`,
  );

  const config = resumed ? resumed.config : modelConfig(settings, vocabSize);
  const weights = resumed ? resumed.weights : randomModel(config, settings.seed).weights;
  const kernels = selectKernels(options.kernels);
  const threads = Math.min(options.threads ?? 1, settings.shards);
  const gradients = zerosLike(weights);
  const perShard = shardGradients(weights, settings.shards, threads > 1 ? sharedFloat32 : undefined);
  const workers: ShardWorker[] =
    threads > 1
      ? startShardThreads(threads, config, weights, perShard, kernels.variant)
      : [new LocalShardWorker(new TrainingModel(config, weights, { kernels }), perShard)];
  try {
    return await trainLoop();
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
  }

  async function trainLoop(): Promise<TrainResult> {
    const optimizer: AdamWState = resumed ? resumed.optimizer : createAdamWState(weights);
    const sampler = new BatchSampler(trainTokens, settings.batchSize, settings.seqLen, settings.seed);
    if (resumed) sampler.setState(resumed.sampler);
    const valBatches = sequentialBatches(valTokens, settings.batchSize, settings.seqLen);
    if (valBatches.length === 0) {
      throw new Error(
        `the validation part of the text is ${valTokens.length} tokens, shorter than one window of ` +
          `${settings.seqLen} + 1: use a longer text or a shorter --seq-len`,
      );
    }
    const log = readLog(join(out, LOG_FILE), optimizer.step);
    const title = `Glassbox training: ${config.nLayers} layers × ${config.dim} wide, vocab ${vocabSize}`;
    io.log(
      `kernels: ${kernels.name}; ${settings.steps} steps of ${settings.batchSize}×${settings.seqLen} tokens` +
        ` in ${settings.shards} shard${settings.shards === 1 ? '' : 's'} on ${threads} thread${threads === 1 ? '' : 's'}`,
    );

    const save = () => {
      writeOutputs(out, { config, weights }, tokenizer, log, title);
      const summary = {
        settings,
        stepsDone: optimizer.step,
        tokensSeen: optimizer.step * settings.batchSize * settings.seqLen,
        trainTokens: trainTokens.length,
        validationTokens: valTokens.length,
        kernels: kernels.name,
        threads,
      };
      writeFileAtomic(join(out, TRAINING_SUMMARY_FILE), JSON.stringify(summary, null, 2) + '\n');
      saveCheckpoint(checkpointPath, { config, weights, optimizer, sampler: sampler.getState(), settings });
    };
    const printProgress = ({ line, lastValLoss, secondsPerStep }: StepReport) => {
      const progress = progressLine({
        step: line.step,
        totalSteps: settings.steps,
        trainLoss: line.trainLoss,
        valLoss: lastValLoss,
        tokensPerSecond: (settings.batchSize * settings.seqLen) / secondsPerStep,
        secondsPerStep,
      });
      if (io.progress) io.progress(progress);
      else if (line.valLoss !== undefined) io.log(progress);
    };
    const outcome = await runTrainingLoop(
      settings,
      {
        weights,
        optimizer,
        sampler,
        validationBatches: valBatches,
        workers,
        shardGradients: perShard,
        gradients,
        log,
      },
      {
        save,
        onStep: printProgress,
        stopRequested: () => io.stopRequested(),
        // Let signal handlers run between steps (the step itself is synchronous).
        betweenSteps: () => new Promise((resolve) => setImmediate(resolve)),
      },
    );
    if (outcome.interrupted) {
      io.log(
        `\nstopped at step ${outcome.stepsDone}; checkpoint saved to ${checkpointPath} (continue with --resume)`,
      );
    }
    return outcome;
  }
}

/** A resumed run's settings: its own, with --steps and --input applied if given. */
function resumedSettings(
  stored: TrainSettings,
  step: number,
  options: { steps?: number; input?: string },
  io: TrainIO,
): TrainSettings {
  const settings = { ...stored, shards: stored.shards ?? 1 };
  if (options.input !== undefined) settings.input = options.input;
  if (options.steps !== undefined && options.steps !== stored.steps) {
    if (options.steps <= step)
      throw new Error(`--steps ${options.steps}: the run is already at step ${step}; give a larger number`);
    io.log(
      `--steps ${options.steps}: training on to step ${options.steps} (the run was set for ${stored.steps})`,
    );
    settings.steps = options.steps;
  }
  return settings;
}

/** Records the text's SHA-256 when a run starts; warns when a resumed run's text differs from it. */
function checkInputUnchanged(settings: TrainSettings, text: string, io: TrainIO): void {
  const digest = createHash('sha256').update(text).digest('hex');
  if (settings.inputSha256 === undefined) settings.inputSha256 = digest;
  else if (settings.inputSha256 !== digest) {
    io.log(
      `warning: ${settings.input} has changed since this run started (SHA-256 ${digest.slice(0, 12)}…, was ` +
        `${settings.inputSha256.slice(0, 12)}…): the remaining steps train on the text as it is now`,
    );
  }
}
