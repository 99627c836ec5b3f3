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
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
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
  /**
   * The training text's path, absolute (so --resume works from any directory); or several, one per source
   * (e.g. the Bible and the Brown corpus), each split for validation by the same rule and reported apart.
   */
  input: string | readonly string[];
  /**
   * SHA-256 of each training text (a string for one text), set when the run starts: --resume warns if a text
   * has changed since.
   */
  inputSha256?: string | readonly string[];
  /**
   * Snapshots of the model (weights only, safetensors) kept along the way in `snapshots/`, at this many
   * log-spaced steps ending at the last (snapshotSteps): the run's history for a time-machine. 0 or absent: none.
   */
  snapshots?: number;
  /** An existing tokenizer.json, or undefined to train one on the training split. */
  tokenizer?: string;
}

/**
 * The house model's configuration (models/house, trained on both texts of corpus/ with `--snapshots 12`,
 * then resumed with `--resume --steps 9000`; models/house/training.json has the run's own record).
 */
export const DEFAULT_TRAIN_SETTINGS: Omit<TrainSettings, 'input'> = {
  vocabSize: 4096,
  dim: 128,
  layers: 4,
  heads: 4,
  kvHeads: 2,
  hidden: 384,
  seqLen: 512,
  batchSize: 8,
  steps: 4500,
  learningRate: 2e-3,
  minLearningRate: 2e-4,
  warmupSteps: 100,
  weightDecay: 0.1,
  maxGradNorm: 1.0,
  evalEvery: 250,
  checkpointEvery: 250,
  seed: 1337,
  shards: 2,
  snapshots: 0,
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

/** The run's text files, one per source. */
export function inputPaths(settings: Pick<TrainSettings, 'input'>): string[] {
  return typeof settings.input === 'string' ? [settings.input] : [...settings.input];
}

/** A source's name in the log and the card: its file name without `.txt` / `.gz` (corpus/web.txt.gz → web). */
export function sourceName(path: string): string {
  return basename(path)
    .replace(/(\.gz)?$/, '')
    .replace(/\.txt$/, '');
}

/**
 * The steps at which a run keeps a snapshot: `count` steps spaced evenly in log(step) from 10 to the last
 * step (10, 20, 40, … for 12 snapshots of 20,000 steps), each rounded to two significant figures so that the
 * names read well; the last is always the final step. Fewer when the run is too short to space them apart.
 */
export function snapshotSteps(count: number, totalSteps: number): number[] {
  if (count <= 0 || totalSteps < 1) return [];
  const first = Math.min(10, totalSteps);
  const steps = new Set<number>();
  for (let i = 0; i < count - 1; i++) {
    const exact = first * Math.pow(totalSteps / first, count === 1 ? 1 : i / (count - 1));
    const magnitude = Math.pow(10, Math.max(0, Math.floor(Math.log10(exact)) - 1));
    steps.add(Math.max(1, Math.min(totalSteps, Math.round(exact / magnitude) * magnitude)));
  }
  steps.add(totalSteps);
  return [...steps].sort((a, b) => a - b);
}

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

/** The folder of a run's snapshots, and a snapshot's name: snapshots/step-000640.safetensors. */
export const SNAPSHOT_FOLDER = 'snapshots';
export function snapshotFile(step: number): string {
  return `step-${String(step).padStart(6, '0')}.safetensors`;
}

/** The model's weights alone (the optimizer's state stays in the checkpoint), as model.safetensors holds them. */
function saveSnapshot(out: string, step: number, model: Model): void {
  mkdirSync(join(out, SNAPSHOT_FOLDER), { recursive: true });
  writeFileAtomic(join(out, SNAPSHOT_FOLDER, snapshotFile(step)), toHfLlama(model).safetensors);
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
    /** On resume: read the training text(s) from here instead of the path(s) the run stored. */
    input?: string | readonly string[];
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

  const sources = await readSources(settings, io);
  const tokenizer = prepareTokenizer(
    settings,
    sources.flatMap((source) => source.train),
    out,
    options.resume,
    io,
  );
  const { vocabSize } = bpeTokenizer(tokenizer);
  const encoded = sources.map((source) => ({
    name: source.name,
    train: tokenize(bpeTokenizer(tokenizer), source.train),
    val: tokenize(bpeTokenizer(tokenizer), source.val),
  }));
  const trainTokens = concatenate(encoded.map((source) => source.train));
  const valTokens = concatenate(encoded.map((source) => source.val));
  const count = (n: number) => n.toLocaleString('en-US');
  io.log(
    `${count(trainTokens.length)} training tokens, ${count(valTokens.length)} validation tokens` +
      (encoded.length > 1
        ? ` (${encoded.map((s) => `${s.name}: ${count(s.train.length)} + ${count(s.val.length)}`).join('; ')})`
        : ''),
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
    const validationSources = encoded.map((source) => {
      const batches = sequentialBatches(source.val, settings.batchSize, settings.seqLen);
      if (batches.length === 0) {
        throw new Error(
          `the validation part of ${encoded.length > 1 ? `the text "${source.name}"` : 'the text'} is ` +
            `${source.val.length} tokens, shorter than one window of ${settings.seqLen} + 1: use a longer ` +
            `text or a shorter --seq-len`,
        );
      }
      return { name: source.name, batches };
    });
    const valBatches = validationSources.flatMap((source) => source.batches);
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
        ...(encoded.length > 1
          ? {
              sources: encoded.map((source) => ({
                name: source.name,
                trainTokens: source.train.length,
                validationTokens: source.val.length,
              })),
            }
          : {}),
        kernels: kernels.name,
        threads,
      };
      writeFileAtomic(join(out, TRAINING_SUMMARY_FILE), JSON.stringify(summary, null, 2) + '\n');
      saveCheckpoint(checkpointPath, { config, weights, optimizer, sampler: sampler.getState(), settings });
    };
    const keepSnapshotAt = new Set(snapshotSteps(settings.snapshots ?? 0, settings.steps));
    const onStep = (report: StepReport) => {
      if (keepSnapshotAt.has(report.line.step)) saveSnapshot(out, report.line.step, { config, weights });
      printProgress(report);
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
        ...(validationSources.length > 1 ? { validationSources } : {}),
        workers,
        shardGradients: perShard,
        gradients,
        log,
      },
      {
        save,
        onStep,
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
  options: { steps?: number; input?: string | readonly string[] },
  io: TrainIO,
): TrainSettings {
  const settings = { ...stored, shards: stored.shards ?? 1 };
  if (options.input !== undefined) {
    const moved = inputPaths({ input: options.input });
    const before = inputPaths(stored);
    if (moved.length !== before.length) {
      throw new Error(
        `--input: the run trains on ${before.length} text${before.length === 1 ? '' : 's'} ` +
          `(${before.map(sourceName).join(', ')}); give ${before.length === 1 ? 'one' : 'each'} again, in that order`,
      );
    }
    settings.input = options.input;
  }
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

interface SourceText {
  name: string;
  train: string[];
  val: string[];
}

/** Reads each text, checks it against the digest the run recorded, and splits it for validation. */
async function readSources(settings: TrainSettings, io: TrainIO): Promise<SourceText[]> {
  const paths = inputPaths(settings);
  const texts = await Promise.all(paths.map((path) => readTextFile(path)));
  const digests = texts.map((text) => createHash('sha256').update(text).digest('hex'));
  const recorded = settings.inputSha256 === undefined ? undefined : [settings.inputSha256].flat();
  if (recorded === undefined) {
    settings.inputSha256 = digests.length === 1 ? digests[0] : digests;
  } else {
    digests.forEach((digest, i) => {
      if (recorded[i] === digest) return;
      io.log(
        `warning: ${paths[i]} has changed since this run started (SHA-256 ${digest.slice(0, 12)}…, was ` +
          `${(recorded[i] ?? '').slice(0, 12)}…): the remaining steps train on the text as it is now`,
      );
    });
  }
  return texts.map((text, i) => ({ name: sourceName(paths[i]), ...trainValidationSplit(text) }));
}

function concatenate(parts: readonly Int32Array[]): Int32Array {
  const all = new Int32Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}
