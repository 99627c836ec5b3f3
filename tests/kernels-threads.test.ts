/**
 * Products shared between the calling thread and a worker (src/kernels/threads.ts) give exactly what one
 * thread gives — every output is computed by the same kernel on the same packed data, whoever computes it
 * — on the engine's and the trainer's shapes and on awkward ones; a forward pass on two threads gives the
 * same logits; the pool starts, splits and shuts down cleanly; and a CLI run with two threads exits on
 * its own.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { LinearHeap } from '../src/kernels/heap.ts';
import type { MatrixKernels } from '../src/kernels/reference.ts';
import { describeKernels, selectKernels, wasmKernels } from '../src/kernels/select.ts';
import {
  DEFAULT_TUNING,
  sharedMemoryUnavailable,
  startThreadPool,
  type WorkerInit,
} from '../src/kernels/threads.ts';
import { instantiateKernels, wasmVariantSupported, type WasmVariant } from '../src/kernels/wasm.ts';
import { describeShared, STORIES260K, TOK512 } from './shared.ts';
import { seededRandom, smallConfig } from './helpers.ts';

// Node 20 has relaxed SIMD behind a flag (Node 22 turns it on).
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');

const unavailable = sharedMemoryUnavailable();
if (unavailable) console.warn(`[kernels-threads test] skipped: ${unavailable}`);
const describeThreads = unavailable ? describe.skip : describe;

const VARIANTS: WasmVariant[] = ['wasm-relaxed-simd', 'wasm-simd'];

function filled(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  const random = seededRandom(seed);
  for (let i = 0; i < length; i++) data[i] = random() * 2 - 1;
  return data;
}

type Product = 'matmulTransposedB' | 'matmul' | 'matmulTransposedA';

/** The two operands of an M×K×N product: M·K and K·N elements whichever the product (N·K for a weight). */
function operands(M: number, K: number, N: number): [Float32Array, Float32Array] {
  return [filled(M * K, M + K), filled(K * N, K + N)];
}

function run(
  kernels: MatrixKernels,
  product: Product,
  M: number,
  K: number,
  N: number,
  [a, b] = operands(M, K, N),
): Float32Array {
  const out = new Float32Array(M * N).fill(Number.NaN);
  kernels[product](out, a, b, M, K, N);
  return out;
}

/** Bit-identical arrays (a plain loop: toEqual is slow on a million elements). */
function expectIdentical(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  const bits = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const expectedBits = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const first = bits.findIndex((value, i) => value !== expectedBits[i]);
  if (first >= 0) throw new Error(`${what}: element ${first} is ${actual[first]}, not ${expected[first]}`);
}

/** Until `condition` holds, or throw after `seconds`. */
async function eventually(condition: () => boolean, what: string, seconds = 20): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeThreads('products on two threads', () => {
  afterAll(() => {
    for (const variant of VARIANTS) wasmKernels(variant, 2)?.close();
  });

  for (const variant of VARIANTS) {
    it(`${variant}: bit-identical to one thread on real and awkward shapes`, () => {
      const one = wasmKernels(variant, 1);
      const two = wasmKernels(variant, 2);
      if (!one || !two) return console.warn(`[kernels-threads test] ${variant} unsupported: skipped`);
      expect(two.threads).toBe(2);
      const shapes = [
        [1, 288, 32000], // decode, the classifier
        [64, 288, 768], // prefill
        [64, 768, 288],
        [256, 288, 768], // a training step's forward product…
        [256, 768, 288], // …and the shapes of its backward products
        [768, 256, 288],
        [2, 288, 32000], // batched decode: two rows (a pair past the blocks)…
        [8, 288, 768], // …and eight (a block of six and a pair)
        [8, 768, 288],
        [1, 4000, 257], // a single row; a short last panel
        [3, 334, 1001],
        [7, 333, 517],
        [13, 100, 1000],
        [255, 256, 255],
      ];
      // All large enough to be split…
      for (const [M, K, N] of shapes)
        expect(M * K * N).toBeGreaterThanOrEqual(DEFAULT_TUNING.minMultiplyAdds);
      // …and two that are not, which must be right all the same.
      shapes.push([1, 288, 768], [1, 1, 1]);
      const products: Product[] = ['matmulTransposedB', 'matmul', 'matmulTransposedA'];
      for (const [M, K, N] of shapes) {
        const inputs = operands(M, K, N);
        for (const product of products) {
          const what = `${product} ${M}×${K}×${N}`;
          expectIdentical(run(two, product, M, K, N, inputs), run(one, product, M, K, N, inputs), what);
        }
      }
    });
  }

  it("one attention group's fused forward and backward (training) are bit-identical on two threads", () => {
    const one = wasmKernels('wasm-simd', 1);
    const two = wasmKernels('wasm-simd', 2);
    if (!one || !two) return console.warn('[kernels-threads test] wasm-simd unsupported: skipped');
    // Two query heads per key/value head, 400 positions of 64: the causal blocks' products (48 × 64 × 400)
    // are large enough to split, the whole ones (dV, dK) too.
    const [heads, T, D] = [2, 400, 64];
    const rows = heads * T;
    const random = seededRandom(5);
    const normals = (length: number) => Float32Array.from({ length }, () => random() * 2 - 1);
    const [queries, keysTransposed, values, keys, valuesTransposed, dOutput] = [
      normals(rows * D),
      normals(D * T),
      normals(T * D),
      normals(T * D),
      normals(D * T),
      normals(rows * D),
    ];
    expect(48 * D * T).toBeGreaterThanOrEqual(DEFAULT_TUNING.minMultiplyAdds);
    const results = [one, two].map((kernels) => {
      const output = new Float32Array(rows * D);
      const probs = new Float32Array(rows * T);
      kernels.attentionGroupForward!(output, probs, queries, keysTransposed, values, rows, T, D);
      const [dQueries, dKeys, dValues] = [rows * D, T * D, T * D].map((n) => new Float32Array(n));
      const inputs = [dOutput, probs, queries, keys, valuesTransposed] as const;
      kernels.attentionGroupBackward!(dQueries, dKeys, dValues, ...inputs, rows, T, D);
      return { output, probs, dQueries, dKeys, dValues };
    });
    for (const name of ['output', 'probs', 'dQueries', 'dKeys', 'dValues'] as const) {
      expectIdentical(results[1][name], results[0][name], `attention group ${name}`);
    }
  });

  it('a forward pass gives the same logits on two threads as on one, prefill and decode', () => {
    const config = smallConfig({ dim: 96, hiddenDim: 256, vocabSize: 1000, seqLen: 64 });
    const model = randomModel(config, 7);
    const one = selectKernels('wasm', { threads: 1 });
    const two = selectKernels('wasm', { threads: 2 });
    expect(two.threads).toBe(2);
    // 48 tokens: the feed-forward products and the classifier are large enough to split.
    const tokens = Array.from({ length: 48 }, (_, i) => (i * 37) % config.vocabSize);
    const pass = (kernels: typeof one) => {
      const cache = new KVCache(config);
      const prefill = forward(model, tokens, cache, { kernels }).logits;
      const decode = [3, 1, 4].map((token) => forward(model, [token], cache, { kernels }).logits);
      return { prefill, decode };
    };
    expect(pass(two)).toEqual(pass(one));
  });

  it("'auto' means two threads here, and describeKernels says how many", () => {
    const kernels = selectKernels('auto', { threads: 'auto' });
    expect(kernels.threads).toBe(2);
    expect(kernels.name).toMatch(/^wasm-relaxed-simd, 2 threads$/);
    expect(describeKernels(kernels)).toMatch(/threads: 2; .*threads yes$/);
    expect(describeKernels(selectKernels('auto'))).toMatch(/threads: 1;/);
    expect(selectKernels('ts', { threads: 2 }).threads).toBe(1);
  });

  it('after close() the set computes on the calling thread alone, with the same results', () => {
    const kernels = wasmKernels('wasm-simd', 2)!;
    const before = run(kernels, 'matmulTransposedB', 64, 288, 768);
    kernels.close();
    expect(kernels.threads).toBe(1);
    expect(run(kernels, 'matmulTransposedB', 64, 288, 768)).toEqual(before);
  });
});

describeThreads('the thread pool', () => {
  it('starts its worker, shares products with it, and shuts down cleanly', async () => {
    const { wasm, memory, module } = instantiateKernels('wasm-simd', { shared: true });
    const heap = new LinearHeap(memory, wasm.heapBase());
    const pool = startThreadPool({ module, memory, heap, workers: 1, wasm });
    await eventually(() => pool.runningWorkers() === 1, 'the worker runs');

    const [M, K, N] = [64, 96, 2000];
    const a = heap.allocate(wasm.packedASize(M, K));
    const b = heap.allocate(wasm.packedBSize(K, N));
    const f32 = new Float32Array(memory.buffer);
    f32.set(filled(wasm.packedASize(M, K) / 4, 1), a / 4);
    f32.set(filled(wasm.packedBSize(K, N) / 4, 2), b / 4);
    const alone = heap.allocate(M * N * 4);
    const shared = heap.allocate(M * N * 4);
    wasm.gemm(alone, a, b, M, K, N);
    expect(pool.worthSplitting(M, K, N)).toBe(true);
    for (let i = 0; i < 20; i++) pool.gemm(shared, a, b, M, K, N);
    const view = new Float32Array(memory.buffer);
    expect(view.subarray(shared / 4, shared / 4 + M * N)).toEqual(
      view.subarray(alone / 4, alone / 4 + M * N),
    );

    pool.close();
    await eventually(() => pool.runningWorkers() === 0, 'the worker stops');
    expect(pool.worthSplitting(M, K, N)).toBe(false);
  });

  it('a worker that stops in the middle of a chunk does not hold a product up: the caller takes it over', async () => {
    const { wasm, memory, module } = instantiateKernels('wasm-simd', { shared: true });
    const heap = new LinearHeap(memory, wasm.heapBase());
    // A worker that, on every job, claims the first chunk it can and then never finishes it — as a thread
    // the operating system paused, or a browser suspended, would.
    const stall = (init: WorkerInit) => {
      const program = (init: WorkerInit) => {
        const { words, state } = init;
        const control = new Int32Array(init.memory.buffer, init.control, words.count);
        Atomics.add(control, words.running, 1);
        let job = Atomics.load(control, words.job);
        while (Atomics.load(control, words.stop) === 0) {
          Atomics.wait(control, words.job, job);
          job = Atomics.load(control, words.job);
          const ticket = Atomics.load(control, words.ticket);
          if (Atomics.compareExchange(control, words.ticket, ticket, ticket + 1) !== ticket) continue;
          const chunk = words.chunkStates + (ticket & ((1 << init.ticketBits) - 1));
          const free = (job << 2) | state.free;
          if (Atomics.compareExchange(control, chunk, free, (job << 2) | state.claimed) === free) {
            // Counted in the last word (the state of chunk 1023, unused by these 8-chunk products).
            Atomics.add(control, words.count - 1, 1);
          }
        }
        Atomics.sub(control, words.running, 1);
      };
      const source = `(${program.toString()})(require('node:worker_threads').workerData)`;
      const worker = new Worker(source, { eval: true, workerData: init });
      worker.unref();
      return worker;
    };
    let control: Int32Array | undefined;
    const spawn = (init: WorkerInit) => {
      control = new Int32Array(init.memory.buffer, init.control, init.words.count);
      return stall(init);
    };
    const pool = startThreadPool({ module, memory, heap, workers: 1, wasm, spawn });
    await pool.ready();

    // Large enough (8 chunks of ~100 µs) that the stalling worker wakes and claims one in time.
    const [M, K, N] = [64, 288, 768];
    const a = heap.allocate(wasm.packedASize(M, K));
    const b = heap.allocate(wasm.packedBSize(K, N));
    const f32 = new Float32Array(memory.buffer);
    f32.set(filled(wasm.packedASize(M, K) / 4, 3), a / 4);
    f32.set(filled(wasm.packedBSize(K, N) / 4, 4), b / 4);
    const alone = heap.allocate(M * N * 4);
    const shared = heap.allocate(M * N * 4);
    wasm.gemm(alone, a, b, M, K, N);
    for (let i = 0; i < 5; i++) {
      new Float32Array(memory.buffer).fill(Number.NaN, shared / 4, shared / 4 + M * N);
      pool.gemm(shared, a, b, M, K, N);
      // Let the stalling worker see the next job and claim its chunk.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const view = new Float32Array(memory.buffer);
      expectIdentical(
        view.subarray(shared / 4, shared / 4 + M * N),
        view.subarray(alone / 4, alone / 4 + M * N),
        `product ${i}`,
      );
    }
    expect(control![control!.length - 1], 'chunks the stalling worker claimed').toBeGreaterThan(0);
    pool.close();
    await eventually(() => pool.runningWorkers() === 0, 'the worker stops');
  });
});

describeShared('a CLI run on two threads', () => {
  it('prints the same story as one thread and exits on its own (workers never keep it alive)', async () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'glassbox.js');
    if (unavailable || !existsSync(join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js'))) {
      console.warn('dist/ is not built (npm run build) or threads are unavailable: skipping');
      return;
    }
    const generate = (threads: string) =>
      promisify(execFile)(
        process.execPath,
        [
          ...[bin, 'generate', '--model', STORIES260K, '--tokenizer', TOK512, '--threads', threads],
          ...['--temperature', '0', '--steps', '40', '--prompt', 'Once upon a time there was a little girl'],
        ],
        { timeout: 30_000 },
      );
    const [one, two] = [await generate('1'), await generate('2')];
    expect(two.stdout).toBe(one.stdout);
    expect(two.stderr).toMatch(/\(kernels: wasm-relaxed-simd, 2 threads\)/);
  });
});
