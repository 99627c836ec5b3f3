/**
 * The kernels checked against the readable reference inside Chromium (run in the page's worker), for
 * tests/kernels-browser.test.ts: the browser is where the app runs them, with its own WebAssembly engine
 * and Web Workers instead of Node's. The same tolerances as the Node suites (tests/kernels*.test.ts):
 * products within 1e-5 of Σ|a·b|, layer operations within 1e-5 of what they sum or rotate, two threads
 * bit-identical to one, and a whole forward pass within 1e-4 of the reference's logits.
 */
import { causalSelfAttention } from '../../../src/engine/attention.ts';
import { forward } from '../../../src/engine/forward.ts';
import { randomModel } from '../../../src/engine/init.ts';
import { KVCache } from '../../../src/engine/kv-cache.ts';
import type { ModelConfig, RopeLayout } from '../../../src/engine/model.ts';
import { applyRopeRows, rmsNormRows, swiglu } from '../../../src/engine/ops.ts';
import { referenceKernels, type MatrixKernels } from '../../../src/kernels/reference.ts';
import { describeKernels, selectKernels, tsKernels, wasmKernels } from '../../../src/kernels/select.ts';
import type { KernelSet, WasmVariant } from '../../../src/kernels/wasm.ts';
import { filled, type Product } from '../../bench-common.ts';

export interface CheckResult {
  userAgent: string;
  kernels: string;
  /** Every check that ran, and what failed (empty when all passed). */
  passed: string[];
  failed: string[];
}

/** The first element where |actual − expected| > 1e-5·scale + floor, described; or undefined. */
function mismatch(
  actual: Float32Array,
  expected: Float32Array,
  scale: ArrayLike<number>,
  floor = 0,
): string | undefined {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const allowed = 1e-5 * scale[i] + floor;
    if (!(Math.abs(actual[i] - expected[i]) <= allowed)) {
      return `element ${i} is ${actual[i]}, reference ${expected[i]} (allowed ±${allowed})`;
    }
  }
  return undefined;
}

function identical(actual: Float32Array, expected: Float32Array): string | undefined {
  return mismatch(actual, expected, new Float32Array(expected.length));
}

const PRODUCTS: Product[] = ['matmulTransposedB', 'matmul', 'matmulTransposedA'];

function product(
  kernels: MatrixKernels,
  name: Product,
  a: Float32Array,
  b: Float32Array,
  M: number,
  K: number,
  N: number,
) {
  const out = new Float32Array(M * N).fill(Number.NaN);
  kernels[name](out, a, b, M, K, N);
  return out;
}

export async function runChecks(log: (line: string) => void): Promise<CheckResult> {
  const passed: string[] = [];
  const failed: string[] = [];
  const check = (name: string, problem: string | undefined) => {
    (problem ? failed : passed).push(problem ? `${name}: ${problem}` : name);
    log(`${problem ? 'FAIL' : 'ok  '} ${name}${problem ? `: ${problem}` : ''}`);
  };
  const builds = (['wasm-relaxed-simd', 'wasm-simd'] as WasmVariant[]).flatMap((variant) => {
    const kernels = wasmKernels(variant);
    check(`${variant} runs in this browser`, kernels ? undefined : 'unsupported');
    return kernels ? [kernels] : [];
  });

  // Products against the reference, on awkward and real shapes.
  const shapes = [
    [1, 1, 1],
    [3, 17, 5],
    [7, 33, 17],
    [17, 255, 3],
    [1, 288, 768],
    [64, 288, 768],
    [255, 256, 255],
  ];
  for (const [M, K, N] of shapes) {
    for (const name of PRODUCTS) {
      const a = filled(M * K, M + 1);
      const b = filled(K * N, N + 2);
      const expected = product(referenceKernels, name, a, b, M, K, N);
      const scale = product(referenceKernels, name, a.map(Math.abs), b.map(Math.abs), M, K, N);
      for (const kernels of builds) {
        check(
          `${kernels.name} ${name} ${M}×${K}×${N}`,
          mismatch(product(kernels, name, a, b, M, K, N), expected, scale),
        );
      }
    }
  }

  for (const kernels of builds) checkLayerOperations(kernels, check);

  // Two threads: Web Workers sharing the memory, bit-identical to one thread.
  const two = selectKernels('wasm', { threads: 2 });
  await two.ready();
  check(
    'two threads run here (cross-origin isolated, nested workers)',
    two.threads === 2 ? undefined : describeKernels(two),
  );
  const one = selectKernels('wasm', { threads: 1 });
  for (const [M, K, N] of [
    [1, 288, 32000],
    [64, 288, 768],
    [256, 768, 288],
    [13, 100, 1000],
  ]) {
    const a = filled(M * K, 3);
    const b = filled(K * N, 4);
    for (const name of PRODUCTS) {
      check(
        `${two.name} ${name} ${M}×${K}×${N} = one thread`,
        identical(product(two, name, a, b, M, K, N), product(one, name, a, b, M, K, N)),
      );
    }
  }

  checkForward(one, two, check);
  two.close();
  return { userAgent: navigator.userAgent, kernels: describeKernels(one), passed, failed };
}

type Check = (name: string, problem: string | undefined) => void;

function checkLayerOperations(kernels: KernelSet, check: Check): void {
  for (const dim of [1, 3, 17, 255, 288]) {
    const rows = 3;
    const x = filled(rows * dim, dim);
    const gain = filled(dim, dim + 1);
    const expected = new Float32Array(rows * dim);
    rmsNormRows(expected, x, gain, rows, dim, 1e-5);
    const out = new Float32Array(rows * dim);
    kernels.rmsNormRows(out, x, gain, rows, dim, 1e-5);
    check(`${kernels.name} rmsNormRows ${rows}×${dim}`, mismatch(out, expected, expected.map(Math.abs)));

    const gate = filled(dim, dim + 2).map((g) => g * 12);
    const up = filled(dim, dim + 3);
    swiglu(expected.subarray(0, dim), gate, up);
    kernels.swiglu(out.subarray(0, dim), gate, up);
    const swigluExpected = expected.subarray(0, dim);
    check(
      `${kernels.name} swiglu ${dim}`,
      mismatch(out.subarray(0, dim), swigluExpected, swigluExpected.map(Math.abs), 1e-30),
    );
  }

  for (const layout of ['interleaved', 'half'] as RopeLayout[]) {
    for (const headDim of [2, 6, 18, 48, 64]) {
      const [nHeads, rows, startPos] = [3, 5, 300];
      const input = filled(rows * nHeads * headDim, headDim);
      const expected = input.slice();
      applyRopeRows(expected, startPos, rows, nHeads, headDim, layout, 10000);
      const out = input.slice();
      kernels.applyRopeRows(out, startPos, rows, nHeads, headDim, layout, 10000);
      // Every rotated value combines two inputs of magnitude < 1.
      check(
        `${kernels.name} rope ${layout} hd ${headDim}`,
        mismatch(out, expected, new Float32Array(out.length).fill(2)),
      );
    }
  }

  for (const [nHeads, nKvHeads, headDim, startPos, T] of [
    [1, 1, 1, 0, 1],
    [3, 1, 3, 4, 5],
    [4, 2, 17, 0, 17],
    [6, 6, 48, 250, 1],
    [8, 4, 8, 60, 7],
  ]) {
    const shape = { nHeads, nKvHeads, headDim };
    const S = startPos + T;
    const queries = filled(T * nHeads * headDim, 5);
    const keys = filled((S + 2) * nKvHeads * headDim, 6);
    const values = filled((S + 2) * nKvHeads * headDim, 7);
    const run = (attention: typeof causalSelfAttention) => {
      const out = new Float32Array(T * nHeads * headDim);
      const record = { scores: new Float32Array(nHeads * T * S), weights: new Float32Array(nHeads * T * S) };
      attention(out, queries, keys, values, startPos, T, shape, record);
      return { out, record };
    };
    const expected = run(causalSelfAttention);
    const actual = run(kernels.causalSelfAttention);
    // Outputs are averages of values in [−1, 1); weights are probabilities.
    const what = `${kernels.name} attention ${nHeads}/${nKvHeads}×${headDim} at ${startPos}+${T}`;
    check(what, mismatch(actual.out, expected.out, new Float32Array(expected.out.length).fill(1)));
    check(
      `${what} weights`,
      mismatch(
        actual.record.weights,
        expected.record.weights,
        new Float32Array(expected.record.weights.length).fill(headDim),
      ),
    );
  }
}

/** A whole forward pass of a small random model: WebAssembly near the reference, two threads equal to one. */
function checkForward(one: KernelSet, two: KernelSet, check: Check): void {
  const config: ModelConfig = {
    dim: 96,
    hiddenDim: 256,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: 1000,
    seqLen: 64,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeLayout: 'half',
    sharedClassifier: false,
  };
  const model = randomModel(config, 3, 0.1);
  // 48 tokens: the feed-forward products and the classifier are large enough to split.
  const tokens = Array.from({ length: 48 }, (_, i) => (i * 37) % config.vocabSize);
  const pass = (kernels: KernelSet) => {
    const cache = new KVCache(config);
    const prefill = forward(model, tokens, cache, { kernels }).logits;
    const decode = forward(model, [5], cache, { kernels }).logits;
    return Float32Array.from([...prefill, ...decode]);
  };
  const reference = pass(tsKernels);
  const fast = pass(one);
  check(
    `${one.name} forward pass within 1e-4 of the reference`,
    mismatch(fast, reference, new Float32Array(fast.length), 1e-4),
  );
  check(`${two.name} forward pass = one thread`, identical(pass(two), fast));
}
