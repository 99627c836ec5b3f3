/**
 * The WebAssembly SIMD kernels: the same products as `reference.ts` and the same layer operations as
 * `layer-reference.ts`, computed by `src/kernels/matmul.as` and `src/kernels/layer.as` (AssemblyScript,
 * compiled into `wasm-binaries.ts`) on plain Float32Arrays.
 *
 * WebAssembly can only read its own linear memory, so each call copies its inputs in and its output out.
 * What makes that cheap:
 * - A weight matrix (the `w` of `matmulTransposedB`, the product every forward pass spends its time in) is
 *   copied and packed into the kernel's layout once, on first use, and remembered by the identity of its
 *   Float32Array. Weights are therefore treated as immutable: after changing one in place (an optimizer
 *   step, an edited value) call `invalidate(w)` — or `invalidateAll()` — and the next call repacks it. As a
 *   guard, not a guarantee, every call also compares 16 sampled values with those seen at packing time and
 *   repacks on a difference, which catches whole-matrix updates such as an optimizer step but not the
 *   change of a few values.
 * - The activations (x, and both inputs of the backward products) are copied in with one
 *   `TypedArray.set` each, which is a memcpy, and packed inside WebAssembly; the output is copied out with
 *   one `set`. `scripts/bench-kernels.ts` measures what this costs against `gemm` alone: 1–5% of a
 *   forward product, 8–10% of a backward one, whose second operand is copied and packed on every call.
 * - The layer operations copy their few rows in and out the same way; attention copies the visible rows of
 *   the layer's KV cache (what it reads anyway) and RoPE reads its cos/sin from a table kept per head size.
 *
 * With `threads` > 1 the memory is shared with worker threads (threads.ts), which take parts of the large
 * products; everything else runs on the calling thread.
 *
 * The memory grows on demand. Growing detaches every view of an unshared buffer, so views are only ever
 * taken through `heap.f32` after all of a call's allocations.
 */
import type { AttentionRecord, AttentionShape } from '../engine/attention.ts';
import type { RopeLayout } from '../engine/model.ts';
import { ropeFrequency } from '../engine/ops.ts';
import { LinearHeap } from './heap.ts';
import type { LayerKernels } from './layer-reference.ts';
import type { MatrixKernels } from './reference.ts';
import { sharedMemoryUnavailable, startThreadPool, type ThreadPool } from './threads.ts';
import { relaxedSimdBase64, relaxedSimdSharedBase64, simdBase64, simdSharedBase64 } from './wasm-binaries.ts';

/** The kernel implementations there are: the readable reference and the two WebAssembly builds. */
export type KernelVariant = 'ts' | 'wasm-simd' | 'wasm-relaxed-simd';
export type WasmVariant = Exclude<KernelVariant, 'ts'>;

/** A set of kernels, as `selectKernels` returns it. */
export interface KernelSet extends MatrixKernels, LayerKernels {
  /** Which implementation computes the products and the layer operations. */
  readonly variant: KernelVariant;
  /** Threads that share a large product: 1, or the calling thread plus workers. */
  readonly threads: number;
  /** Forget the packed copy of a weight whose values changed, so the next product reads them anew. */
  invalidate(weight: Float32Array): void;
  /** Forget every packed weight (for example after each optimizer step). */
  invalidateAll(): void;
  /** Resolves once the worker threads, if any, run (see ThreadPool.ready). */
  ready(): Promise<void>;
  /** Stops the worker threads, if any; the set then computes everything on the calling thread. */
  close(): void;
}

/** The WebAssembly kernel set, which can also say how much memory its packed weights hold. */
export interface WasmKernelSet extends KernelSet {
  readonly variant: WasmVariant;
  /** Bytes of WebAssembly memory in use by packed weights. */
  packedWeightBytes(): number;
}

/** The exports of the module; pointers and sizes in bytes, shapes in elements. */
export interface KernelExports {
  heapBase(): number;
  edgeTileSize(): number;
  useEdgeTile(at: number): void;
  blockedRows(M: number): number;
  packedASize(M: number, K: number): number;
  packedBSize(K: number, N: number): number;
  panelCount(N: number): number;
  gemm(out: number, a: number, b: number, M: number, K: number, N: number): void;
  gemmPart(
    out: number,
    outRowBytes: number,
    a: number,
    b: number,
    M: number,
    K: number,
    N: number,
    panelStart: number,
    panelEnd: number,
  ): void;
  copyRows(
    dst: number,
    dstRowBytes: number,
    src: number,
    srcRowBytes: number,
    rows: number,
    rowBytes: number,
  ): void;
  packA(dst: number, src: number, M: number, K: number, rowStride: number, colStride: number): void;
  packRows(dst: number, src: number, K: number, N: number): void;
  packTransposed(dst: number, src: number, N: number, K: number): void;
  ceiling(iterations: number, seed: number): number;
  rmsNormRows(out: number, x: number, gain: number, rows: number, dim: number, eps: number): void;
  swiglu(out: number, gate: number, up: number, length: number): void;
  softmaxSumsRows(maxOut: number, sumOut: number, logits: number, rows: number, width: number): void;
  ropeRows(vec: number, table: number, rows: number, nHeads: number, headDim: number, halves: boolean): void;
  causalSelfAttention(
    out: number,
    queries: number,
    keys: number,
    values: number,
    scores: number,
    startPos: number,
    T: number,
    nHeads: number,
    nKvHeads: number,
    headDim: number,
    recordScores: number,
    recordWeights: number,
  ): void;
}

const BASE64: Record<WasmVariant, { private: string; shared: string }> = {
  'wasm-simd': { private: simdBase64, shared: simdSharedBase64 },
  'wasm-relaxed-simd': { private: relaxedSimdBase64, shared: relaxedSimdSharedBase64 },
};

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The module bytes of a variant: for a private memory (one thread), or for a shared one. */
export function wasmBinary(variant: WasmVariant, shared = false): Uint8Array<ArrayBuffer> {
  return decodeBase64(shared ? BASE64[variant].shared : BASE64[variant].private);
}

const support = new Map<WasmVariant, boolean>();

/**
 * Whether this runtime can run a variant: `WebAssembly.validate` on the very module that would be loaded
 * (9 KB), so the answer covers every instruction it uses — SIMD, and for 'wasm-relaxed-simd' the relaxed
 * multiply-add, which Chromium ships but Node 20 only behind --experimental-wasm-relaxed-simd.
 */
export function wasmVariantSupported(variant: WasmVariant): boolean {
  let supported = support.get(variant);
  if (supported === undefined) {
    try {
      supported = typeof WebAssembly === 'object' && WebAssembly.validate(wasmBinary(variant));
    } catch {
      supported = false;
    }
    // Only a positive answer is final: a runtime flag may still enable relaxed SIMD later in Node.
    if (supported) support.set(variant, true);
  }
  return supported;
}

/** Pages of a new memory (2 MiB): enough for a small model's activations before any growth. */
const INITIAL_PAGES = 32;
/**
 * The most a shared memory may grow to, in 64 KiB pages (2 GiB: a 110M-parameter model and its packed
 * weights). A shared memory must declare its maximum up front, and the runtime reserves that much address
 * space; a private one grows to 4 GiB.
 */
const SHARED_MAXIMUM_PAGES = 32768;

/**
 * A new instance of the kernels with a memory of `initialPages` × 64 KiB, compiled synchronously (the
 * module is 9 KB, well under what browsers allow on the main thread). The benchmark uses this to time
 * `gemm` alone; `shared` gives a shared memory and the build for it, which worker threads can run too.
 */
export function instantiateKernels(
  variant: WasmVariant,
  { initialPages = INITIAL_PAGES, shared = false } = {},
): { wasm: KernelExports; memory: WebAssembly.Memory; module: WebAssembly.Module } {
  const memory = new WebAssembly.Memory(
    shared ? { initial: initialPages, maximum: SHARED_MAXIMUM_PAGES, shared } : { initial: initialPages },
  );
  const module = new WebAssembly.Module(wasmBinary(variant, shared));
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return { wasm: instance.exports as unknown as KernelExports, memory, module };
}

/** A weight matrix packed into WebAssembly memory, and what it was packed from. */
interface PackedWeight {
  start: number;
  rows: number;
  columns: number;
  /** Values sampled at packing time, to notice a weight changed without `invalidate`. */
  sample: Float32Array;
}

const SAMPLES = 16;

function sampleIndex(length: number, i: number): number {
  return Math.floor((i * (length - 1)) / (SAMPLES - 1));
}

function takeSample(weight: Float32Array, count: number): Float32Array {
  const sample = new Float32Array(SAMPLES);
  if (count > 0) for (let i = 0; i < SAMPLES; i++) sample[i] = weight[sampleIndex(count, i)];
  return sample;
}

function sampleMatches(weight: Float32Array, count: number, sample: Float32Array): boolean {
  if (count === 0) return true;
  for (let i = 0; i < SAMPLES; i++) {
    const now = weight[sampleIndex(count, i)];
    const then = sample[i];
    if (now !== then && !(now !== now && then !== then)) return false; // NaN equals NaN here
  }
  return true;
}

function checkLength(operation: string, name: string, array: Float32Array, needed: number): void {
  if (array.length < needed) {
    throw new RangeError(`${operation}: ${name} has ${array.length} elements, the shape needs ${needed}`);
  }
}

const ALIGN = 64;
const aligned = (bytes: number) => Math.ceil(bytes / ALIGN) * ALIGN;

/**
 * Fills a RoPE table for `ropeRows` in layer.as: for each position, a row of cos and a row of signed sin
 * with one value per element of a head, from the reference's own angles (ropeFrequency, in float64).
 */
function fillRopeTable(
  table: Float32Array,
  positions: number,
  headDim: number,
  layout: RopeLayout,
  theta: number,
): void {
  const half = headDim / 2;
  const frequencies = Array.from({ length: half }, (_, pair) => ropeFrequency(pair, headDim, theta));
  for (let pos = 0; pos < positions; pos++) {
    const cosRow = pos * 2 * headDim;
    const sinRow = cosRow + headDim;
    for (let pair = 0; pair < half; pair++) {
      const angle = pos * frequencies[pair];
      const first = layout === 'interleaved' ? 2 * pair : pair;
      const second = layout === 'interleaved' ? 2 * pair + 1 : pair + half;
      table[cosRow + first] = table[cosRow + second] = Math.cos(angle);
      table[sinRow + first] = -Math.sin(angle);
      table[sinRow + second] = Math.sin(angle);
    }
  }
}

/**
 * Creates a WebAssembly kernel set, computing large products on `threads` threads when this runtime can
 * share memory with workers (else on one: `threads` on the set says which). Throws if the runtime cannot
 * compile the variant.
 */
export function createWasmKernels(variant: WasmVariant, threads = 1): WasmKernelSet {
  const shared = threads > 1 && sharedMemoryUnavailable() === undefined;
  const { wasm, memory, module } = instantiateKernels(variant, { shared });
  const heap = new LinearHeap(memory, wasm.heapBase());
  let pool: ThreadPool | undefined = shared
    ? startThreadPool({ module, memory, heap, workers: threads - 1, wasm })
    : undefined;

  let packedWeights = new WeakMap<Float32Array, PackedWeight>();
  /** Every packed weight, so that `invalidateAll` can free them (a WeakMap cannot be listed). */
  const packedSet = new Set<PackedWeight>();
  /** Frees a packed weight's memory once its Float32Array is garbage-collected. */
  const collected = new FinalizationRegistry<PackedWeight>(release);

  function release(packed: PackedWeight): void {
    packedSet.delete(packed);
    collected.unregister(packed);
    heap.release(packed.start);
  }

  // One scratch region, reused by every call and regrown when a call needs more.
  let scratchStart = 0;
  let scratchBytes = 0;
  function scratch(bytes: number): number {
    if (bytes > scratchBytes) {
      if (scratchBytes > 0) heap.release(scratchStart);
      scratchBytes = Math.max(bytes, Math.ceil(scratchBytes * 1.5));
      scratchStart = heap.allocate(scratchBytes);
    }
    return scratchStart;
  }

  /** Consecutive 64-byte-aligned regions of the scratch region, of the given sizes in bytes. */
  function scratchRegions(...sizes: number[]): number[] {
    const offsets: number[] = [];
    let total = 0;
    for (const bytes of sizes) {
      offsets.push(total);
      total += aligned(bytes);
    }
    const base = scratch(total);
    return offsets.map((offset) => base + offset);
  }

  function forget(weight: Float32Array): void {
    const packed = packedWeights.get(weight);
    if (!packed) return;
    packedWeights.delete(weight);
    release(packed);
  }

  /** The packed wᵀ for w[N,K], packing it now if it is new, reshaped or changed. */
  function packedWeight(w: Float32Array, N: number, K: number): number {
    const count = N * K;
    const known = packedWeights.get(w);
    if (known && known.rows === N && known.columns === K && sampleMatches(w, count, known.sample)) {
      return known.start;
    }
    forget(w);
    const start = heap.allocate(wasm.packedBSize(K, N));
    const raw = scratch(count * 4);
    heap.f32.set(w.subarray(0, count), raw >> 2);
    wasm.packTransposed(start, raw, N, K);
    const packed = { start, rows: N, columns: K, sample: takeSample(w, count) };
    packedWeights.set(w, packed);
    packedSet.add(packed);
    collected.register(w, packed, packed);
    return start;
  }

  /** gemm on the worker threads too when the product is large enough to repay waking them. */
  function gemm(out: number, a: number, b: number, M: number, K: number, N: number): void {
    if (pool && pool.worthSplitting(M, K, N)) pool.gemm(out, a, b, M, K, N);
    else wasm.gemm(out, a, b, M, K, N);
  }

  /**
   * out[M,N] = A·B where A's element (i,k) is a[i·rowStride + k·colStride]. With `packedB` given, B is a
   * weight that is already packed; otherwise b is copied in and packed as a row-major b[K,N].
   */
  function product(
    out: Float32Array,
    a: Float32Array,
    rowStride: number,
    colStride: number,
    M: number,
    K: number,
    N: number,
    packedB: number | undefined,
    b: Float32Array,
  ): void {
    // Rows that the packing leaves unblocked are stored as they are: then A can be copied in directly.
    const copyDirect = colStride === 1 && wasm.blockedRows(M) === 0;
    const packB = packedB === undefined;
    const [rawA, packedA, rawB, packedBStart, outStart] = scratchRegions(
      copyDirect ? 0 : M * K * 4,
      wasm.packedASize(M, K),
      packB ? K * N * 4 : 0,
      packB ? wasm.packedBSize(K, N) : 0,
      M * N * 4,
    );
    const f32 = heap.f32;
    if (copyDirect) copyIn(f32, a, M * K, packedA);
    else {
      copyIn(f32, a, M * K, rawA);
      wasm.packA(packedA, rawA, M, K, rowStride, colStride);
    }
    if (packB) {
      copyIn(f32, b, K * N, rawB);
      wasm.packRows(packedBStart, rawB, K, N);
    }
    gemm(outStart, packedA, packB ? packedBStart : packedB, M, K, N);
    copyOut(f32, outStart, M * N, out);
  }

  /** RoPE tables, one per head size, layout and theta (a model has one), each covering `positions`. */
  const ropeTables: {
    headDim: number;
    layout: RopeLayout;
    theta: number;
    start: number;
    positions: number;
  }[] = [];

  /** The byte offset of the table row for position 0, covering at least `positions` positions. */
  function ropeTable(headDim: number, layout: RopeLayout, theta: number, positions: number): number {
    let table = ropeTables.find((t) => t.headDim === headDim && t.layout === layout && t.theta === theta);
    if (table && table.positions >= positions) return table.start;
    if (!table) {
      table = { headDim, layout, theta, start: -1, positions: 16 };
      ropeTables.push(table);
    } else heap.release(table.start);
    // Room for twice as many positions as before, so a growing context rebuilds the table rarely.
    table.positions = Math.max(positions, 2 * table.positions);
    table.start = heap.allocate(table.positions * 2 * headDim * 4);
    const values = heap.f32.subarray(table.start >> 2, (table.start >> 2) + table.positions * 2 * headDim);
    fillRopeTable(values, table.positions, headDim, layout, theta);
    return table.start;
  }

  /** Copies the first `count` values of `array` to byte offset `at` (a view only when `array` is longer). */
  function copyIn(f32: Float32Array, array: Float32Array, count: number, at: number): void {
    f32.set(array.length === count ? array : array.subarray(0, count), at >> 2);
  }

  /** The `count` values at byte offset `at`, copied into `out`. */
  function copyOut(f32: Float32Array, at: number, count: number, out: Float32Array): void {
    out.set(f32.subarray(at >> 2, (at >> 2) + count));
  }

  const layerKernels: LayerKernels = {
    rmsNormRows(out, x, gain, rows, dim, eps) {
      const count = rows * dim;
      checkLength('rmsNormRows', 'x', x, count);
      checkLength('rmsNormRows', 'out', out, count);
      checkLength('rmsNormRows', 'gain', gain, dim);
      const [xAt, gainAt, outAt] = scratchRegions(count * 4, dim * 4, count * 4);
      const f32 = heap.f32;
      copyIn(f32, x, count, xAt);
      copyIn(f32, gain, dim, gainAt);
      wasm.rmsNormRows(outAt, xAt, gainAt, rows, dim, eps);
      copyOut(f32, outAt, count, out);
    },

    swiglu(out, gate, up) {
      const count = out.length;
      checkLength('swiglu', 'gate', gate, count);
      checkLength('swiglu', 'up', up, count);
      const [gateAt, upAt, outAt] = scratchRegions(count * 4, count * 4, count * 4);
      const f32 = heap.f32;
      copyIn(f32, gate, count, gateAt);
      copyIn(f32, up, count, upAt);
      wasm.swiglu(outAt, gateAt, upAt, count);
      copyOut(f32, outAt, count, out);
    },

    softmaxSumsRows(maxOut, sumOut, logits, rows, width) {
      const count = rows * width;
      checkLength('softmaxSumsRows', 'logits', logits, count);
      checkLength('softmaxSumsRows', 'maxOut', maxOut, rows);
      checkLength('softmaxSumsRows', 'sumOut', sumOut, rows);
      const [logitsAt, maxAt, sumAt] = scratchRegions(count * 4, rows * 4, rows * 4);
      const f32 = heap.f32;
      copyIn(f32, logits, count, logitsAt);
      wasm.softmaxSumsRows(maxAt, sumAt, logitsAt, rows, width);
      copyOut(f32, maxAt, rows, maxOut);
      copyOut(f32, sumAt, rows, sumOut);
    },

    applyRopeRows(vec, startPos, rows, nHeads, headDim, layout, theta) {
      const count = rows * nHeads * headDim;
      checkLength('applyRopeRows', 'vec', vec, count);
      const table = ropeTable(headDim, layout, theta, startPos + rows);
      const [vecAt] = scratchRegions(count * 4);
      const f32 = heap.f32;
      copyIn(f32, vec, count, vecAt);
      const firstRow = table + startPos * 2 * headDim * 4;
      wasm.ropeRows(vecAt, firstRow, rows, nHeads, headDim, layout === 'half');
      copyOut(f32, vecAt, count, vec);
    },

    causalSelfAttention(
      out: Float32Array,
      queries: Float32Array,
      keys: Float32Array,
      values: Float32Array,
      startPos: number,
      T: number,
      shape: AttentionShape,
      record?: AttentionRecord,
    ) {
      const { nHeads, nKvHeads, headDim } = shape;
      const S = startPos + T;
      const qCount = T * nHeads * headDim;
      // Only the positions this call can see: 0 … S−1 of the cache.
      const kvCount = S * nKvHeads * headDim;
      const recordCount = record ? nHeads * T * S : 0;
      checkLength('causalSelfAttention', 'queries', queries, qCount);
      checkLength('causalSelfAttention', 'out', out, qCount);
      checkLength('causalSelfAttention', 'keys', keys, kvCount);
      checkLength('causalSelfAttention', 'values', values, kvCount);
      const [qAt, keysAt, valuesAt, scoresAt, outAt, recordScoresAt, recordWeightsAt] = scratchRegions(
        qCount * 4,
        kvCount * 4,
        kvCount * 4,
        S * 4,
        qCount * 4,
        recordCount * 4,
        recordCount * 4,
      );
      const f32 = heap.f32;
      copyIn(f32, queries, qCount, qAt);
      copyIn(f32, keys, kvCount, keysAt);
      copyIn(f32, values, kvCount, valuesAt);
      wasm.causalSelfAttention(
        outAt,
        qAt,
        keysAt,
        valuesAt,
        scoresAt,
        startPos,
        T,
        nHeads,
        nKvHeads,
        headDim,
        record ? recordScoresAt : 0,
        record ? recordWeightsAt : 0,
      );
      copyOut(f32, outAt, qCount, out);
      if (record) {
        copyOut(f32, recordScoresAt, recordCount, record.scores);
        copyOut(f32, recordWeightsAt, recordCount, record.weights);
      }
    },
  };

  return {
    get name() {
      return pool ? `${variant}, ${pool.threads} threads` : variant;
    },
    variant,
    get threads() {
      return pool?.threads ?? 1;
    },

    matmulTransposedB(out, x, w, M, K, N) {
      checkLength('matmulTransposedB', 'out', out, M * N);
      checkLength('matmulTransposedB', 'x', x, M * K);
      checkLength('matmulTransposedB', 'w', w, N * K);
      if (M === 0 || N === 0) return;
      // Packing the weight can grow memory: it comes before the scratch region is laid out.
      const packed = packedWeight(w, N, K);
      product(out, x, K, 1, M, K, N, packed, w);
    },

    matmul(out, a, b, M, K, N) {
      checkLength('matmul', 'out', out, M * N);
      checkLength('matmul', 'a', a, M * K);
      checkLength('matmul', 'b', b, K * N);
      if (M === 0 || N === 0) return;
      product(out, a, K, 1, M, K, N, undefined, b);
    },

    matmulTransposedA(out, a, b, M, K, N) {
      checkLength('matmulTransposedA', 'out', out, M * N);
      checkLength('matmulTransposedA', 'a', a, K * M);
      checkLength('matmulTransposedA', 'b', b, K * N);
      if (M === 0 || N === 0) return;
      product(out, a, 1, M, M, K, N, undefined, b);
    },

    ...layerKernels,

    invalidate: forget,

    invalidateAll() {
      for (const packed of [...packedSet]) release(packed);
      packedWeights = new WeakMap();
    },

    packedWeightBytes() {
      let bytes = 0;
      for (const packed of packedSet) bytes += heap.sizeOf(packed.start);
      return bytes;
    },

    async ready() {
      await pool?.ready();
    },

    close() {
      pool?.close();
      pool = undefined;
    },
  };
}
