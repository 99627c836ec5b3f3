/**
 * `npm run bench`: how fast the engine runs, measured now, on this machine.
 *
 * For stories260K (from ../shared, when present) and a randomly initialised model of stories15M's shape:
 * decode tokens/s (one token at a time with the KV cache), prefill tokens/s (a whole prompt in one pass), and
 * the matrix kernels' GFLOP/s on the shapes those passes use, each beside a naive triple loop measured in the
 * same run as the reference. `--json` ends the output with one JSON line holding every figure.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { forward } from '../src/engine/forward.ts';
import { randomModel, STORIES15M_SHAPE } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { loadModel } from '../src/formats/node.ts';
import { referenceKernels, type MatrixKernels } from '../src/kernels/reference.ts';

const asJson = process.argv.includes('--json');
const results: Record<string, unknown> = { node: process.version, date: new Date().toISOString() };

/** Best seconds per call of `fn` over `rounds` rounds of at least `minSeconds` each (best = least noise). */
function timePerCall(fn: () => void, minSeconds = 0.3, rounds = 3): number {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    let calls = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      fn();
      calls++;
      elapsed = (performance.now() - start) / 1000;
    } while (elapsed < minSeconds);
    best = Math.min(best, elapsed / calls);
  }
  return best;
}

/** The textbook triple loop: the reference the tuned kernels are compared with. */
const naiveKernels: Pick<MatrixKernels, 'matmulTransposedB'> = {
  matmulTransposedB(out, x, w, M, K, N) {
    for (let i = 0; i < M; i++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += x[i * K + k] * w[n * K + k];
        out[i * N + n] = sum;
      }
    }
  },
};

function filled(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let s = seed;
  for (let i = 0; i < length; i++) data[i] = ((s = (s * 48271) % 2147483647) / 2147483647) * 2 - 1;
  return data;
}

function benchMatmul(): void {
  const shapes: [number, number, number][] = [
    [1, 288, 768],
    [64, 288, 768],
    [64, 512, 2048],
  ];
  const rows: Record<string, number>[] = [];
  console.log('\nmatrix × matrixᵀ (x[M,K] · w[N,K]ᵀ), GFLOP/s');
  console.log('  shape                      naive loop      ts kernel   ratio');
  for (const [M, K, N] of shapes) {
    const x = filled(M * K, 1);
    const w = filled(N * K, 2);
    const out = new Float32Array(M * N);
    const flops = 2 * M * K * N;
    const naive = flops / timePerCall(() => naiveKernels.matmulTransposedB(out, x, w, M, K, N)) / 1e9;
    const ts = flops / timePerCall(() => referenceKernels.matmulTransposedB(out, x, w, M, K, N)) / 1e9;
    const label = `[${M}×${K}]·[${K}×${N}]`;
    console.log(
      `  ${label.padEnd(24)} ${naive.toFixed(2).padStart(12)} ${ts.toFixed(2).padStart(14)} ${(ts / naive).toFixed(2).padStart(7)}×`,
    );
    rows.push({ M, K, N, naiveGflops: naive, tsGflops: ts });
  }
  results.matmul = rows;
}

/** Decode: tokens/s of one-token steps at positions 1…steps (the cache grows as it would in generation). */
function decodeTokensPerSecond(model: Model, steps: number): number {
  const cache = new KVCache(model.config);
  const start = performance.now();
  for (let pos = 0; pos < steps; pos++)
    forward(model, [pos % model.config.vocabSize], cache, { logits: 'last' });
  return steps / ((performance.now() - start) / 1000);
}

function prefillTokensPerSecond(model: Model, promptLength: number): number {
  const tokens = Array.from({ length: promptLength }, (_, i) => (i * 7919) % model.config.vocabSize);
  const seconds = timePerCall(
    () => forward(model, tokens, new KVCache(model.config), { logits: 'last' }),
    0.5,
  );
  return promptLength / seconds;
}

function benchModel(name: string, model: Model): void {
  const decodeSteps = Math.min(128, model.config.seqLen);
  const promptLength = Math.min(64, model.config.seqLen);
  decodeTokensPerSecond(model, 8); // warm up the JIT
  let decode = 0;
  for (let round = 0; round < 3; round++)
    decode = Math.max(decode, decodeTokensPerSecond(model, decodeSteps));
  const prefill = prefillTokensPerSecond(model, promptLength);
  console.log(`\n${name}`);
  console.log(
    `  decode   ${decode.toFixed(1).padStart(9)} tokens/s  (${(1000 / decode).toFixed(3)} ms/token, ${decodeSteps} steps)`,
  );
  console.log(
    `  prefill  ${prefill.toFixed(1).padStart(9)} tokens/s  (${promptLength}-token prompt in one pass; ${(prefill / decode).toFixed(2)}× decode)`,
  );
  results[name] = {
    decodeTokensPerSecond: decode,
    prefillTokensPerSecond: prefill,
    decodeSteps,
    promptLength,
  };
}

async function main() {
  console.log(`Glassbox bench — Node ${process.version}, kernels: ${referenceKernels.name}`);
  const shared = resolve(
    import.meta.dirname,
    '..',
    '..',
    '..',
    'shared',
    'models',
    'stories260K',
    'stories260K.bin',
  );
  const stories260K = process.env.GLASSBOX_SHARED
    ? join(process.env.GLASSBOX_SHARED, 'models', 'stories260K', 'stories260K.bin')
    : shared;
  if (existsSync(stories260K)) {
    benchModel('stories260K', await loadModel(stories260K));
  } else {
    console.log(`\nstories260K: skipped (${stories260K} not found)`);
  }
  benchModel('stories15M-shape (random weights)', randomModel(STORIES15M_SHAPE, 15));
  benchMatmul();
  if (asJson) console.log(JSON.stringify(results));
}

await main();
