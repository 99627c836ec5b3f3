/**
 * `npm run bench`: how fast the engine runs, measured now, on this machine, in one run and as ratios.
 *
 *   1. The engine: decode tokens/s (one token at a time with the KV cache) and prefill tokens/s (a 64-token
 *      prompt in one pass) of stories260K (from ../shared, when present) and of a randomly initialised
 *      model of stories15M's shape, with the readable TypeScript kernels, the WebAssembly ones on one
 *      thread, and on two.
 *      Then batched decoding: 1, 2, 4 and 8 sequences decoding in one pass (forwardBatch), as ratios.
 *      Then quantized weights: stories15M-shape decode with its matrices as f32, q8_0, q4_0 and q4_1 on one
 *      and two threads, the ratios to f32, and the weight bytes read per second beside the memory bandwidth
 *      one thread reaches streaming a 256 MB buffer (`--quant-only` runs this part alone).
 *   1b. Chapter 8's ablation map on the house model: a 64-token text, one pass per head (src/analysis/heads.ts),
 *      in ms and passes/s, and as a ratio to one plain forward pass over the same text, timed in the same run.
 *   1c. Chapter 10's logit lens (src/analysis/lens.ts) of the house model on a 64-token text, beside one
 *      plain forward pass over the same text with the same kernels, and their ratio.
 *   2. With `--llama2c PATH`: a llama2.c `run` binary you built (e.g. `gcc -O3 -o run run.c -lm`) on
 *      stories260K, beside our CLI doing the same (greedy, 256 steps), both as their "achieved tok/s".
 *   3. The matrix kernels' GFLOP/s on the engine's and the trainer's shapes, beside onnxruntime
 *      (scripts/bench-kernels.ts).
 *   4. The same in Chromium (scripts/browser/bench-browser.ts): our kernels against onnxruntime-web,
 *      stories15M-shape decode, batched decoding and quantized weights (two threads) — skipped when
 *      /usr/bin/chromium is missing, or with `--no-browser`.
 *
 * `--quick` runs shorter rounds (noisier); `--lens-only` runs part 1c alone; `--batch-only` the batched decoding
 * alone and `--quant-only` the quantized weights alone (each also in Chromium, unless `--no-browser`); `--json` ends the output with
 * one JSON line holding every figure. The machine is shared, so every figure is the fastest of many timings (see timePerCall in
 * bench-common.ts): the one nothing else interrupted.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { ablationMap } from '../src/analysis/heads.ts';
import { logitLens } from '../src/analysis/lens.ts';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { main as cli } from '../src/cli/main.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { randomModel, STORIES15M_SHAPE } from '../src/engine/init.ts';
import type { Model } from '../src/engine/model.ts';
import { quantizeModel, weightBytes, type ModelQuantType } from '../src/engine/quant-matmul.ts';
import { loadModel } from '../src/formats/node.ts';
import { closeKernels, describeKernels, selectKernels, type KernelSet } from '../src/kernels/select.ts';
import { instantiateKernels, wasmVariantSupported } from '../src/kernels/wasm.ts';
import {
  batchedDecodeTokensPerSecond,
  cell,
  interleavedDecodeTokensPerSecond,
  engineSpeed,
  tableRow,
  timePerCall,
  type EngineSpeed,
} from './bench-common.ts';
import { runKernelBench } from './bench-kernels.ts';
import {
  printBrowserBench,
  printBrowserDecodeBench,
  runBrowserBench,
  runBrowserDecodeBench,
} from './browser/bench-browser.ts';

// Node 20 has relaxed SIMD (the fused multiply-add) behind a flag; Node 22 and Chromium have it on.
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');

const args = process.argv.slice(2);
const asJson = args.includes('--json');
const quick = args.includes('--quick');
const llama2cIndex = args.indexOf('--llama2c');
const llama2cBinary = llama2cIndex >= 0 ? args[llama2cIndex + 1] : undefined;
const ROUNDS = quick ? 2 : 4;

const shared = process.env.GLASSBOX_SHARED ?? resolve(import.meta.dirname, '..', '..', '..', 'shared');
const STORIES260K = join(shared, 'models', 'stories260K', 'stories260K.bin');
const TOK512 = join(shared, 'models', 'stories260K', 'tok512.bin');

const results: Record<string, unknown> = {
  node: process.version,
  date: new Date().toISOString(),
  cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
};

/** The three kernel sets compared: the reference, WebAssembly on one thread, and on two. */
function kernelSets(): Record<string, KernelSet> {
  return {
    ts: selectKernels('ts'),
    'wasm 1 thread': selectKernels('wasm', { threads: 1 }),
    'wasm 2 threads': selectKernels('wasm', { threads: 2 }),
  };
}

const HOUSE = resolve(import.meta.dirname, '..', '..', 'models', 'house');
const ABLATION_TEXT =
  'In the beginning God created the heavens and the earth. The earth was formless and empty. Darkness was on ' +
  'the surface of the deep and God’s Spirit was hovering over the surface of the waters. God said, Let there be ' +
  'light, and there was light. God saw the light, and saw that it was good. God divided the light from the darkness.';

/**
 * Chapter 8's ablation map of the house model on a 64-token text (WebAssembly, one thread, as in the page's
 * worker): its time, its passes per second, and its time over one plain forward pass of the same text (the
 * map's clean traced pass is computed once beforehand, as the page's is).
 */
async function benchAblation(): Promise<void> {
  if (!existsSync(HOUSE)) {
    console.log(`
ablation map: skipped (${HOUSE} not found)`);
    return;
  }
  const { model, tokenizer } = await loadModelAndTokenizer(HOUSE);
  const kernels = selectKernels('wasm', { threads: 1 });
  const tokens = tokenizer.encode(ABLATION_TEXT, { bos: true, eos: false }).slice(0, 64);
  const pass = (trace: boolean) =>
    forward(model, tokens, new KVCache(model.config), { kernels, trace, logits: trace ? 'last' : 'all' });
  const clean = pass(true).trace!;
  let passes = 0;
  const mapSeconds = timePerCall(
    () => (passes = ablationMap(model, clean, kernels).passes),
    quick ? 0.5 : 2,
    ROUNDS,
  );
  const forwardSeconds = timePerCall(() => pass(false), quick ? 0.3 : 1, ROUNDS);
  const ablation = {
    tokens: tokens.length,
    passes,
    ms: mapSeconds * 1000,
    passesPerSecond: passes / mapSeconds,
    forwardMs: forwardSeconds * 1000,
    ratioToForward: mapSeconds / forwardSeconds,
  };
  console.log(`
ablation map, house model, ${tokens.length} tokens (${kernels.variant}, 1 thread)`);
  console.log(
    `  ${passes} passes in ${cell(ablation.ms, 1)} ms (${cell(ablation.passesPerSecond)} passes/s); ` +
      `one forward pass ${cell(ablation.forwardMs, 2)} ms; map ÷ forward ${cell(ablation.ratioToForward, 1)}×`,
  );
  results.ablation = ablation;
}

/** Decode and prefill tokens/s of each model with each kernel set, as a table with ratios. */
function benchEngine(models: [string, Model][]): void {
  const sets = kernelSets();
  const columns = [...Object.keys(sets), 'wasm÷ts', '2t÷1t'];
  console.log(`\nengine tokens/s (${describeKernels(sets['wasm 1 thread'])})`);
  console.log(tableRow('', 44, columns, 15));
  const figures: Record<string, Record<string, EngineSpeed>> = {};
  for (const [name, model] of models) {
    figures[name] = {};
    for (const [setName, kernels] of Object.entries(sets)) {
      // Two threads are only worth measuring where there is a second thread.
      if (setName === 'wasm 2 threads' && kernels.threads < 2) continue;
      // The reference is slow on the larger model: fewer rounds are enough for its figures.
      const rounds = setName === 'ts' ? Math.min(ROUNDS, 2) : ROUNDS;
      figures[name][setName] = engineSpeed(model, kernels, rounds);
    }
    for (const measure of ['decode', 'prefill'] as const) {
      const key = measure === 'decode' ? 'decodeTokensPerSecond' : 'prefillTokensPerSecond';
      const value = (setName: string) => figures[name][setName]?.[key];
      const ratio = (a: string, b: string) => cell((value(a) ?? NaN) / (value(b) ?? NaN), 2);
      const detail = measure === 'decode' ? '' : ` (${figures[name].ts.promptLength} tokens)`;
      console.log(
        tableRow(
          `${name} ${measure}${detail}`,
          44,
          [
            ...Object.keys(sets).map((setName) => cell(value(setName))),
            `${ratio('wasm 1 thread', 'ts')}×`,
            `${ratio('wasm 2 threads', 'wasm 1 thread')}×`,
          ],
          15,
        ),
      );
    }
  }
  const decodeMs = figures['stories15M-shape']?.['wasm 1 thread']?.decodeTokensPerSecond;
  if (decodeMs)
    console.log(`stories15M-shape decode, wasm 1 thread: ${(1000 / decodeMs).toFixed(2)} ms/token`);
  results.engine = figures;
}

/**
 * Batched decoding on the stories15M shape with two threads: tokens/s when 1, 2, 4 and 8 sequences (each 64
 * positions in) decode one token per pass, and the ratio to one sequence. Decoding one token reads every
 * weight for little arithmetic; a batch shares that read.
 */
function benchBatching(model: Model): void {
  const kernels = selectKernels('wasm', { threads: 2 });
  const sizes = [1, 2, 4, 8];
  console.log(`
batched decode, stories15M-shape, 64 positions in (${kernels.name})`);
  console.log(tableRow('sequences per pass', 24, ['tokens/s', '÷ batch 1'], 12));
  const tokensPerSecond = batchedDecodeTokensPerSecond(
    model,
    kernels,
    sizes,
    64,
    quick ? 0.1 : 0.25,
    2 * ROUNDS,
  );
  const figures: Record<string, number> = {};
  sizes.forEach((size, i) => {
    figures[size] = tokensPerSecond[i];
    console.log(
      tableRow(`${size}`, 24, [cell(figures[size]), `${cell(figures[size] / figures[1], 2)}×`], 12),
    );
  });
  results.batching = figures;
}

/**
 * Read bandwidth of one thread, in GB/s: WebAssembly streaming a 256 MB buffer with 128-bit loads and nothing
 * else (quant.as's streamRead), the fastest of several passes. The buffer is written first, so the reads
 * come from memory rather than from the operating system's shared page of zeros.
 */
function streamBandwidth(): number {
  const bytes = 256 << 20;
  const { wasm, memory } = instantiateKernels('wasm-simd', { initialPages: (bytes >> 16) + 64 });
  const start = Math.ceil(wasm.heapBase() / 64) * 64;
  new Uint8Array(memory.buffer).fill(1, start, start + bytes);
  return bytes / timePerCall(() => wasm.streamRead(start, bytes), quick ? 0.5 : 1, ROUNDS) / 1e9;
}

/**
 * Decode tokens/s of the stories15M shape (random weights: the real file is not in ../shared) with its
 * matrices stored as f32, q8_0, q4_0 and q4_1 (quantizeModel), on one thread and on two; each token reads
 * every matrix once (the tied classifier included), so bytes per token × tokens/s is the rate the weights
 * are read at, beside the measured read bandwidth.
 */
function benchQuantizedDecode(model: Model): void {
  const bandwidth = streamBandwidth();
  const sets = {
    '1 thread': selectKernels('wasm', { threads: 1 }),
    '2 threads': selectKernels('wasm', { threads: 2 }),
  };
  console.log(`
quantized weights: stories15M-shape decode, 64 positions (random weights; ${sets['2 threads'].name})`);
  console.log(`memory read bandwidth, one thread streaming 256 MB: ${cell(bandwidth)} GB/s`);
  console.log(
    tableRow(
      '',
      8,
      ['MB/token', '1t tok/s', '2t tok/s', '1t ÷ f32', '2t ÷ f32', '2t GB/s', '2t ÷ bw', '1t GB/s'],
      10,
    ),
  );
  const types = ['f32', 'q8_0', 'q4_0', 'q4_1'] as const;
  const models = types.map((type) => (type === 'f32' ? model : quantizeModel(model, type as ModelQuantType)));
  // Every type in each round (interleavedDecodeTokensPerSecond): their ratios share the machine's load.
  const tokensPerSecond: Record<string, number[]> = {};
  for (const [name, kernels] of Object.entries(sets)) {
    interleavedDecodeTokensPerSecond(models, kernels, 8, 1); // warm up: packs the weights, starts the threads
    tokensPerSecond[name] = interleavedDecodeTokensPerSecond(models, kernels, 64, ROUNDS);
  }
  const figures: Record<string, Record<string, number>> = {};
  types.forEach((type, t) => {
    const bytes = weightBytes(models[t]);
    const row: Record<string, number> = { megabytesPerToken: bytes / 1e6 };
    for (const name of Object.keys(sets)) row[name] = tokensPerSecond[name][t];
    figures[type] = row;
    const f32 = figures.f32;
    console.log(
      tableRow(
        type,
        8,
        [
          cell(row.megabytesPerToken),
          cell(row['1 thread']),
          cell(row['2 threads']),
          `${cell(row['1 thread'] / f32['1 thread'], 2)}×`,
          `${cell(row['2 threads'] / f32['2 threads'], 2)}×`,
          cell((bytes * row['2 threads']) / 1e9),
          `${cell((bytes * row['2 threads']) / 1e9 / bandwidth, 2)}×`,
          cell((bytes * row['1 thread']) / 1e9),
        ],
        10,
      ),
    );
  });
  results.quantized = { bandwidthGBs: bandwidth, decode: figures };
}

/** "achieved tok/s: 1234.5" as llama2.c's run and our CLI both print it to stderr. */
function achievedTokensPerSecond(stderr: string): number {
  const match = /achieved tok\/s: ([\d.]+)/.exec(stderr);
  if (!match) throw new Error(`no "achieved tok/s" in: ${stderr.slice(0, 200)}`);
  return Number(match[1]);
}

/** llama2.c's run and our CLI, greedy for 256 steps on stories260K: best "achieved tok/s" of each. */
async function benchLlama2c(binary: string): Promise<void> {
  const rounds = quick ? 2 : 5;
  const runOnce = () =>
    new Promise<number>((done, fail) => {
      execFile(binary, [STORIES260K, '-z', TOK512, '-t', '0', '-n', '256'], (error, _stdout, stderr) => {
        if (error) fail(new Error(`${binary}: ${error.message}`));
        else done(achievedTokensPerSecond(stderr));
      });
    });
  const ours = async () => {
    let stderr = '';
    const sink = { write: (chunk: string | Uint8Array) => (stderr += chunk.toString()) };
    const args = ['generate', '--model', STORIES260K, '--tokenizer', TOK512, '--temperature', '0'];
    const code = await cli([...args, '--steps', '256'], { stdout: { write: () => true }, stderr: sink });
    if (code !== 0) throw new Error(`glassbox generate failed: ${stderr}`);
    return achievedTokensPerSecond(stderr);
  };
  let llama2c = 0;
  let glassbox = 0;
  for (let round = 0; round < rounds; round++) {
    llama2c = Math.max(llama2c, await runOnce());
    glassbox = Math.max(glassbox, await ours());
  }
  console.log(
    `\nllama2.c run vs glassbox generate: stories260K, -t 0 -n 256, achieved tok/s (best of ${rounds})`,
  );
  console.log(tableRow('', 24, ['llama2.c', 'glassbox', 'ratio'], 12));
  console.log(tableRow('decode', 24, [cell(llama2c), cell(glassbox), `${cell(glassbox / llama2c, 2)}×`], 12));
  results.llama2c = { binary, llama2cTokensPerSecond: llama2c, glassboxTokensPerSecond: glassbox };
}

/**
 * The logit lens on a 64-token text of the house model: L + 1 rows of RMSNorm, classifier product and
 * softmax over every position, against one plain forward pass over the same tokens (what a keystroke costs
 * without it), both on the default kernels, fastest of many timings each.
 */
async function benchLens(): Promise<void> {
  if (!existsSync(HOUSE)) {
    console.log(`\nlogit lens: skipped (${HOUSE} not found)`);
    return;
  }
  const { model, tokenizer } = await loadModelAndTokenizer(HOUSE);
  const verse =
    'And God said, Let there be light: and there was light. And God saw the light, that it was good. ';
  const tokens = tokenizer.encode(verse.repeat(8), { bos: true, eos: false }).slice(0, 64);
  const kernels = selectKernels('auto');
  const { trace } = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
  const seconds = quick ? 0.3 : 1;
  const lens = timePerCall(() => logitLens(model, trace, kernels, 5), seconds, ROUNDS);
  const plain = timePerCall(
    () => forward(model, tokens, new KVCache(model.config), { kernels, logits: 'last' }),
    seconds,
    ROUNDS,
  );
  console.log(
    `\nlogit lens, house model, ${tokens.length} tokens, ${model.config.nLayers + 1} rows (${describeKernels(kernels).split(';')[0]})`,
  );
  console.log(tableRow('', 24, ['lens ms', 'forward ms', 'lens÷forward'], 14));
  console.log(
    tableRow('', 24, [cell(lens * 1000, 2), cell(plain * 1000, 2), `${cell(lens / plain, 2)}×`], 14),
  );
  results.lens = { tokens: tokens.length, lensMs: lens * 1000, forwardMs: plain * 1000, ratio: lens / plain };
}

/** Batched and quantized decoding in Chromium (scripts/browser/page/decode.ts), unless `--no-browser`. */
async function benchDecodeInChromium(parts: { batching: boolean; quantized: boolean }): Promise<void> {
  if (args.includes('--no-browser')) return;
  const decode = await runBrowserDecodeBench(parts, { quick });
  printBrowserDecodeBench(decode, console.log);
  results.chromiumDecode = decode;
}

async function main(): Promise<void> {
  console.log(`Glassbox bench — Node ${process.version}, ${results.cpu}${quick ? ' (quick: noisier)' : ''}`);
  const quantOnly = args.includes('--quant-only');
  const batchOnly = args.includes('--batch-only');
  if (quantOnly || batchOnly) {
    if (batchOnly) benchBatching(randomModel(STORIES15M_SHAPE, 15));
    if (quantOnly) benchQuantizedDecode(randomModel(STORIES15M_SHAPE, 15));
    closeKernels();
    await benchDecodeInChromium({ batching: batchOnly, quantized: quantOnly });
    if (asJson) console.log(JSON.stringify(results));
    return;
  }
  if (args.includes('--lens-only')) {
    await benchLens();
    closeKernels();
    if (asJson) console.log(JSON.stringify(results));
    return;
  }
  const models: [string, Model][] = [];
  if (existsSync(STORIES260K)) models.push(['stories260K', await loadModel(STORIES260K)]);
  else console.log(`\nstories260K: skipped (${STORIES260K} not found)`);
  models.push(['stories15M-shape', randomModel(STORIES15M_SHAPE, 15)]);
  benchEngine(models);
  benchBatching(models[models.length - 1][1]);
  benchQuantizedDecode(models[models.length - 1][1]);
  await benchAblation();
  await benchLens();

  if (llama2cBinary) {
    if (!existsSync(STORIES260K)) console.log('\nllama2.c: skipped (stories260K not found)');
    else if (!existsSync(llama2cBinary)) console.log(`\nllama2.c: skipped (${llama2cBinary} not found)`);
    else await benchLlama2c(llama2cBinary);
  }

  console.log('\nmatrix kernels, GFLOP/s (scripts/bench-kernels.ts)');
  results.kernels = await runKernelBench({ quick });

  if (args.includes('--no-browser')) console.log('\nChromium: skipped (--no-browser)');
  else {
    console.log('\nChromium (scripts/browser/bench-browser.ts)');
    const browser = await runBrowserBench({ quick });
    printBrowserBench(browser, console.log);
    results.chromium = browser;
    await benchDecodeInChromium({ batching: true, quantized: true });
  }

  closeKernels();
  if (asJson) console.log(JSON.stringify(results));
}

await main();
