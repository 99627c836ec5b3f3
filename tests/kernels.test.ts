/**
 * The fast matrix kernels agree with the readable reference (src/kernels/reference.ts) on every product,
 * every build this runtime can run, and awkward shapes; and the selector picks and names them honestly.
 *
 * Agreement is magnitude-aware: the WebAssembly kernels sum in float32 SIMD lanes in their own order, the
 * reference in float64, so each output may differ by a few float32 roundings of the terms it sums:
 * |fast − reference| ≤ 1e-5 · Σ_k |a_ik · b_kj| per element.
 */
import { setFlagsFromString } from 'node:v8';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { referenceKernels, type MatrixKernels } from '../src/kernels/reference.ts';
import {
  describeKernels,
  invalidateAllKernels,
  selectKernels,
  tsKernels,
  wasmKernels,
} from '../src/kernels/select.ts';
import { tiledMatmulTransposedB } from '../src/kernels/tiled.ts';
import { wasmBinary, wasmVariantSupported, type KernelSet, type WasmVariant } from '../src/kernels/wasm.ts';
import { randomArray, seededRandom } from './helpers.ts';

// Node 20 has relaxed SIMD behind a flag (Node 22 turns it on): turn it on so its build is tested too.
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');

const WASM_VARIANTS: WasmVariant[] = ['wasm-relaxed-simd', 'wasm-simd'];
const available = WASM_VARIANTS.flatMap((variant) => {
  const kernels = wasmKernels(variant);
  if (!kernels) console.warn(`[kernels test] ${variant} is not supported by this runtime: not tested`);
  return kernels ? [kernels] : [];
});
/** Every kernel set under test: the available WebAssembly builds, and the reference as `selectKernels('ts')`. */
const kernelSets: KernelSet[] = [...available, selectKernels('ts')];

type Product = 'matmulTransposedB' | 'matmul' | 'matmulTransposedA';
const PRODUCTS: Product[] = ['matmulTransposedB', 'matmul', 'matmulTransposedA'];

/** Input lengths of a product of shape M, K, N: [first operand, second operand]. */
function inputLengths(product: Product, M: number, K: number, N: number): [number, number] {
  return product === 'matmulTransposedB'
    ? [M * K, N * K]
    : product === 'matmul'
      ? [M * K, K * N]
      : [K * M, K * N];
}

function run(
  kernels: MatrixKernels,
  product: Product,
  a: Float32Array,
  b: Float32Array,
  M: number,
  K: number,
  N: number,
) {
  const out = new Float32Array(M * N).fill(Number.NaN); // out is written, never accumulated into
  kernels[product](out, a, b, M, K, N);
  return out;
}

/** Σ_k |a_ik · b_kj| for every output: the scale of each sum's rounding error. */
function magnitudes(product: Product, a: Float32Array, b: Float32Array, M: number, K: number, N: number) {
  return run(referenceKernels, product, a.map(Math.abs), b.map(Math.abs), M, K, N);
}

function expectClose(actual: Float32Array, expected: Float32Array, scale: Float32Array, what: string): void {
  expect(actual.length, what).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    if (!(error <= 1e-5 * scale[i])) {
      throw new Error(
        `${what}: element ${i} is ${actual[i]}, reference ${expected[i]} (allowed ±${1e-5 * scale[i]})`,
      );
    }
  }
}

/** Checks every product on every kernel set for one shape. */
function checkShape(M: number, K: number, N: number, seed: number): void {
  const random = seededRandom(seed);
  for (const product of PRODUCTS) {
    const [aLength, bLength] = inputLengths(product, M, K, N);
    const a = randomArray(aLength, random);
    const b = randomArray(bLength, random);
    const expected = run(referenceKernels, product, a, b, M, K, N);
    const scale = magnitudes(product, a, b, M, K, N);
    for (const kernels of kernelSets) {
      expectClose(
        run(kernels, product, a, b, M, K, N),
        expected,
        scale,
        `${kernels.name} ${product} ${M}×${K}×${N}`,
      );
    }
  }
}

describe('matrix kernels agree with the reference', () => {
  it('runs the plain SIMD build here (and relaxed SIMD, which Node 20 has behind a flag)', () => {
    expect(available.map((kernels) => kernels.variant)).toEqual(['wasm-relaxed-simd', 'wasm-simd']);
  });

  it('on every combination of small awkward sizes', () => {
    const sizes = [1, 2, 3, 4, 5, 7, 8, 16, 17, 33];
    let seed = 1;
    for (const M of sizes) for (const K of sizes) for (const N of sizes) checkShape(M, K, N, seed++);
  });

  it('on a seeded sample of shapes up to 256', () => {
    const sizes = [1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 255, 256];
    const random = seededRandom(2024);
    const pick = () => sizes[Math.floor(random() * sizes.length)];
    for (let i = 0; i < 30; i++) checkShape(pick(), pick(), pick(), 1000 + i);
    checkShape(255, 256, 255, 77);
  });

  it('on the real shapes: decode, prefill and a training step', () => {
    checkShape(1, 288, 768, 11); // decode: x[1,288] · w[768,288]ᵀ
    checkShape(64, 288, 768, 12); // prefill
    checkShape(64, 512, 2048, 13); // prefill, larger model
    // Training [256×288]·[288×768]: the forward product and both backward products at their real shapes.
    const random = seededRandom(14);
    const x = randomArray(256 * 288, random);
    const w = randomArray(768 * 288, random);
    const dy = randomArray(256 * 768, random);
    const cases: [Product, Float32Array, Float32Array, number, number, number][] = [
      ['matmulTransposedB', x, w, 256, 288, 768], // y = x · wᵀ
      ['matmul', dy, w, 256, 768, 288], // dx = dy · w
      ['matmulTransposedA', dy, x, 768, 256, 288], // dw = dyᵀ · x
    ];
    for (const [product, a, b, M, K, N] of cases) {
      const expected = run(referenceKernels, product, a, b, M, K, N);
      const scale = magnitudes(product, a, b, M, K, N);
      for (const kernels of kernelSets) {
        expectClose(
          run(kernels, product, a, b, M, K, N),
          expected,
          scale,
          `${kernels.name} ${product} (training)`,
        );
      }
    }
  });

  it('on zero sizes: nothing to compute, or (K = 0) all zeros', () => {
    for (const kernels of kernelSets) {
      for (const product of PRODUCTS) {
        for (const [M, K, N] of [
          [0, 5, 3],
          [3, 5, 0],
          [0, 0, 0],
        ]) {
          const [aLength, bLength] = inputLengths(product, M, K, N);
          expect(
            run(kernels, product, new Float32Array(aLength), new Float32Array(bLength), M, K, N),
          ).toEqual(new Float32Array(0));
        }
        expect(run(kernels, product, new Float32Array(0), new Float32Array(0), 3, 0, 5)).toEqual(
          new Float32Array(15),
        );
      }
    }
  });

  it('on views with a nonzero byteOffset into longer buffers, leaving the rest of out alone', () => {
    const random = seededRandom(5);
    const [M, K, N] = [7, 33, 17];
    for (const product of PRODUCTS) {
      const [aLength, bLength] = inputLengths(product, M, K, N);
      const aBuffer = randomArray(aLength + 13, random);
      const bBuffer = randomArray(bLength + 9, random);
      const a = aBuffer.subarray(3, 3 + aLength + 5); // longer than needed: only the first aLength count
      const b = new Float32Array(bBuffer.buffer, 4 * 7, bLength);
      const expected = run(referenceKernels, product, a, b, M, K, N);
      const scale = magnitudes(product, a.subarray(0, aLength), b, M, K, N);
      for (const kernels of kernelSets) {
        const outBuffer = new Float32Array(M * N + 8).fill(42);
        const out = outBuffer.subarray(3, 3 + M * N + 2);
        kernels[product](out, a, b, M, K, N);
        expectClose(out.subarray(0, M * N), expected, scale, `${kernels.name} ${product} on views`);
        expect([...outBuffer.subarray(0, 3), ...outBuffer.subarray(3 + M * N)]).toEqual(Array(8).fill(42));
      }
    }
  });

  it('rejects inputs shorter than their shape', () => {
    for (const kernels of available) {
      expect(() =>
        kernels.matmulTransposedB(new Float32Array(6), new Float32Array(5), new Float32Array(9), 2, 3, 3),
      ).toThrow(/x has 5 elements, the shape needs 6/);
    }
  });
});

describe('the tiled TypeScript product (tiled.ts) is the plain loop of reference.ts, sooner', () => {
  /** The float32 bit patterns, so that −0 and +0 (or two NaNs) count as different. */
  const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer));

  function expectSameBits(M: number, K: number, N: number, seed: number): void {
    const random = seededRandom(seed);
    const x = randomArray(M * K, random);
    const w = randomArray(N * K, random);
    const plain = run(referenceKernels, 'matmulTransposedB', x, w, M, K, N);
    const tiled = new Float32Array(M * N).fill(Number.NaN);
    tiledMatmulTransposedB(tiled, x, w, M, K, N);
    expect(bits(tiled), `${M}×${K}×${N}`).toEqual(bits(plain));
  }

  it('gives bit-identical outputs on every tile remainder (M, N around multiples of 4 and 2) and K', () => {
    let seed = 1;
    for (let M = 1; M <= 9; M++)
      for (let N = 1; N <= 9; N++) for (const K of [1, 3, 17, 64]) expectSameBits(M, K, N, seed++);
  });

  it('gives bit-identical outputs on the real shapes: decode and prefill', () => {
    expectSameBits(1, 288, 768, 5);
    expectSameBits(13, 128, 384, 6);
  });
});

describe('packed weights (the w of matmulTransposedB is packed once and remembered)', () => {
  const [M, K, N] = [5, 40, 24];

  function forward(kernels: MatrixKernels, x: Float32Array, w: Float32Array) {
    return run(kernels, 'matmulTransposedB', x, w, M, K, N);
  }
  function expectForward(kernels: KernelSet, x: Float32Array, w: Float32Array, what: string) {
    expectClose(
      forward(kernels, x, w),
      forward(referenceKernels, x, w),
      magnitudes('matmulTransposedB', x, w, M, K, N),
      what,
    );
  }

  it('sees a changed weight after invalidate(w), and only then for a change the guard cannot see', () => {
    for (const kernels of available) {
      const random = seededRandom(9);
      const x = randomArray(M * K, random);
      const w = randomArray(N * K, random);
      const before = forward(kernels, x, w);
      // One value that the 16-value sample does not include: the packed copy is stale until invalidated.
      w[1] += 10;
      expect(forward(kernels, x, w)).toEqual(before);
      kernels.invalidate(w);
      expectForward(kernels, x, w, `${kernels.name} after invalidate`);
      // invalidateAll forgets every weight.
      w[2] -= 10;
      kernels.invalidateAll();
      expectForward(kernels, x, w, `${kernels.name} after invalidateAll`);
    }
  });

  it('repacks a weight whose sampled values all changed (an optimizer step) even without invalidate', () => {
    for (const kernels of available) {
      const random = seededRandom(10);
      const x = randomArray(M * K, random);
      const w = randomArray(N * K, random);
      expectForward(kernels, x, w, `${kernels.name} first use`);
      for (let i = 0; i < w.length; i++) w[i] = w[i] * 0.9 + 0.01;
      expectForward(kernels, x, w, `${kernels.name} after an update of every value`);
    }
  });

  it('repacks the same array used with another shape', () => {
    for (const kernels of available) {
      const random = seededRandom(11);
      const w = randomArray(N * K, random);
      const x1 = randomArray(M * K, random);
      expectForward(kernels, x1, w, `${kernels.name} as [${N},${K}]`);
      // The same 960 floats as a [40, 24] weight.
      const x2 = randomArray(M * N, random);
      const expected = run(referenceKernels, 'matmulTransposedB', x2, w, M, N, K);
      const scale = magnitudes('matmulTransposedB', x2, w, M, N, K);
      expectClose(
        run(kernels, 'matmulTransposedB', x2, w, M, N, K),
        expected,
        scale,
        `${kernels.name} reshaped`,
      );
    }
  });

  it('keeps every packed weight correct while memory grows (views are re-created after growth)', () => {
    for (const kernels of available) {
      const random = seededRandom(12);
      const x = randomArray(M * K, random);
      const small = randomArray(N * K, random);
      const expected = forward(kernels, x, small);
      // A 16 MiB weight: more than the memory holds at first, so it grows (and the old buffer detaches).
      const [bigN, bigK] = [2048, 2048];
      const big = randomArray(bigN * bigK, random);
      const xBig = randomArray(bigK, random);
      const before = kernels.packedWeightBytes();
      const outBig = run(kernels, 'matmulTransposedB', xBig, big, 1, bigK, bigN);
      expect(kernels.packedWeightBytes()).toBeGreaterThanOrEqual(before + bigN * bigK * 4);
      expectClose(
        outBig,
        run(referenceKernels, 'matmulTransposedB', xBig, big, 1, bigK, bigN),
        magnitudes('matmulTransposedB', xBig, big, 1, bigK, bigN),
        `${kernels.name} big weight`,
      );
      expect(forward(kernels, x, small)).toEqual(expected);
      kernels.invalidate(big);
      expect(kernels.packedWeightBytes()).toBeLessThan(before + bigN * bigK * 4);
    }
  });
});

describe('selectKernels', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    vi.resetModules();
  });

  it("'ts' returns the reference (its product tiled: the same sums, tested above)", () => {
    const kernels = selectKernels('ts');
    expect(kernels).toBe(tsKernels);
    expect(kernels.name).toBe('ts');
    expect(kernels.matmulTransposedB).toBe(tiledMatmulTransposedB);
    expect(kernels.matmul).toBe(referenceKernels.matmul);
    expect(kernels.matmulTransposedA).toBe(referenceKernels.matmulTransposedA);
  });

  it('invalidateAllKernels: every set created so far forgets its packed weights', () => {
    const random = seededRandom(13);
    const weight = randomArray(64 * 32, random);
    const x = randomArray(2 * 32, random);
    // The one-thread sets and a two-thread one (chapter 10's lens runs on one beside the page's own set).
    const twoThreads = available.flatMap((one) => wasmKernels(one.variant, 2) ?? []);
    const sets = [...available, ...twoThreads];
    for (const kernels of sets) {
      run(kernels, 'matmulTransposedB', x, weight, 2, 32, 64);
      expect(kernels.packedWeightBytes(), kernels.name).toBeGreaterThan(0);
    }
    invalidateAllKernels();
    for (const kernels of sets)
      expect(kernels.packedWeightBytes(), `${kernels.name} ×${kernels.threads}`).toBe(0);
    for (const kernels of twoThreads) kernels.close();
  });

  it("'auto' and 'wasm' pick the fastest WebAssembly build available, and say so", () => {
    const best = available[0];
    expect(selectKernels('auto')).toBe(best);
    expect(selectKernels('wasm')).toBe(best);
    expect(selectKernels('auto').name).toBe(best.variant);
    expect(selectKernels('wasm-simd').name).toBe('wasm-simd');
    expect(describeKernels()).toContain(`matrix kernels: ${best.variant} — WebAssembly 128-bit SIMD`);
    expect(describeKernels(selectKernels('ts'))).toContain(
      'matrix kernels: ts — the readable TypeScript reference',
    );
  });

  /** A fresh copy of the selector in a runtime whose WebAssembly.validate accepts only `accepted` builds. */
  async function selectorWhereOnly(accepted: WasmVariant[]) {
    const acceptedBytes = accepted.map((variant) => wasmBinary(variant).join());
    vi.spyOn(WebAssembly, 'validate').mockImplementation((bytes) =>
      acceptedBytes.includes(new Uint8Array(bytes as ArrayBuffer).join()),
    );
    vi.resetModules();
    return import('../src/kernels/select.ts');
  }

  it('falls back from relaxed SIMD to plain SIMD with a name that says why', async () => {
    const fresh = await selectorWhereOnly(['wasm-simd']);
    expect(fresh.selectKernels('auto').name).toBe('wasm-simd');
    const kernels = fresh.selectKernels('wasm-relaxed-simd');
    expect(kernels.name).toBe('wasm-simd (wasm-relaxed-simd unavailable)');
    expect(kernels.variant).toBe('wasm-simd');
    expect(fresh.describeKernels()).toContain('relaxed SIMD no, SIMD yes');
    checkFallbackComputes(kernels);
  });

  it('falls back to the reference when WebAssembly SIMD is absent', async () => {
    const fresh = await selectorWhereOnly([]);
    expect(fresh.selectKernels('auto').name).toBe('ts');
    expect(fresh.selectKernels('wasm').name).toBe('ts (WebAssembly SIMD unavailable)');
    expect(fresh.selectKernels('wasm-relaxed-simd').name).toBe('ts (wasm-relaxed-simd unavailable)');
    expect(fresh.selectKernels('wasm-simd').name).toBe('ts (wasm-simd unavailable)');
    expect(fresh.selectKernels('wasm').variant).toBe('ts');
    expect(fresh.describeKernels()).toContain('relaxed SIMD no, SIMD no');
  });

  function checkFallbackComputes(kernels: KernelSet) {
    const random = seededRandom(3);
    const x = randomArray(3 * 4, random);
    const w = randomArray(5 * 4, random);
    expectClose(
      run(kernels, 'matmulTransposedB', x, w, 3, 4, 5),
      run(referenceKernels, 'matmulTransposedB', x, w, 3, 4, 5),
      magnitudes('matmulTransposedB', x, w, 3, 4, 5),
      kernels.name,
    );
  }
});
