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
 *      PyTorch (float32, `torch.set_num_threads`), run as a child process; its figures are read from the
 *      JSON line it prints.
 *   3. A table, and ours ÷ PyTorch at each thread count both sides were measured at.
 *
 * Then the same steps in Chromium: the page's trainer (scripts/browser/page/train.ts, the page's shard
 * workers over shared memory), beside Node's at each thread count, as a ratio (`--no-browser` skips it).
 *
 * Options: `--steps N` timed steps (default 5), `--warmup N` untimed steps first (default 2), `--threads
 * 1,2` our thread counts, `--torch-threads 2` PyTorch's, `--python PATH` (default: the first of python3
 * and /usr/bin/python3 that can import torch), `--no-torch`, `--dim`, `--layers`, `--heads`, `--kv-heads`,
 * `--hidden`, `--seq-len`, `--batch`, `--vocab` to change the configuration, and `--json` to end with one
 * JSON line of every figure.
 *
 * PyTorch's speed depends on the BLAS it loads: Debian's python3-torch uses the system libblas.so.3, which is
 * the slow reference BLAS unless OpenBLAS (libopenblas0-pthread) is installed. The table says which BLAS
 * ran and warns when it is the reference one.
 *
 * tokens/s is batch·seqLen·steps over the time of the timed steps; "best step" is the fastest single
 * step, the one least disturbed when the machine is shared.
 */
import { spawnSync } from 'node:child_process';
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
import { randomBatches, timeTrainSteps, type Measurement } from './bench-train-common.ts';
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

async function measureOurs(threads: number, batches: Batch[]): Promise<Measurement> {
  const kernels = selectKernels('auto');
  await kernels.ready();
  const { weights } = randomModel(config, seed);
  const perShard = shardGradients(weights, settings.shards, threads > 1 ? sharedFloat32 : undefined);
  const workers: ShardWorker[] =
    threads > 1
      ? startShardThreads(threads, config, weights, perShard, kernels.variant)
      : [new LocalShardWorker(new TrainingModel(config, weights, { kernels }), perShard)];
  const name = `glassbox ${kernels.variant}`;
  try {
    return await timeTrainSteps(
      name,
      threads,
      config,
      weights,
      workers,
      perShard,
      batches,
      warmup,
      stepOptions,
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
  }
}

interface TorchResult {
  tokensPerSecond: number;
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

/** What the interpreter that ran PyTorch reported about itself (set by measureTorch). */
let torchInfo: TorchResult | undefined;

/** The exit status of bench_train_torch.py when this python cannot import torch. */
const NO_TORCH = 3;
const INSTALL_HINT =
  'PyTorch is not installed: on Debian/Ubuntu, `apt-get install -y python3-torch` (it installs for ' +
  '/usr/bin/python3; pass --python PATH for another interpreter). Reporting ours only.';

function runTorch(python: string, threads: number) {
  const torchArgs = [
    TORCH_SCRIPT,
    '--json',
    ...['--dim', settings.dim, '--layers', settings.layers, '--heads', settings.heads],
    ...['--kv-heads', settings.kvHeads, '--hidden', settings.hidden, '--seq-len', settings.seqLen],
    ...['--batch', settings.batchSize, '--vocab', settings.vocabSize, '--steps', steps],
    ...['--warmup', warmup, '--threads', threads, '--seed', seed, '--lr', house.learningRate],
    ...['--min-lr', house.minLearningRate, '--lr-warmup', house.warmupSteps, '--total-steps', house.steps],
  ].map(String);
  return spawnSync(python, torchArgs, { encoding: 'utf8', maxBuffer: 1 << 24 });
}

/**
 * PyTorch at `threads`, with the first interpreter that has torch; a string says why there is no figure.
 */
function measureTorch(threads: number, pythons: string[]): Measurement | string {
  let missing = '';
  for (const python of pythons) {
    const child = runTorch(python, threads);
    if (child.error || child.status === NO_TORCH) {
      missing = child.error ? `${python}: ${child.error.message}` : child.stderr.trim();
      continue;
    }
    if (child.status !== 0) {
      return `${python} ${TORCH_SCRIPT} failed (status ${child.status}):\n${child.stderr.trim()}`;
    }
    const result = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as TorchResult;
    pythons.splice(0, pythons.length, python); // later thread counts use the same interpreter
    torchInfo = result;
    return {
      name: `PyTorch ${result.torch} eager`,
      threads: result.threads,
      tokensPerSecond: result.tokensPerSecond,
      bestStepTokensPerSecond: result.bestStepTokensPerSecond,
      stepSeconds: result.stepSeconds,
      firstLoss: result.firstLoss,
      parameters: result.parameters,
    };
  }
  return `${INSTALL_HINT}\n  (${missing})`;
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
  const ours: Measurement[] = [];
  for (const threads of ourThreads) {
    const measurement = await measureOurs(threads, batches);
    ours.push(measurement);
  }
  closeKernels(); // the workers would only sleep, but stop them before PyTorch runs

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

  const torch: Measurement[] = [];
  let torchProblem: string | undefined;
  const explicitPython = option('--python');
  const pythons = explicitPython ? [explicitPython] : ['python3', '/usr/bin/python3'];
  for (const threads of torchThreads) {
    const result = measureTorch(threads, pythons);
    if (typeof result === 'string') {
      torchProblem = result;
      break;
    }
    torch.push(result);
  }

  const columns = ['threads', 'tokens/s', 'best step', 's/step', 'parameters', 'first loss'];
  log('');
  log(tableRow('', 34, columns));
  for (const m of [...ours, ...browser, ...torch]) {
    const secondsPerStep = m.stepSeconds.reduce((a, b) => a + b, 0) / m.stepSeconds.length;
    log(
      tableRow(m.name, 34, [
        String(m.threads),
        cell(m.tokensPerSecond, 0),
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
    if (node) ratios[`browser ${b.threads}t / node ${b.threads}t`] = b.tokensPerSecond / node.tokensPerSecond;
  }
  for (const t of torch) {
    for (const o of ours) {
      ratios[`ours ${o.threads}t / torch ${t.threads}t`] = o.tokensPerSecond / t.tokensPerSecond;
    }
  }
  log('');
  if (torchInfo) {
    log(
      `PyTorch: python ${torchInfo.python}, BLAS ${torchInfo.blas}, OMP_WAIT_POLICY ${torchInfo.ompWaitPolicy}, ` +
        'OPENBLAS_NUM_THREADS ' +
        (torchInfo.openblasThreads === String(torchInfo.threads)
          ? 'as torch threads'
          : torchInfo.openblasThreads),
    );
    if (/\/blas\/libblas|refblas|netlib/.test(torchInfo.blas)) {
      log(
        'warning: this PyTorch multiplies matrices with the reference (netlib) BLAS, several times slower than ' +
          'OpenBLAS: `apt-get install -y libopenblas0-pthread` makes it the system BLAS (or point ' +
          'LD_LIBRARY_PATH at a directory holding OpenBLAS’s libblas.so.3). This ratio flatters us.',
      );
    }
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
        torchInfo: torchInfo && {
          torch: torchInfo.torch,
          python: torchInfo.python,
          blas: torchInfo.blas,
          ompWaitPolicy: torchInfo.ompWaitPolicy,
          openblasThreads: torchInfo.openblasThreads,
        },
        torchProblem,
        ratios,
      }),
    );
  }
}

await main();
