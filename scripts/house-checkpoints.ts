/**
 * The house model's history, for the training time-machine: every snapshot a run kept
 * (`glassbox train --snapshots N` writes RUN/snapshots/step-NNNNNN.safetensors) stored compactly as a Q8_0
 * GGUF file (blocks of 32 weights sharing one scale: about 1.06 bytes a weight instead of 4; the norms stay
 * float32; a standard file that llama.cpp opens too), and `index.json` describing them:
 *
 *   { seed, steps: [{ step, tokensSeen, file, bytes, valLoss: { web, brown, all }, samples: [...] }],
 *     restarts: [the steps where the log's learning rate rose again: the run was resumed with a longer schedule] }
 *
 * Step 0 is the untrained model: it has no file, because `randomModel(config, seed)` rebuilds it exactly; nor
 * has the last step, the finished model (the run's model.safetensors).
 * Validation losses are measured here on each snapshot's float32 weights, the same held-out windows the run
 * validated on; samples are greedy continuations of fixed prompts (one per source) from the Q8_0 file as
 * it ships.
 *
 *   npm run build && node dist/scripts/house-checkpoints.js RUN_DIR [OUT_DIR=models/house/checkpoints]
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { withoutControlCharacters } from '../src/cli/printable.ts';
import { enableRelaxedSimd } from '../src/cli/runtime.ts';
import { readTextFile } from '../src/cli/text-input.ts';
import { readTokenizerJson } from '../src/cli/train/tokenizer-file.ts';
import { validationLossBySource } from '../src/cli/train/evaluate.ts';
import {
  inputPaths,
  LOG_FILE,
  SNAPSHOT_FOLDER,
  sourceName,
  TRAINING_SUMMARY_FILE,
  type TrainSettings,
} from '../src/cli/train/run.ts';
import { generateTokens } from '../src/engine/generate.ts';
import { randomModel } from '../src/engine/init.ts';
import { warmRestarts } from '../src/engine/train/schedule.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import type { Model } from '../src/engine/model.ts';
import { parseGgufLlama, toGguf } from '../src/formats/gguf-llama.ts';
import { parseHfLlama } from '../src/formats/hf-llama.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { bpeTokenizer } from '../src/tokenizers/bpe.ts';
import type { Tokenizer } from '../src/tokenizers/tokenizer.ts';

/** One prompt per source of the house corpus: how each kind of text comes along as the model learns. */
export const CHECKPOINT_PROMPTS = ['In the beginning', 'The jury said'];
const SAMPLE_TOKENS = 40;

enableRelaxedSimd();
const run = resolve(process.argv[2] ?? '');
const out = resolve(process.argv[3] ?? 'models/house/checkpoints');
const kernels = selectKernels('auto');
const configJson = readFileSync(join(run, 'config.json'), 'utf8');
const rawTokenizer = readTokenizerJson(join(run, 'tokenizer.json'));
const tokenizer = bpeTokenizer(rawTokenizer);
const summary = JSON.parse(readFileSync(join(run, TRAINING_SUMMARY_FILE), 'utf8')) as {
  settings: TrainSettings;
};
const { settings } = summary;

// Each source's text, to measure every checkpoint on the windows the run validated on.
const sources: { name: string; text: string }[] = [];
for (const path of inputPaths(settings))
  sources.push({ name: sourceName(path), text: await readTextFile(path) });

function validationLosses(model: Model): Record<string, number> {
  const { bySource, all } = validationLossBySource(model, tokenizer, sources, settings);
  return sources.length > 1 ? { ...bySource, all } : bySource;
}

function greedy(model: Model, prompt: string, tokenizerOfModel: Tokenizer): string {
  const ids = tokenizerOfModel.encode(prompt, { bos: true, eos: false });
  const tokens = [ids[0]];
  for (const { token } of generateTokens(model, ids, {
    steps: ids.length - 1 + SAMPLE_TOKENS,
    sampling: { temperature: 0 },
    rng: new XorShiftRng(1n), // unused at temperature 0
    stopTokens: [tokenizerOfModel.bosId, tokenizerOfModel.eosId],
    kernels,
  })) {
    tokens.push(token);
  }
  return withoutControlCharacters(tokenizerOfModel.decode(tokens));
}

const round = (x: number) => Number(x.toFixed(4));
const steps = readdirSync(join(run, SNAPSHOT_FOLDER))
  .map((name) => /^step-(\d+)\.safetensors$/.exec(name))
  .filter((match) => match !== null)
  .map((match) => Number(match[1]))
  .sort((a, b) => a - b);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const tokensPerStep = settings.batchSize * settings.seqLen;
const entries = [];

const untrained = randomModel(
  parseHfLlama(configJson, readFileSync(join(run, 'model.safetensors')), {
    config: 'config.json',
    weights: 'model.safetensors',
  }).config,
  settings.seed,
);
entries.push({
  step: 0,
  tokensSeen: 0,
  file: null,
  bytes: 0,
  valLoss: Object.fromEntries(Object.entries(validationLosses(untrained)).map(([k, v]) => [k, round(v)])),
  samples: CHECKPOINT_PROMPTS.map((prompt) => greedy(untrained, prompt, tokenizer)),
});
for (const step of steps) {
  const weightsFile = join(run, SNAPSHOT_FOLDER, `step-${String(step).padStart(6, '0')}.safetensors`);
  const model = parseHfLlama(configJson, readFileSync(weightsFile), {
    config: 'config.json',
    weights: weightsFile,
  });
  // The last step is the finished model itself (the run's model.safetensors): no second copy.
  const finished = step === settings.steps;
  const file = finished ? null : `step-${String(step).padStart(6, '0')}.gguf`;
  let shipped = { model, tokenizer };
  let bytes = 0;
  if (file) {
    const gguf = toGguf(
      model,
      { kind: 'gpt2', tokenizer: rawTokenizer },
      'q8_0',
      `glassbox house model, step ${step}`,
    ).bytes;
    writeFileSync(join(out, file), gguf);
    shipped = parseGgufLlama(gguf, file);
    bytes = gguf.length;
  }
  entries.push({
    step,
    tokensSeen: step * tokensPerStep,
    file,
    bytes,
    valLoss: Object.fromEntries(Object.entries(validationLosses(model)).map(([k, v]) => [k, round(v)])),
    samples: CHECKPOINT_PROMPTS.map((prompt) => greedy(shipped.model, prompt, shipped.tokenizer)),
  });
  process.stderr.write(`step ${step}: ${JSON.stringify(entries.at(-1)?.valLoss)}\n`);
}
const log = readFileSync(join(run, LOG_FILE), 'utf8')
  .trim()
  .split('\n')
  .map((line) => JSON.parse(line) as { step: number; lr: number });
const index = {
  about:
    'scripts/house-checkpoints.ts: the house model at log-spaced steps of its training run, Q8_0 GGUF; step 0 is randomModel(config, seed), the last step is the finished model',
  seed: settings.seed,
  tokensPerStep,
  prompts: CHECKPOINT_PROMPTS,
  steps: entries,
  restarts: warmRestarts(log),
};
writeFileSync(join(out, 'index.json'), JSON.stringify(index, null, 2) + '\n');
process.stderr.write(
  `wrote ${entries.filter((e) => e.file).length} checkpoint files and index.json to ${out}\n`,
);
