/**
 * `npm run bench:train`: how fast Glassbox trains, against PyTorch on the CPU, measured now, on this
 * machine, in one run, as a ratio.
 *
 *   1. Ours: the house configuration (DEFAULT_TRAIN_SETTINGS, the settings models/house was trained with)
 *      with random weights and random token batches, all seeded; after warm-up steps, N timed steps of
 *      exactly what `glassbox train` runs — `trainStep`: the batch cut into shards, forward and
 *      backward of each shard, gradients averaged and clipped, AdamW at the scheduled learning rate — on
 *      the WebAssembly kernels, on one thread (the shards in turn) and on two (a shard per worker thread).
 *   2. PyTorch: scripts/bench_train_torch.py, the same model, optimizer and batch shape in plain eager
 *      PyTorch (float32, `torch.set_num_threads`), run as a child process. At a thread count both sides
 *      run, their timed steps are interleaved — one of ours, one of PyTorch's, the order alternating — so
 *      that other work on the machine slows both alike (the child runs one step per request: `--serve`).
 *   3. Chromium: the page's trainer on the same configuration, batches and thread counts.
 *   4. A table, and ours ÷ PyTorch on the median step and on the best step, at each thread count both
 *      sides were measured at; none against a PyTorch whose BLAS is the reference (netlib) one, which is
 *      several times slower than any real BLAS and would flatter us.
 *
 * Options: `--steps N` timed steps (default 5), `--warmup N` untimed steps first (default 2), `--threads
 * 1,2` our thread counts, `--torch-threads 2` PyTorch's, `--python PATH[,PATH…]` (default: the first of
 * python3 and /usr/bin/python3 that can import torch; with several, each is measured, e.g. Debian's
 * python3-torch and a venv's pip wheel), `--no-torch`, `--no-browser`, `--dim`, `--layers`, `--heads`,
 * `--kv-heads`, `--hidden`, `--seq-len`, `--batch`, `--vocab` to change the configuration, and `--json` to
 * end with one JSON line of every figure.
 *
 * PyTorch's speed depends on the BLAS it loads: Debian's python3-torch uses the system libblas.so.3, which is
 * the slow reference BLAS unless OpenBLAS (libopenblas0-pthread) is installed. The table says which BLAS
 * ran.
 *
 * tokens/s is batch·seqLen·steps over the time of the timed steps; "median step" the typical step's
 * rate; "best step" the fastest single step's, the one least disturbed when the machine is shared.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { enableRelaxedSimd } from '../src/cli/runtime.ts';
import { DEFAULT_TRAIN_SETTINGS } from '../src/cli/train/run.ts';
import { randomModel } from '../src/engine/init.ts';
import type { ModelConfig } from '../src/engine/model.ts';
import type { Batch } from '../src/engine/train/data.ts';
import { TrainingModel } from '../src/engine/train/model.ts';
import { LocalShardWorker, shardGradients, type ShardWorker } from '../src/engine/train/shards.ts';
import type { TrainStepOptions } from '../src/engine/train/step.ts';
import { randomBatches, stepRates, TrainStepTimer, type Measurement } from './bench-train-common.ts';
import { sharedFloat32, startShardThreads } from '../src/cli/train/thread-shards.ts';
import { closeKernels, selectKernels } from '../src/kernels/select.ts';
import { cell, tableRow } from './bench-common.ts';
import { chromiumMissing, runInChromium } from './browser/chromium.ts';

enableRelaxedSimd(); // before the first WebAssembly module is compiled

const args = process.argv.slice(2);
const asJson = args.includes('--json');

function option(name: string): string | undefined {
  const index = args.indexOf(name);
  if (index < 0) return undefined;
  const value = args[index + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

function integerOption(name: string, fallback: number, min = 1): number {
  const text = option(name);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}: expected an integer ≥ ${min}`);
  return value;
}

function threadsOption(name: string, fallback: number[]): number[] {
  const text = option(name);
  if (text === undefined) return fallback;
  const list = text.split(',').map(Number);
  if (list.some((t) => !Number.isInteger(t) || t < 1 || t > 16)) {
    throw new Error(`${name}: a list of thread counts, e.g. 1,2`);
  }
  return list;
}

const house = DEFAULT_TRAIN_SETTINGS;
const settings = {
  dim: integerOption('--dim', house.dim),
  layers: integerOption('--layers', house.layers),
  heads: integerOption('--heads', house.heads),
  kvHeads: integerOption('--kv-heads', house.kvHeads),
  hidden: integerOption('--hidden', house.hidden),
  seqLen: integerOption('--seq-len', house.seqLen),
  batchSize: integerOption('--batch', house.batchSize),
  vocabSize: integerOption('--vocab', house.vocabSize),
  shards: integerOption('--shards', house.shards),
};
const steps = integerOption('--steps', 5);
const warmup = integerOption('--warmup', 2, 0);
const ourThreads = threadsOption('--threads', [1, 2]);
const torchThreads = args.includes('--no-torch') ? [] : threadsOption('--torch-threads', [2]);
const seed = house.seed;

/** The same ModelConfig as `glassbox train` builds (modelConfig in src/cli/train/run.ts). */
const config: ModelConfig = {
  dim: settings.dim,
  hiddenDim: settings.hidden,
  nLayers: settings.layers,
  nHeads: settings.heads,
  nKvHeads: settings.kvHeads,
  vocabSize: settings.vocabSize,
  seqLen: settings.seqLen,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeLayout: 'half',
  sharedClassifier: true,
};

/** The house schedule and clipping: a step costs the same whatever the learning rate. */
const stepOptions: TrainStepOptions = {
  schedule: {
    maxLr: house.learningRate,
    minLr: house.minLearningRate,
    warmupSteps: house.warmupSteps,
    totalSteps: house.steps,
  },
  maxGradNorm: house.maxGradNorm,
  adamw: { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: house.weightDecay },
};

/** Random token batches of the configured shape (bench-train-common.ts, shared with the browser line). */
function batchesOf(count: number): Batch[] {
  return randomBatches({ ...settings, seed }, count);
}

/** Our trainer at `threads`, ready to time step by step; `close` stops its worker threads. */
async function oursAt(threads: number): Promise<{ timer: TrainStepTimer; close: () => Promise<void> }> {
  const kernels = selectKernels('auto');
  await kernels.ready();
  const { weights } = randomModel(config, seed);
  const perShard = shardGradients(weights, settings.shards, threads > 1 ? sharedFloat32 : undefined);
  const workers: ShardWorker[] =
    threads > 1
      ? startShardThreads(threads, config, weights, perShard, kernels.variant)
      : [new LocalShardWorker(new TrainingModel(config, weights, { kernels }), perShard)];
  const timer = new TrainStepTimer(
    `glassbox ${kernels.variant}`,
    threads,
    weights,
    workers,
    perShard,
    stepOptions,
  );
  return { timer, close: async () => void (await Promise.all(workers.map((worker) => worker.close()))) };
}

interface TorchResult {
  tokensPerSecond: number;
  medianStepTokensPerSecond: number;
  bestStepTokensPerSecond: number;
  stepSeconds: number[];
  firstLoss: number;
  parameters: number;
  threads: number;
  torch: string;
  python: string;
  blas: string;
  ompWaitPolicy: string;
  openblasThreads: string;
}

/** Beside this file in scripts/, or two levels up from dist/scripts/ once compiled. */
const TORCH_SCRIPT =
  [
    resolve(import.meta.dirname, 'bench_train_torch.py'),
    resolve(import.meta.dirname, '..', '..', 'scripts', 'bench_train_torch.py'),
  ].find((path) => existsSync(path)) ?? 'scripts/bench_train_torch.py';

/** The exit status of bench_train_torch.py when this python cannot import torch. */
const NO_TORCH = 3;
const INSTALL_HINT =
  'PyTorch is not installed: on Debian/Ubuntu, `apt-get install -y python3-torch` (it installs for ' +
  '/usr/bin/python3; pass --python PATH for another interpreter). Reporting ours only.';

function torchArguments(threads: number): string[] {
  return [
    TORCH_SCRIPT,
    '--json',
    '--serve',
    ...['--dim', settings.dim, '--layers', settings.layers, '--heads', settings.heads],
    ...['--kv-heads', settings.kvHeads, '--hidden', settings.hidden, '--seq-len', settings.seqLen],
    ...['--batch', settings.batchSize, '--vocab', settings.vocabSize, '--steps', steps],
    ...['--warmup', warmup, '--threads', threads, '--seed', seed, '--lr', house.learningRate],
    ...['--min-lr', house.minLearningRate, '--lr-warmup', house.warmupSteps, '--total-steps', house.steps],
  ].map(String);
}

/**
 * PyTorch's side as a child process that has done its warm-up and runs one timed step per request
 * (bench_train_torch.py --serve), so that its steps can alternate with ours.
 */
class TorchSide {
  private readonly lines: AsyncIterator<string>;
  private stderr = '';

  private constructor(private readonly child: ReturnType<typeof spawn>) {
    child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  }

  /** Started and warmed up; or why not: 'missing' when this python has no torch, else the failure. */
  static async start(
    python: string,
    threads: number,
  ): Promise<TorchSide | { problem: string; missing: boolean }> {
    const side = new TorchSide(spawn(python, torchArguments(threads), { stdio: ['pipe', 'pipe', 'pipe'] }));
    const exited = new Promise<number | null>((resolve) => {
      side.child.on('exit', (code) => resolve(code));
      side.child.on('error', () => resolve(null));
    });
    const first = await Promise.race([side.lines.next(), exited.then(() => undefined)]);
    if (first && !first.done && JSON.parse(first.value).ready) return side;
    const code = await exited;
    return {
      missing: code === NO_TORCH || code === null,
      problem: `${python} ${TORCH_SCRIPT} ${code === null ? 'could not start' : `exited with status ${code}`}: ${side.stderr.trim()}`,
    };
  }

  /** One timed step; its seconds as PyTorch measured them. */
  async step(): Promise<number> {
    this.child.stdin!.write('step\n');
    const line = await this.lines.next();
    if (line.done) throw new Error(`PyTorch stopped: ${this.stderr.trim()}`);
    return (JSON.parse(line.value) as { seconds: number }).seconds;
  }

  /** Ends the child; its summary of every timed step. */
  async finish(): Promise<TorchResult> {
    this.child.stdin!.end('done\n');
    const line = await this.lines.next();
    if (line.done) throw new Error(`PyTorch stopped: ${this.stderr.trim()}`);
    return JSON.parse(line.value) as TorchResult;
  }
}

function torchMeasurement(result: TorchResult): Measurement {
  const tokens = settings.batchSize * settings.seqLen;
  return {
    name: `PyTorch ${result.torch} eager`,
    threads: result.threads,
    ...stepRates(tokens, result.stepSeconds),
    stepSeconds: result.stepSeconds,
    firstLoss: result.firstLoss,
    parameters: result.parameters,
  };
}

/** The BLAS libraries that are the slow reference implementation (netlib's). */
const isReferenceBlas = (blas: string) => /\/blas\/libblas|refblas|netlib/.test(blas);

/**
 * Ours at `threads`, and PyTorch under `python` at the same threads if given: warm-up on both, then `steps`
 * timed steps interleaved, the order alternating each round.
 */
async function measurePair(
  threads: number,
  batches: Batch[],
  torch: TorchSide | undefined,
): Promise<{ ours: Measurement; torch?: { measurement: Measurement; info: TorchResult } }> {
  const { timer, close } = await oursAt(threads);
  try {
    for (let i = 0; i < warmup; i++) await timer.step(batches[i], false);
    for (let i = 0; i < steps; i++) {
      const ourStep = () => timer.step(batches[warmup + i]);
      if (torch && i % 2 === 1) {
        await torch.step();
        await ourStep();
      } else {
        await ourStep();
        await torch?.step();
      }
    }
  } finally {
    await close();
  }
  const info = torch ? await torch.finish() : undefined;
  return { ours: timer.measurement(), torch: info && { measurement: torchMeasurement(info), info } };
}

async function main(): Promise<void> {
  const load = loadavg().map((l) => l.toFixed(2));
  const shape =
    `dim ${config.dim}, ${config.nLayers} layers, ${config.nHeads} heads (${config.nKvHeads} kv), ` +
    `hidden ${config.hiddenDim}, vocab ${config.vocabSize}, batch ${settings.batchSize}×${settings.seqLen}` +
    ` in ${settings.shards} shards`;
  const log = (line: string) => console.log(line);
  log(`training tokens/s — ${shape}`);
  log(`${warmup} warm-up + ${steps} timed steps each; load average before: ${load.join(' ')}`);

  const batches = batchesOf(warmup + steps);

  // Ours at each thread count, interleaved with each PyTorch (interpreter) measured at the same count.
  const explicitPython = option('--python');
  const candidates = explicitPython ? explicitPython.split(',') : ['python3', '/usr/bin/python3'];
  const pythons: string[] = []; // the interpreters that have torch
  let torchProblem: string | undefined;
  const ours: Measurement[] = [];
  const torch: Measurement[] = [];
  const infos: TorchResult[] = [];
  const pairs: { ours: Measurement; torch: Measurement; info: TorchResult }[] = [];
  for (const threads of [...new Set([...ourThreads, ...torchThreads])].sort((a, b) => a - b)) {
    const withTorch = torchThreads.includes(threads);
    // Once an interpreter has answered, later thread counts use the same ones.
    const interpreters = !withTorch ? [] : pythons.length > 0 ? pythons : candidates;
    let measuredWithTorch = false;
    for (const python of interpreters) {
      const side = await TorchSide.start(python, threads);
      if (!(side instanceof TorchSide)) {
        if (!side.missing) torchProblem = side.problem;
        else torchProblem ??= `${INSTALL_HINT}\n  (${side.problem})`;
        continue;
      }
      if (!pythons.includes(python)) pythons.push(python);
      const pair = await measurePair(threads, batches, side);
      if (ourThreads.includes(threads))
        ours.push({ ...pair.ours, name: `${pair.ours.name} (beside ${pair.torch!.measurement.name})` });
      torch.push(pair.torch!.measurement);
      infos.push(pair.torch!.info);
      pairs.push({ ours: pair.ours, torch: pair.torch!.measurement, info: pair.torch!.info });
      measuredWithTorch = true;
      if (!explicitPython) break; // by default, the first interpreter with torch
    }
    if (!measuredWithTorch && ourThreads.includes(threads))
      ours.push((await measurePair(threads, batches, undefined)).ours);
  }
  if (pythons.length > 0) torchProblem = undefined;
  closeKernels(); // the workers would only sleep, but stop them before Chromium runs

  // The page's trainer in Chromium, on the same configuration, batches and thread counts.
  let browser: Measurement[] = [];
  let browserProblem: string | undefined;
  if (args.includes('--no-browser')) browserProblem = 'Chromium: skipped (--no-browser)';
  else if (chromiumMissing()) browserProblem = `Chromium: skipped (${chromiumMissing()})`;
  else {
    try {
      browser = await runInChromium<Measurement[]>(
        {
          task: 'train',
          quick: false,
          train: {
            config,
            shape: { ...settings, seed },
            warmup,
            steps,
            threads: ourThreads,
            stepOptions,
          },
        },
        { onLog: (line) => log(`  [chromium] ${line}`) },
      );
    } catch (error) {
      browserProblem = `Chromium: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  const columns = ['threads', 'tokens/s', 'median step', 'best step', 's/step', 'parameters', 'first loss'];
  log('');
  const rows = [...ours, ...browser, ...torch];
  const nameWidth = Math.max(34, ...rows.map((m) => m.name.length + 2));
  log(tableRow('', nameWidth, columns));
  for (const m of rows) {
    const secondsPerStep = m.stepSeconds.reduce((a, b) => a + b, 0) / m.stepSeconds.length;
    log(
      tableRow(m.name, nameWidth, [
        String(m.threads),
        cell(m.tokensPerSecond, 0),
        cell(m.medianStepTokensPerSecond, 0),
        cell(m.bestStepTokensPerSecond, 0),
        cell(secondsPerStep, 2),
        m.parameters.toLocaleString('en-US'),
        cell(m.firstLoss, 3),
      ]),
    );
  }

  const ratios: Record<string, number> = {};
  for (const b of browser) {
    const node = ours.find((o) => o.threads === b.threads);
    if (node) {
      ratios[`browser ${b.threads}t / node ${b.threads}t (median step)`] =
        b.medianStepTokensPerSecond / node.medianStepTokensPerSecond;
    }
  }
  log('');
  for (const { ours: o, torch: t, info } of pairs) {
    log(
      `${t.name}: python ${info.python}, BLAS ${info.blas}, OMP_WAIT_POLICY ${info.ompWaitPolicy}, ` +
        `OPENBLAS_NUM_THREADS ${info.openblasThreads === String(info.threads) ? 'as torch threads' : info.openblasThreads}`,
    );
    if (isReferenceBlas(info.blas)) {
      log(
        `no ratio against ${t.name}: it multiplies matrices with the reference (netlib) BLAS, several times ` +
          'slower than OpenBLAS, which would flatter us. `apt-get install -y libopenblas0-pthread` makes ' +
          'OpenBLAS the system BLAS (or measure a pip wheel of torch: --python PATH).',
      );
      continue;
    }
    const label = `ours ${o.threads}t / ${t.name} ${t.threads}t, interleaved`;
    ratios[`${label} (median step)`] = o.medianStepTokensPerSecond / t.medianStepTokensPerSecond;
    ratios[`${label} (best step)`] = o.bestStepTokensPerSecond / t.bestStepTokensPerSecond;
  }
  for (const [label, ratio] of Object.entries(ratios)) log(`${label}: ${ratio.toFixed(2)}×`);
  if (torchProblem) log(torchProblem);
  if (browserProblem) log(browserProblem);

  if (asJson) {
    console.log(
      JSON.stringify({
        node: process.version,
        date: new Date().toISOString(),
        cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
        loadAverage: loadavg(),
        config,
        batchSize: settings.batchSize,
        warmupSteps: warmup,
        timedSteps: steps,
        ours,
        browser,
        browserProblem,
        torch,
        torchInfo: infos.map((info) => ({
          torch: info.torch,
          python: info.python,
          blas: info.blas,
          ompWaitPolicy: info.ompWaitPolicy,
          openblasThreads: info.openblasThreads,
        })),
        torchProblem,
        ratios,
      }),
    );
  }
}

await main();
