/**
 * The page's trainer: a dedicated Web Worker that runs the training loop `glassbox train` runs
 * (src/engine/train/loop.ts) on the same data (src/engine/train/prepare.ts), so that the same text, seed
 * and settings give the same bits in Node and in the page. Where the page is cross-origin isolated, two
 * shard workers (web-shards.ts) compute each batch's shards at once over shared memory; otherwise this worker
 * computes them one after another. Checkpoints go to IndexedDB (store.ts); the Web Locks API keeps a second
 * tab from training at the same time.
 */
import * as Comlink from 'comlink';
import {
  headPatternScores,
  inductionInput,
  inductionLengthLimit,
  inductionScores,
} from '../../../analysis/heads.ts';
import {
  frequentTokens,
  MAP_TOKEN_COUNT,
  neighbourAgreement,
  pieceCategory,
  tokenMap,
} from '../../../analysis/embedding-map.ts';
import { logitLens } from '../../../analysis/lens.ts';
import { textSurprise } from '../../../analysis/surprise.ts';
import { forward } from '../../../engine/forward.ts';
import { generateTokens, stopTokensFor } from '../../../engine/generate.ts';
import { KVCache } from '../../../engine/kv-cache.ts';
import { randomModel } from '../../../engine/init.ts';
import { parameterCount, type Model, type ModelConfig } from '../../../engine/model.ts';
import { XorShiftRng } from '../../../engine/rng.ts';
import { createAdamWState, type AdamWState } from '../../../engine/train/adamw.ts';
import { BatchSampler, sequentialBatches, type Batch } from '../../../engine/train/data.ts';
import { runTrainingLoop, type TrainingLogLine } from '../../../engine/train/loop.ts';
import { TrainingModel } from '../../../engine/train/model.ts';
import { checkWeights, zerosLike, type Weights } from '../../../engine/train/parameters.ts';
import {
  modelConfig,
  runSettingsProblem,
  tokenize,
  trainRunTokenizer,
  trainValidationSplit,
  type RunShape,
} from '../../../engine/train/prepare.ts';
import {
  LocalShardWorker,
  sharedFloat32,
  shardGradients,
  type ShardWorker,
} from '../../../engine/train/shards.ts';
import { parseHfLlama, toHfLlama } from '../../../formats/hf-llama.ts';
import { parseCheckpoint, serializeCheckpoint } from '../../../formats/training-checkpoint.ts';
import { selectKernels, type KernelSet } from '../../../kernels/select.ts';
import {
  bpeTokenizer,
  fromTokenizerJson,
  tokenPiece,
  toTokenizerJson,
  type BpeTokenizer,
} from '../../../tokenizers/bpe.ts';
import type {
  EmbeddingReading,
  HeadScores,
  LensReading,
  MapTokens,
  ModelFiles,
  RunInfo,
  Sample,
  SavedRun,
  StartRequest,
  SurpriseReading,
  TrainerHooks,
  TrainOutcome,
} from './protocol.ts';
import {
  deleteRun,
  getRun,
  lastGoodCheckpoint,
  lastGoodStep,
  putRun,
  saveCheckpointRecord,
  runStoreProblem,
  saveProblem,
  savedRuns,
  type RunRecord,
} from './store.ts';
import { startShardWorkers } from './web-shards.ts';

/** The name of the lock a training tab holds (Web Locks API: one per origin, across tabs). */
const LOCK = 'glassbox-training';

/** The run this worker holds: everything the loop reads, and what the page is told about it. */
interface Run {
  record: RunRecord;
  info: RunInfo;
  config: ModelConfig;
  weights: Weights;
  optimizer: AdamWState;
  sampler: BatchSampler;
  validationBatches: Batch[];
  workers: ShardWorker[];
  shardGradients: Weights[];
  gradients: Weights;
  log: TrainingLogLine[];
  samples: Sample[];
  tokenizer: BpeTokenizer;
  kernels: KernelSet;
  lastGood: number | undefined;
  /** The held-out tokens (the surprise before and after a fine-tune is read on their start). */
  validationTokens: Int32Array;
}

let run: Run | undefined;
let stopRequested = false;
/** The reader's text (the course's prompt), which the logit lens reads at every sample. */
let readerText = '';

/** Threads for the shards: as asked, at most one per shard, and 1 where memory cannot be shared. */
function shardThreads(asked: number, shards: number): number {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  return isolated ? Math.max(1, Math.min(asked, shards)) : 1;
}

/** The weights of a Hugging Face folder (fine-tuning), checked against the tokenizer. */
function initialModel(initial: NonNullable<StartRequest['initial']>): Model {
  const model = parseHfLlama(initial.configJson, initial.safetensors, {
    config: 'config.json',
    weights: 'model.safetensors',
  });
  return model;
}

async function prepare(
  record: RunRecord,
  options: { threads: number; initial?: StartRequest['initial'] },
): Promise<Run> {
  const settings = record.settings;
  const problem = runSettingsProblem(settings);
  if (problem) throw new Error(problem);
  const split = trainValidationSplit(record.text);
  let tokenizerSeconds = 0;
  let tokenizer: BpeTokenizer;
  if (record.tokenizerJson) tokenizer = fromTokenizerJson(record.tokenizerJson);
  else if (record.tokenizer.kind === 'given') tokenizer = fromTokenizerJson(record.tokenizer.json);
  else {
    const started = performance.now();
    tokenizer = trainRunTokenizer(split.train, settings.vocabSize);
    tokenizerSeconds = (performance.now() - started) / 1000;
  }
  record.tokenizerJson = toTokenizerJson(tokenizer);
  const encoder = bpeTokenizer(tokenizer);
  const trainTokens = tokenize(encoder, split.train);
  const validationTokens = tokenize(encoder, split.val);
  if (trainTokens.length < settings.seqLen + 1) {
    throw new Error(
      `the training part of the text is ${trainTokens.length} tokens, too short for one window of ` +
        `${settings.seqLen} + 1: use a longer text or a shorter context`,
    );
  }
  const validationBatches = sequentialBatches(validationTokens, settings.batchSize, settings.seqLen);
  if (validationBatches.length === 0) {
    throw new Error(
      `the validation part of the text is ${validationTokens.length} tokens, shorter than one window of ` +
        `${settings.seqLen} + 1: use a longer text or a shorter context`,
    );
  }

  const saved = await lastGoodCheckpoint(record.runId);
  const template = (config: ModelConfig) => randomModel(config, 1);
  const resumed = saved
    ? parseCheckpoint<RunShape>(saved.bytes, 'the saved checkpoint', template)
    : undefined;
  let config: ModelConfig;
  let weights: Weights;
  if (resumed) {
    config = resumed.config;
    weights = resumed.weights;
  } else if (record.initialModel && !options.initial) {
    throw new Error('this fine-tune stopped before its first checkpoint was saved: start it again');
  } else if (options.initial) {
    const model = initialModel(options.initial);
    if (model.config.vocabSize !== encoder.vocabSize) {
      throw new Error(
        `the model has ${model.config.vocabSize} tokens but its tokenizer ${encoder.vocabSize}: they do not belong together`,
      );
    }
    config = { ...model.config };
    weights = model.weights as Weights;
    checkWeights(config, weights);
  } else {
    config = modelConfig(settings, encoder.vocabSize);
    weights = randomModel(config, settings.seed).weights;
  }
  const optimizer = resumed ? resumed.optimizer : createAdamWState(weights);
  const sampler = new BatchSampler(trainTokens, settings.batchSize, settings.seqLen, settings.seed);
  if (resumed) sampler.setState(resumed.sampler);

  const threads = shardThreads(options.threads, settings.shards);
  const kernels = selectKernels(record.kernels);
  const gradients = zerosLike(weights);
  const perShard = shardGradients(weights, settings.shards, threads > 1 ? sharedFloat32 : undefined);
  const workers: ShardWorker[] =
    threads > 1
      ? startShardWorkers(threads, config, weights, perShard, kernels.variant)
      : [new LocalShardWorker(new TrainingModel(config, weights, { kernels }), perShard)];
  const mapTokens = chooseMapTokens(tokenizer, trainTokens);
  const log = saved ? [...saved.log] : [];
  const samples = saved ? [...saved.samples] : [];
  const info: RunInfo = {
    runId: record.runId,
    label: record.label,
    settings,
    config,
    parameters: parameterCount({ config, weights }),
    trainTokens: trainTokens.length,
    validationTokens: validationTokens.length,
    tokenizer:
      record.tokenizer.kind === 'given'
        ? record.tokenizer.name
        : `learned from the training text (${encoder.vocabSize.toLocaleString('en-US')} tokens)`,
    tokenizerSeconds,
    threads,
    kernels: kernels.name,
    sampleEvery: record.sampleEvery,
    step: optimizer.step,
    log,
    samples,
    finished: saved?.finished ?? false,
    initialModel: record.initialModel,
    mapTokens,
  };
  return {
    record,
    info,
    config,
    weights,
    optimizer,
    sampler,
    validationBatches,
    workers,
    shardGradients: perShard,
    gradients,
    log,
    samples,
    tokenizer,
    kernels,
    lastGood: saved?.step,
    validationTokens,
  };
}

async function closeRun(): Promise<void> {
  if (!run) return;
  const old = run;
  run = undefined;
  await Promise.all(old.workers.map((worker) => worker.close()));
}

/** A sample from the model as it is now: seeded, from the start token alone (a new document). */
function sample(current: Run): Sample {
  const { config, weights, tokenizer, record, kernels } = current;
  kernels.invalidateAll(); // the optimizer changed the weights in place
  const encoder = bpeTokenizer(tokenizer);
  const start = encoder.encode('', { bos: true, eos: false });
  const tokens = [...start];
  for (const step of generateTokens({ config, weights }, start, {
    steps: Math.min(config.seqLen, record.sampleTokens),
    sampling: { temperature: 0.8 },
    rng: new XorShiftRng(record.settings.seed),
    stopTokens: stopTokensFor(encoder),
    kernels,
  })) {
    if (!step.fromPrompt) tokens.push(step.token);
  }
  return {
    step: current.optimizer.step,
    text: encoder.decode(tokens),
    heads: headScores(current),
    lens: readerText ? lensReading(current, readerText) : undefined,
    embeddings: embeddingReading(current),
  };
}

/**
 * The tokens the embedding map follows: the most frequent of the training text (special tokens left out),
 * with their pieces and kinds. They depend only on the text and the tokenizer, so a resumed run gets the
 * same ones without storing them.
 */
function chooseMapTokens(tokenizer: BpeTokenizer, trainTokens: ArrayLike<number>): MapTokens {
  const encoder = bpeTokenizer(tokenizer);
  const special = new Set(tokenizer.specialTokens.map((token) => token.id));
  const tokens = frequentTokens(trainTokens, encoder.vocabSize, MAP_TOKEN_COUNT, special);
  return {
    tokens,
    pieces: tokens.map((token) => encoder.pieceLabel(token)),
    categories: tokens.map((token) => pieceCategory(tokenPiece(tokenizer, token))),
  };
}

/**
 * Chapter 4's map of the run's frequent tokens with the weights as they are now, turned to match the
 * previous sample's (embedding-map.ts), and how many of them sit next to their own kind. Its cost is
 * measured and sent with it (computeMs): in Chromium on the Small preset (300 tokens × 64 dimensions) 5–10 ms
 * per sample (39 ms for the first, before the JIT has compiled it), once every 25 steps of about 60 ms each,
 * so under 1% of the run; the steps between samples pay nothing.
 */
function embeddingReading(current: Run): EmbeddingReading {
  const started = performance.now();
  const { tokens, categories } = current.info.mapTokens;
  const table = current.weights.tokenEmbedding.data;
  const previous = current.samples.filter((sample) => sample.embeddings).at(-1)?.embeddings?.points;
  const map = tokenMap(table, current.config.dim, tokens, previous);
  const agreement = neighbourAgreement(table, current.config.dim, tokens, categories);
  return {
    points: map.points,
    planeShare: map.planeShare,
    nearest: agreement.nearest,
    same: agreement.same,
    share: agreement.share,
    chance: agreement.chance,
    computeMs: performance.now() - started,
  };
}

/**
 * Chapter 10's logit lens on the reader's text with the model as it is now: at its last token, the most
 * likely next token read off the residual stream after every layer (one traced pass, lens.ts).
 */
function lensReading(current: Run, text: string): LensReading | undefined {
  const { config, weights, kernels, tokenizer } = current;
  const encoder = bpeTokenizer(tokenizer);
  const tokens = encoder.encode(text, { bos: true, eos: false }).slice(0, config.seqLen);
  if (tokens.length < 1) return undefined;
  const model = { config, weights };
  const { trace } = forward(model, tokens, new KVCache(config), { trace: true, logits: 'all', kernels });
  const lens = logitLens(model, trace!, kernels, 1);
  const last = lens.positions - 1;
  return {
    pieces: tokens.map((token) => encoder.pieceLabel(token)),
    rows: lens.names.map((name, row) => ({
      name,
      piece: encoder.pieceLabel(lens.ids[row * lens.positions + last]),
      probability: lens.probabilities[row * lens.positions + last],
    })),
  };
}

/**
 * Chapter 8's head scores of the model as it is now: the previous-token score on the start of the held-out
 * text, and the induction score on a repeated random sequence (heads.ts), from two traced passes.
 */
function headScores(current: Run): HeadScores[] {
  const { config, weights, kernels, tokenizer } = current;
  const model = { config, weights };
  const encoder = bpeTokenizer(tokenizer);
  const text = Array.from(current.validationTokens.subarray(0, Math.min(64, config.seqLen)));
  const traced = (tokens: number[]) =>
    forward(model, tokens, new KVCache(config), { trace: true, logits: 'last', kernels }).trace!;
  const patterns = headPatternScores(traced(text));
  const [bos] = encoder.encode('', { bos: true, eos: false });
  const length = Math.min(16, inductionLengthLimit(config, config.vocabSize - 8));
  const repeated = inductionInput(config, bos, stopTokensFor(encoder), length, 1);
  const induction = inductionScores(traced(repeated.tokens), length);
  return patterns.map((pattern, i) => ({
    layer: pattern.layer,
    head: pattern.head,
    previousToken: pattern.previousToken ?? 0,
    induction: induction[i].induction,
  }));
}

/** Writes a checkpoint of the run as it is now; says what happened either way. */
async function save(current: Run, hooks: TrainerHooks | undefined): Promise<void> {
  const step = current.optimizer.step;
  const finished = current.info.finished || step >= current.record.settings.steps;
  const bytes = serializeCheckpoint({
    config: current.config,
    weights: current.weights,
    optimizer: current.optimizer,
    sampler: current.sampler.getState(),
    settings: current.record.settings,
  });
  try {
    await saveCheckpointRecord({
      runId: current.record.runId,
      step,
      bytes,
      log: current.log,
      samples: current.samples,
      finished,
      savedAt: Date.now(),
    });
    current.lastGood = step;
    hooks?.onSave({ step, saved: true, lastGoodStep: step });
  } catch (error) {
    hooks?.onSave({
      step,
      saved: false,
      lastGoodStep: current.lastGood,
      problem: saveProblem(error, step, current.lastGood),
    });
  }
}

async function trainHeld(current: Run, hooks: TrainerHooks): Promise<TrainOutcome> {
  stopRequested = false;
  const { record } = current;
  const outcome = await runTrainingLoop(
    record.settings,
    {
      weights: current.weights,
      optimizer: current.optimizer,
      sampler: current.sampler,
      validationBatches: current.validationBatches,
      workers: current.workers,
      shardGradients: current.shardGradients,
      gradients: current.gradients,
      log: current.log,
    },
    {
      save: () => save(current, hooks),
      onStep(report) {
        current.info.step = report.line.step;
        hooks.onStep({
          line: report.line,
          lastValLoss: report.lastValLoss,
          secondsPerStep: report.secondsPerStep,
        });
        const step = report.line.step;
        if (step % record.sampleEvery === 0 || step === record.settings.steps) {
          const made = sample(current);
          current.samples.push(made);
          hooks.onSample(made);
        }
      },
      stopRequested: () => stopRequested,
    },
  );
  if (!outcome.interrupted) current.info.finished = true;
  return { step: outcome.stepsDone, finished: !outcome.interrupted };
}

const api = {
  /** Prepares a new run (text → tokenizer → tokens → model) and stores it; training starts with `train`. */
  async start(request: StartRequest): Promise<RunInfo> {
    await closeRun();
    const problem = runSettingsProblem(request.settings);
    if (problem) throw new Error(problem);
    const record: RunRecord = {
      runId: request.runId,
      label: request.label,
      text: request.text,
      settings: request.settings,
      tokenizer: request.tokenizer,
      tokenizerJson: '',
      sampleEvery: request.sampleEvery,
      sampleTokens: request.sampleTokens,
      kernels: request.kernels,
      initialModel: request.initial ? request.label : undefined,
      createdAt: Date.now(),
    };
    run = await prepare(record, { threads: request.threads, initial: request.initial });
    try {
      await putRun(record);
    } catch (error) {
      await closeRun();
      throw new Error(runStoreProblem(error), { cause: error });
    }
    return run.info;
  },

  /** Takes up a stored run at its last good checkpoint, with the kernels it started with. */
  async resume(runId: string, threads: number): Promise<RunInfo> {
    await closeRun();
    const record = await getRun(runId);
    if (!record) throw new Error('that run is no longer stored in this browser');
    run = await prepare(record, { threads });
    return run.info;
  },

  /**
   * Trains the run held until its last step or until `pause`; resolves with where it stopped. Only one tab
   * trains at a time: a second gets `problem` and trains nothing.
   */
  async train(hooks: TrainerHooks): Promise<TrainOutcome> {
    const current = run;
    if (!current) throw new Error('no run is prepared');
    if (current.info.finished) return { step: current.optimizer.step, finished: true };
    const locks = (navigator as Navigator & { locks?: LockManager }).locks;
    try {
      if (!locks) return await trainHeld(current, hooks);
      return await locks.request(LOCK, { ifAvailable: true }, async (lock) =>
        lock
          ? trainHeld(current, hooks)
          : {
              step: current.optimizer.step,
              finished: false,
              problem:
                'Another tab of this course is training a model right now; stop it there (or close that tab) and press Start again.',
            },
      );
    } catch (error) {
      return {
        step: current.optimizer.step,
        finished: false,
        problem: `Training stopped: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  },

  /** The reader's text, for the logit lens at every sample. */
  setReaderText(text: string): void {
    readerText = text;
  },

  /** Asks the loop to save and return after the step it is in. */
  pause(): void {
    stopRequested = true;
  },

  /** Ends the run where it is (after a pause): it is saved as finished and can no longer resume. */
  async finish(): Promise<RunInfo | undefined> {
    if (!run) return undefined;
    run.info.finished = true;
    await save(run, undefined);
    return run.info;
  },

  /**
   * How surprised the model, as it is now, is by each token of the start of the held-out text (at most
   * `count` tokens, BOS first): −ln p of every token after the first, from one forward pass.
   */
  surprise(count: number): SurpriseReading {
    if (!run) throw new Error('no run is prepared');
    const { config, weights, kernels, tokenizer } = run;
    kernels.invalidateAll(); // the optimizer may have changed the weights in place
    const tokens = Array.from(run.validationTokens.subarray(0, Math.min(count, config.seqLen)));
    const { logits } = forward({ config, weights }, tokens, new KVCache(config), { logits: 'all', kernels });
    const result = textSurprise(tokens, logits, config.vocabSize);
    const encoder = bpeTokenizer(tokenizer);
    return {
      step: run.optimizer.step,
      tokens,
      pieces: tokens.map((token) => encoder.pieceLabel(token)),
      surprise: Array.from(result.surprise),
      meanNll: result.meanNll,
    };
  },

  /** The model as it is now, as a Hugging Face folder's files. */
  modelFiles(): ModelFiles {
    if (!run) throw new Error('no model has been trained here yet');
    const { configJson, safetensors } = toHfLlama({ config: run.config, weights: run.weights });
    return Comlink.transfer({ configJson, safetensors, tokenizerJson: toTokenizerJson(run.tokenizer) }, [
      safetensors.buffer as ArrayBuffer,
    ]);
  },

  info(): RunInfo | undefined {
    return run?.info;
  },

  savedRuns(): Promise<SavedRun[]> {
    return savedRuns();
  },

  lastGoodStep(runId: string): Promise<number | undefined> {
    return lastGoodStep(runId);
  },

  async forget(runId: string): Promise<void> {
    if (run?.record.runId === runId) await closeRun();
    await deleteRun(runId);
  },
};

export type TrainerApi = typeof api;

Comlink.expose(api);
