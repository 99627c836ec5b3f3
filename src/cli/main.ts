/**
 * The `glassbox` command: generate text and dump traces from the same engine the course runs.
 *
 *   glassbox generate --model M [--tokenizer T] [--prompt TEXT] [--steps N] [--temperature T] [--top-p P]
 *                     [--top-k K] [--min-p P] [--seed S]
 *   glassbox trace    --model M [--tokenizer T] --prompt TEXT --json [--all]
 *   glassbox inspect  heads|lens|ablate|neurons --model M [--tokenizer T] --prompt TEXT --json [view options]
 *   glassbox perplexity --model M [--tokenizer T] --text FILE [--json]
 *   glassbox quantize --model IN [--tokenizer T] --to q8_0|q4_0|q4_1|f16|bf16|f32 --out FILE.gguf [--force]
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { forward } from '../engine/forward.ts';
import { generateTokens, stopTokensFor } from '../engine/generate.ts';
import type { Model } from '../engine/model.ts';
import { speculativeGenerate, type SpeculativeStats } from '../engine/speculative.ts';
import { findTokenizerFile, loadModel } from '../formats/node.ts';
import { KVCache } from '../engine/kv-cache.ts';
import { XorShiftRng } from '../engine/rng.ts';
import {
  MIN_SAMPLING_TEMPERATURE,
  samplesGreedily,
  validateSamplingSettings,
  type SamplingSettings,
} from '../engine/sampling.ts';
import { MAX_MODEL_FILE_BYTES } from '../formats/node.ts';
import { MAX_BPE_VOCAB_SIZE } from '../tokenizers/bpe.ts';
import {
  HelpRequested,
  kernelsOption,
  modelOptions,
  numberOption,
  parse,
  requireModel,
  requirePromptFits,
  UsageError,
  wholeNumberOption,
} from './args.ts';
import { inspectCommand, inspectUsage } from './inspect.ts';
import { quantizeCommand, quantizeUsage } from './quantize.ts';
import { loadModelAndTokenizer } from './load.ts';
import { readTextFile } from './text-input.ts';
import { perplexity } from '../analysis/perplexity.ts';
import { FormatError } from '../formats/errors.ts';
import { trainTokenizerCommand } from './train-tokenizer.ts';
import { runParameterCount } from '../engine/train/prepare.ts';
import { DEFAULT_TRAIN_SETTINGS, trainModel, type TrainSettings } from './train/run.ts';
import { llama2cPrintable } from './printable.ts';
import { enableRelaxedSimd } from './runtime.ts';
import { traceToJson } from './trace-json.ts';

export interface CliIO {
  stdout: { write(chunk: string | Uint8Array): unknown };
  stderr: { write(chunk: string | Uint8Array): unknown };
}

/** The train options' defaults, shown in the usage from the settings themselves. */
const TRAIN_DEFAULTS = DEFAULT_TRAIN_SETTINGS;

const USAGE = `Usage: glassbox <command> [options]

Commands (each also takes --help):
  generate   Generate text from a prompt (llama2.c "run" semantics and output)
  trace      Print the tokens, logits and (with --all) every intermediate tensor as JSON
  inspect    Print what a chapter's figure shows (head scores, logit lens, ablation map, neurons) as JSON
  perplexity How surprised the model is by a text file: mean negative log-likelihood and perplexity
  train      Train a Llama-style model on a UTF-8 text file (checkpoints, --resume, log, loss plot)
  train-tokenizer  Learn a byte-level BPE vocabulary from a UTF-8 text file (tokenizer.json)
  quantize   Write any model as a GGUF file (llama.cpp's format) with its matrices in q8_0, q4_0, q4_1, f16 …
  help       Show this message

Model options (both commands):
  --model PATH        llama2.c checkpoint (.bin), llama.cpp GGUF (.gguf), or a Hugging Face Llama folder
                      (config.json + model.safetensors)
  --tokenizer PATH    llama2.c tokenizer (.bin) or BPE tokenizer.json; default: the one inside a .gguf, or
                      the one beside the model
  --kernels K         matrix kernels: auto (default: fastest available), wasm, ts (the readable reference)
  --threads N         threads for the large matrix products: 1 (default), 2, or auto

generate options:
  --prompt TEXT       text to continue (default: empty, i.e. start a new story)
  --steps N           positions to fill, prompt included (default 256; 0 = the model's whole context)
  --temperature T     0 = greedy (so is anything below ${MIN_SAMPLING_TEMPERATURE}, which says so); default 1.0
  --top-p P           nucleus sampling threshold in [0, 1] (default 0.9; 0 or 1 = off)
  --top-k K           keep only the K most likely tokens (default 0 = off)
  --min-p P           keep tokens with p >= P * max p (default 0 = off)
  --seed S            random seed, a positive integer (default: the current time, printed to stderr)
  --draft PATH        speculative decoding: a small model with the same tokenizer guesses, the model checks
                      (greedy text is exactly the model's own; sampled text has the model's distribution)
  --draft-tokens K    tokens the draft guesses per round (default 4)

trace options:
  --prompt TEXT       the text to run
  --json              print JSON (the only format for now)
  --all               include the whole Trace (every intermediate tensor), not just tokens and logits

${inspectUsage()}
perplexity options:
  --text FILE         UTF-8 text (or .gz), read in windows of the model's context, each starting from BOS
  --json              print { "tokens": n, "nll": mean negative log-likelihood in nats, "perplexity": e^nll }

train options (defaults in brackets; a resumed run keeps the settings it started with):
  --input FILE        UTF-8 text (or .gz); blank-line-separated blocks are held out by a seeded rule for validation;
                      repeat it to train on several texts at once (each held out alike and reported apart)
  --out DIR           output folder: config.json, model.safetensors, tokenizer.json, checkpoint, log, loss.svg
  --resume            continue the run in --out from its last checkpoint (with --steps N: train on to step N;
                      with --input FILE: the text has moved; other settings are the run's own)
  --force             start a new run in an --out that holds an earlier run's files, replacing them
                      (without it, such a folder is refused)
  --tokenizer FILE    use this tokenizer.json instead of training one   --vocab-size N [${TRAIN_DEFAULTS.vocabSize}]
  --dim N [${TRAIN_DEFAULTS.dim}]  --layers N [${TRAIN_DEFAULTS.layers}]  --heads N [${TRAIN_DEFAULTS.heads}]  --kv-heads N [${TRAIN_DEFAULTS.kvHeads}]  --hidden N [${TRAIN_DEFAULTS.hidden}]  --seq-len N [${TRAIN_DEFAULTS.seqLen}]
  --batch N [${TRAIN_DEFAULTS.batchSize}]  --steps N [${TRAIN_DEFAULTS.steps}]  --lr X [${TRAIN_DEFAULTS.learningRate}]  --min-lr X [${TRAIN_DEFAULTS.minLearningRate}]  --warmup N [${TRAIN_DEFAULTS.warmupSteps}]
  --weight-decay X [${TRAIN_DEFAULTS.weightDecay}]  --clip X [${TRAIN_DEFAULTS.maxGradNorm}]  --eval-every N [${TRAIN_DEFAULTS.evalEvery}]  --checkpoint-every N [${TRAIN_DEFAULTS.checkpointEvery}]  --seed N [${TRAIN_DEFAULTS.seed}]
  --shards N [${TRAIN_DEFAULTS.shards}]      each batch is cut into N shards whose gradients are averaged (fixes the numbers)
  --snapshots N [0]   keep the model at N log-spaced steps (10, 20, 40, … the last) in DIR/snapshots/
  --threads N         threads computing the shards at once: 1, 2, … or auto [auto: one per core, ≤ shards];
                      the same run gives the same numbers on any number of threads

${quantizeUsage()}
train-tokenizer options:
  --input FILE        UTF-8 text (or .gz)
  --vocab-size N      tokens in the vocabulary, counting 256 bytes and 2 special tokens (default 4096)
  --out FILE          where to write tokenizer.json (Hugging Face layout)
  --merges FILE       also write every merge in order, with its count (TSV)

Examples:
  glassbox generate --model stories260K.bin --tokenizer tok512.bin --temperature 0 --steps 200
  glassbox generate --model stories15M.bin --prompt "Once upon a time" --seed 42
  glassbox trace --model stories260K.bin --tokenizer tok512.bin --prompt "Lily and Tom" --json
  glassbox inspect heads --model models/house --prompt "In the beginning" --json
  glassbox quantize --model models/house --to q8_0 --out house-q8_0.gguf
`;

async function generateCommand(args: string[], io: CliIO): Promise<number> {
  const values = parse(args, {
    ...modelOptions,
    steps: { type: 'string' },
    temperature: { type: 'string' },
    'top-p': { type: 'string' },
    'top-k': { type: 'string' },
    'min-p': { type: 'string' },
    seed: { type: 'string' },
    draft: { type: 'string' },
    'draft-tokens': { type: 'string' },
  });
  const steps = numberOption(values.steps, 'steps', 256);
  if (!Number.isInteger(steps) || steps < 0)
    throw new UsageError(`--steps must be a whole number ≥ 0, got ${steps}`);
  const sampling: SamplingSettings = {
    temperature: numberOption(values.temperature, 'temperature', 1.0),
    topP: numberOption(values['top-p'], 'top-p', 0.9),
    topK: numberOption(values['top-k'], 'top-k', 0),
    minP: numberOption(values['min-p'], 'min-p', 0),
  };
  try {
    validateSamplingSettings(sampling);
  } catch (error) {
    throw new UsageError(`--${(error as Error).message}`);
  }
  const modelPath = requireModel(values.model);
  const seed = parseSeed(values.seed);
  const kernels = kernelsOption(values.kernels, values.threads);

  if (values['draft-tokens'] !== undefined && values.draft === undefined)
    throw new UsageError('--draft-tokens needs --draft (the model that guesses)');
  const draftTokens = wholeNumberOption(values['draft-tokens'], 'draft-tokens', 4, 1, 32);

  const { model, tokenizer } = await loadModelAndTokenizer(modelPath, values.tokenizer);
  const draft = values.draft
    ? {
        draft: await loadDraftModel(values.draft, model, values.tokenizer ?? findTokenizerFile(modelPath)!),
        draftTokens,
      }
    : undefined;
  if (sampling.temperature > 0 && samplesGreedily(sampling.temperature)) {
    io.stderr.write(
      `temperature ${sampling.temperature} is below ${MIN_SAMPLING_TEMPERATURE}: sampling greedily, as with 0\n`,
    );
  }
  if (values.seed === undefined && !samplesGreedily(sampling.temperature)) {
    // The clock chose the seed: say which, so a run worth keeping can be repeated.
    io.stderr.write(`seed: ${seed}\n`);
  }
  const promptTokens = tokenizer.encode(values.prompt ?? '', { bos: true, eos: false });

  requirePromptFits(promptTokens.length, model.config.seqLen);

  const loopOptions = {
    steps,
    sampling,
    rng: new XorShiftRng(seed),
    kernels,
    stopTokens: stopTokensFor(tokenizer),
  };
  const stats: SpeculativeStats = { proposed: 0, accepted: 0, targetPasses: 0, draftPasses: 0 };
  const generated = draft
    ? speculativeGenerate(model, promptTokens, { ...loopOptions, ...draft }, stats)
    : generateTokens(model, promptTokens, loopOptions);

  let previous = promptTokens[0];
  let startTime = 0;
  let sampled = 0;
  for (const { token, fromPrompt } of generated) {
    const piece = tokenizer.decodePiece(previous, token);
    io.stdout.write(tokenizer.family === 'llama2c' ? llama2cPrintable(piece) : piece);
    previous = token;
    if (fromPrompt) continue;
    sampled++;
    // Start the clock after the first sampled token, so start-up and the prompt's one batched pass are not
    // counted: the speed is that of the decode steps that followed, the work it claims to measure.
    if (startTime === 0) startTime = performance.now();
  }
  io.stdout.write('\n');
  if (sampled > 1) {
    const seconds = (performance.now() - startTime) / 1000;
    io.stderr.write(`achieved tok/s: ${((sampled - 1) / seconds).toFixed(6)} (kernels: ${kernels.name})\n`);
  }
  if (draft) {
    const rate = stats.proposed > 0 ? ((100 * stats.accepted) / stats.proposed).toFixed(1) : '0.0';
    io.stderr.write(
      `speculative decoding: the draft's guesses accepted ${stats.accepted} of ${stats.proposed} (${rate}%), ` +
        `${draft.draftTokens} per round; ${stats.targetPasses} target passes for ${sampled} tokens\n`,
    );
  }
  return 0;
}

/**
 * The draft model for speculative decoding: it must share the target's tokenizer (the same vocabulary, and —
 * when a tokenizer file sits beside it — the same file), since its guesses are token ids the target checks.
 */
async function loadDraftModel(path: string, target: Model, targetTokenizer: string): Promise<Model> {
  const draft = await loadModel(path);
  if (draft.config.vocabSize !== target.config.vocabSize)
    throw new UsageError(
      `--draft ${path} has a vocabulary of ${draft.config.vocabSize} tokens, the model ${target.config.vocabSize}: ` +
        `the draft must share the model's tokenizer`,
    );
  const draftTokenizer = findTokenizerFile(path);
  if (draftTokenizer && !(await readFile(draftTokenizer)).equals(await readFile(targetTokenizer)))
    throw new UsageError(
      `--draft ${path}: its tokenizer (${draftTokenizer}) is not the model's (${targetTokenizer}); the draft must share it`,
    );
  return draft;
}

/** llama2.c seeds from the clock when no seed (or 0) is given; so do we. */
function parseSeed(value: string | undefined): bigint {
  if (value === undefined || value === '0') return BigInt(Math.floor(Date.now() / 1000));
  if (!/^\d+$/.test(value) || BigInt(value) >= 1n << 64n) {
    throw new UsageError(`--seed must be a whole number between 1 and 2^64 − 1, got "${value}"`);
  }
  return BigInt(value);
}

async function traceCommand(args: string[], io: CliIO): Promise<number> {
  const values = parse(args, { ...modelOptions, json: { type: 'boolean' }, all: { type: 'boolean' } });
  if (!values.json) throw new UsageError('trace prints JSON only for now: add --json');
  if (values.prompt === undefined) throw new UsageError('--prompt is required for trace');
  const kernels = kernelsOption(values.kernels, values.threads);
  const { model, tokenizer } = await loadModelAndTokenizer(requireModel(values.model), values.tokenizer);
  const tokens = tokenizer.encode(values.prompt, { bos: true, eos: false });
  requirePromptFits(tokens.length, model.config.seqLen);
  const { trace } = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
  io.stdout.write(traceToJson(model, tokenizer, trace, { all: values.all === true }) + '\n');
  return 0;
}

/** Perplexity of a text file (src/analysis/perplexity.ts): the number the model card and chapter 16 report. */
async function perplexityCommand(args: string[], io: CliIO): Promise<number> {
  const values = parse(args, {
    model: { type: 'string' },
    tokenizer: { type: 'string' },
    kernels: { type: 'string' },
    threads: { type: 'string' },
    text: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.text === undefined) throw new UsageError('--text FILE is required for perplexity');
  const kernels = kernelsOption(values.kernels, values.threads);
  const { model, tokenizer } = await loadModelAndTokenizer(requireModel(values.model), values.tokenizer);
  const tokens = tokenizer.encode(await readTextFile(values.text), { bos: false, eos: false });
  if (tokens.length === 0) throw new FormatError(values.text, 'holds no text to measure');
  const result = perplexity(model, tokens, tokenizer.bosId, kernels);
  if (values.json) {
    const { tokens: count, nll, perplexity: value } = result;
    io.stdout.write(JSON.stringify({ tokens: count, nll, perplexity: value }) + '\n');
  } else {
    io.stdout.write(
      `perplexity ${result.perplexity.toFixed(3)}: mean negative log-likelihood ${result.nll.toFixed(4)} nats ` +
        `over ${result.tokens} tokens (${result.windows} windows of up to ${model.config.seqLen} positions)\n`,
    );
  }
  return 0;
}

const TRAIN_NUMBER_OPTIONS = {
  'vocab-size': 'vocabSize',
  dim: 'dim',
  layers: 'layers',
  heads: 'heads',
  'kv-heads': 'kvHeads',
  hidden: 'hidden',
  'seq-len': 'seqLen',
  batch: 'batchSize',
  steps: 'steps',
  lr: 'learningRate',
  'min-lr': 'minLearningRate',
  warmup: 'warmupSteps',
  'weight-decay': 'weightDecay',
  clip: 'maxGradNorm',
  'eval-every': 'evalEvery',
  'checkpoint-every': 'checkpointEvery',
  seed: 'seed',
  shards: 'shards',
  snapshots: 'snapshots',
} as const satisfies Record<string, keyof TrainSettings>;

const INTEGER_SETTINGS = new Set<keyof TrainSettings>([
  'vocabSize',
  'dim',
  'layers',
  'heads',
  'kvHeads',
  'hidden',
  'seqLen',
  'batchSize',
  'steps',
  'shards',
  'warmupSteps',
  'evalEvery',
  'checkpointEvery',
  'seed',
  'snapshots',
]);

/** Whole-number settings that may be 0. */
const MAY_BE_ZERO = new Set<keyof TrainSettings>(['warmupSteps', 'snapshots']);

/** --threads for training: a positive whole number, or auto (default): one per core. */
function trainThreads(value = 'auto'): number {
  if (value === 'auto') return availableParallelism();
  const threads = Number(value);
  if (!(Number.isInteger(threads) && threads >= 1 && threads <= 64)) {
    throw new UsageError(`--threads must be a whole number from 1 to 64, or auto; got "${value}"`);
  }
  return threads;
}

/**
 * The largest model `train` starts: its checkpoint holds the weights and AdamW's two moments in float32 (12
 * bytes a parameter) in one file, which must stay under the 2 GiB the loaders read.
 */
const MAX_TRAIN_PARAMETERS = Math.floor((MAX_MODEL_FILE_BYTES - (1 << 20)) / 12);

/** The number flags, checked: whole numbers from 1 (warmup from 0) to 2^53, rates and factors ≥ 0. */
function trainSettingsFromArgs(
  values: Record<string, string | string[] | boolean | undefined>,
): TrainSettings {
  const settings: TrainSettings = { ...DEFAULT_TRAIN_SETTINGS, input: '' };
  const inputs = values.input as string[] | undefined;
  if (inputs && inputs.length > 0)
    settings.input = inputs.length === 1 ? resolve(inputs[0]) : inputs.map((p) => resolve(p));
  if (values.tokenizer) settings.tokenizer = resolve(values.tokenizer as string);
  for (const [option, key] of Object.entries(TRAIN_NUMBER_OPTIONS)) {
    const value = numberOption(values[option] as string | undefined, option, settings[key] as number);
    if (
      INTEGER_SETTINGS.has(key)
        ? !Number.isSafeInteger(value) || value < (MAY_BE_ZERO.has(key) ? 0 : 1)
        : !(value >= 0)
    ) {
      throw new UsageError(
        `--${option} must be ${INTEGER_SETTINGS.has(key) ? 'a positive whole number (at most 2^53)' : 'a number ≥ 0'}, got ${value}`,
      );
    }
    (settings[key] as number) = value;
  }
  if (settings.dim % settings.heads !== 0)
    throw new UsageError(`--dim ${settings.dim} must be divisible by --heads ${settings.heads}`);
  if (settings.heads % settings.kvHeads !== 0)
    throw new UsageError(`--heads ${settings.heads} must be a multiple of --kv-heads ${settings.kvHeads}`);
  if (settings.shards > settings.batchSize)
    throw new UsageError(`--shards ${settings.shards} cannot exceed --batch ${settings.batchSize}`);
  const parameters = runParameterCount(settings);
  if (parameters > MAX_TRAIN_PARAMETERS) {
    throw new UsageError(
      `--dim, --layers, --hidden and --vocab-size make a model of ${parameters.toExponential(2)} parameters; ` +
        `its checkpoint must stay under 2 GiB, which holds ${MAX_TRAIN_PARAMETERS.toLocaleString('en-US')}`,
    );
  }
  return settings;
}

/** A resumed run keeps the settings it started with; only --steps (train on) and --input (moved) may change. */
function checkResumeOptions(values: Record<string, string | string[] | boolean | undefined>): void {
  if (values.force) throw new UsageError('--resume continues a run and --force replaces it: choose one');
  const fixed = [...Object.keys(TRAIN_NUMBER_OPTIONS).filter((name) => name !== 'steps'), 'tokenizer'];
  const given = fixed.filter((name) => values[name] !== undefined);
  if (given.length > 0) {
    throw new UsageError(
      `${given.map((name) => `--${name}`).join(', ')} cannot change when resuming: a resumed run keeps the ` +
        `settings in its checkpoint (only --steps and --input may be given)`,
    );
  }
}

async function train(args: string[], io: CliIO): Promise<number> {
  const numberOptions = Object.fromEntries(
    Object.keys(TRAIN_NUMBER_OPTIONS).map((name) => [name, { type: 'string' as const }]),
  );
  const values = parse(args, {
    input: { type: 'string', multiple: true },
    out: { type: 'string' },
    tokenizer: { type: 'string' },
    resume: { type: 'boolean' },
    force: { type: 'boolean' },
    kernels: { type: 'string' },
    threads: { type: 'string' },
    ...numberOptions,
  }) as Record<string, string | string[] | boolean | undefined>;
  const out = values.out as string | undefined;
  if (!out) throw new UsageError('--out is required (the folder for the model, checkpoints and log)');
  const resume = values.resume === true;
  if (!resume && !values.input) throw new UsageError('--input is required (a UTF-8 text file)');
  if (resume) checkResumeOptions(values);
  const settings = trainSettingsFromArgs(values);
  const onResume = {
    steps: values.steps !== undefined ? settings.steps : undefined,
    input: values.input !== undefined ? settings.input : undefined,
  };
  const kernels = kernelsOption(values.kernels as string | undefined);
  const threads = trainThreads(values.threads as string | undefined);

  let stop = false;
  const onSignal = () => {
    if (stop) process.exit(130); // a second Ctrl-C: leave at once (the last checkpoint is still whole)
    stop = true;
    io.stderr.write('\nstopping after this step (Ctrl-C again to quit without saving)…\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const interactive = (io.stderr as { isTTY?: boolean }).isTTY === true;
  try {
    const result = await trainModel(
      settings,
      out,
      {
        resume,
        force: values.force === true,
        ...(resume ? onResume : {}),
        kernels: kernels.variant,
        threads,
      },
      {
        log: (line) => io.stderr.write(line + '\n'),
        progress: interactive ? (line) => io.stderr.write(`\r${line}\x1b[K`) : undefined,
        stopRequested: () => stop,
      },
    );
    if (interactive) io.stderr.write('\n');
    io.stderr.write(result.interrupted ? '' : `done: ${result.stepsDone} steps; the model is in ${out}\n`);
    return result.interrupted ? 130 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function trainTokenizer(args: string[], io: CliIO): Promise<number> {
  const values = parse(args, {
    input: { type: 'string' },
    'vocab-size': { type: 'string' },
    out: { type: 'string' },
    merges: { type: 'string' },
  });
  if (!values.input) throw new UsageError('--input is required (a UTF-8 text file)');
  if (!values.out) throw new UsageError('--out is required (where to write tokenizer.json)');
  const vocabSize = numberOption(values['vocab-size'], 'vocab-size', 4096);
  if (!Number.isInteger(vocabSize) || vocabSize < 258 || vocabSize > MAX_BPE_VOCAB_SIZE) {
    throw new UsageError(
      `--vocab-size must be a whole number from 258 (bytes + 2 special tokens) to ${MAX_BPE_VOCAB_SIZE}, got ${vocabSize}`,
    );
  }
  await trainTokenizerCommand({
    input: values.input,
    vocabSize,
    out: values.out,
    merges: values.merges,
    log: (line) => io.stderr.write(line + '\n'),
  });
  return 0;
}

/** Runs the CLI; returns the process exit code. Errors become a message on stderr, never a stack trace. */
export async function main(argv: string[], io: CliIO): Promise<number> {
  enableRelaxedSimd();
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'generate':
        return await generateCommand(rest, io);
      case 'trace':
        return await traceCommand(rest, io);
      case 'inspect':
        return await inspectCommand(rest, io);
      case 'perplexity':
        return await perplexityCommand(rest, io);
      case 'train':
        return await train(rest, io);
      case 'train-tokenizer':
        return await trainTokenizer(rest, io);
      case 'quantize':
        return await quantizeCommand(rest, { log: (line) => io.stderr.write(line + '\n') });
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(USAGE);
        return 0;
      case undefined:
        throw new UsageError('no command given');
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (error) {
    if (error instanceof HelpRequested) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (error instanceof UsageError) {
      io.stderr.write(`glassbox: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr.write(`glassbox: ${(error as Error).message}\n`);
    return 1;
  }
}
