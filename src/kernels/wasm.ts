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
import type { BlockWeight, QuantizedWeight, RopeLayout, RunqWeight } from '../engine/model.ts';
import {
  dequantizeWeight,
  quantizeActivationsQ8_1,
  quantizedMatmul as readableQuantizedMatmul,
  quantizeRunq,
} from '../engine/quant-matmul.ts';
import { float16ToFloat32, float32ToFloat16, readFloat16 } from '../engine/quant.ts';
import { ropeFrequency } from '../engine/ops.ts';
import { LinearHeap } from './heap.ts';
import type { LayerKernels } from './layer-reference.ts';
import type { TrainingFastPaths } from '../engine/train/ops.ts';
import type { MatrixKernels } from './reference.ts';
import { sharedMemoryUnavailable, startThreadPool, type ThreadPool } from './threads.ts';
import { relaxedSimdBase64, relaxedSimdSharedBase64, simdBase64, simdSharedBase64 } from './wasm-binaries.ts';

/** The kernel implementations there are: the readable reference and the two WebAssembly builds. */
export type KernelVariant = 'ts' | 'wasm-simd' | 'wasm-relaxed-simd';
export type WasmVariant = Exclude<KernelVariant, 'ts'>;

/** A set of kernels, as `selectKernels` returns it. */
export interface KernelSet extends MatrixKernels, LayerKernels, Partial<TrainingFastPaths> {
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
  quantPart(
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
  quantDescriptorBytes(): number;
  quantizeRowsQ8_0(values: number, scales: number, intSums: number, x: number, blocks: number): void;
  streamRead(from: number, bytes: number): number;
  rmsNormRows(out: number, x: number, gain: number, rows: number, dim: number, eps: number): void;
  swiglu(out: number, gate: number, up: number, length: number): void;
  softmaxSumsRows(maxOut: number, sumOut: number, logits: number, rows: number, width: number): void;
  causalSoftmaxRows(scores: number, rows: number, T: number, scale: number): void;
  causalSoftmaxBackwardRows(dProbs: number, probs: number, rows: number, T: number, scale: number): void;
  logSumExpRows(out: number, logits: number, rows: number, width: number): void;
  softmaxGradientRows(
    out: number,
    logits: number,
    logSumExp: number,
    rows: number,
    width: number,
    scale: number,
  ): void;
  swigluBackward(dGate: number, dUp: number, dOut: number, gate: number, up: number, length: number): void;
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

/** Multiply-adds from which a quantized product is shared among the threads (see quantizedMatmul). */
const QUANTIZED_SPLIT = 65_536;

/** quant.as's number for each weight type it multiplies. */
const QUANT_KINDS: Record<'q8_0' | 'q4_0' | 'q4_1' | 'runq', number> = { q8_0: 1, q4_0: 2, q4_1: 3, runq: 4 };

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

/** Rows of a causal block (causalBlocks): a multiple of 6, gemm's block of rows. */
const CAUSAL_BLOCK = 48;

/**
 * An attention group's stacked rows (row r is position r mod T of its query head) cut into blocks of at
 * most CAUSAL_BLOCK positions of one head. Position t sees positions 0…t, so a block's rows together see
 * its first `visible` positions, up to its last row's: a product over the block needs only those columns
 * of scores, or those rows of keys and values. Over a sequence this halves attention's products.
 */
function* causalBlocks(rows: number, T: number): Generator<{ row: number; count: number; visible: number }> {
  for (let head = 0; head * T < rows; head++) {
    for (let t = 0; t < T; t += CAUSAL_BLOCK) {
      const count = Math.min(CAUSAL_BLOCK, T - t);
      yield { row: head * T + t, count, visible: t + count };
    }
  }
}

function checkLength(operation: string, name: string, array: Float32Array, needed: number): void {
  if (array.length < needed) {
    throw new RangeError(`${operation}: ${name} has ${array.length} elements, the shape needs ${needed}`);
  }
}

/** checkLength for each named array: { name: [array, elements the shape needs] }. */
function checkLengths(operation: string, arrays: Record<string, readonly [Float32Array, number]>): void {
  for (const [name, [array, needed]] of Object.entries(arrays)) checkLength(operation, name, array, needed);
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
 * A 4-bit block's 16 bytes rearranged for quant.as: from ggml's layout (byte j holds element j in its low
 * nibble and element j + 16 in its high one) to "nibble lanes", where the 16-bit lane l (bytes 2l and 2l + 1,
 * little-endian) holds elements l, l + 8, l + 16 and l + 24, lowest nibble first.
 */
export function nibbleLanes(ggml: Uint8Array): Uint8Array {
  const element = (i: number) => (i < 16 ? ggml[i] & 0x0f : ggml[i - 16] >> 4);
  const lanes = new Uint8Array(16);
  for (let l = 0; l < 8; l++) {
    lanes[2 * l] = element(l) | (element(l + 8) << 4);
    lanes[2 * l + 1] = element(l + 16) | (element(l + 24) << 4);
  }
  return lanes;
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

  /**
   * out[M, N] = A·B as `gemm` (A and B packed, out row-major), where only the first `columns` columns of
   * out are needed: the others are computed only when the product is split among threads.
   */
  function gemmColumns(
    out: number,
    a: number,
    b: number,
    M: number,
    K: number,
    N: number,
    columns: number,
  ): void {
    if (pool && pool.worthSplitting(M, K, N)) pool.gemm(out, a, b, M, K, N);
    else wasm.gemmPart(out, N * 4, a, b, M, K, N, 0, wasm.panelCount(columns));
  }

  /**
   * out[rows, T] = A·Bᵀ over an attention group's stacked rows (row r is position r mod T of its query head),
   * A [rows, D] (queries, or the output's gradient) and B given as its transpose [D, T] (keys, or values):
   * scores, of which each block of rows computes only the columns it can see (causalBlocks). The others are
   * left unwritten, for the causal softmax or its backward pass to zero. `packing`: causalPackingBytes.
   */
  function causalScores(
    out: number,
    a: number,
    bTransposed: number,
    rows: number,
    T: number,
    D: number,
    [packedA, packedB]: number[],
  ): void {
    wasm.packRows(packedB, bTransposed, D, T);
    for (const { row, count, visible } of causalBlocks(rows, T)) {
      wasm.packA(packedA, a + row * D * 4, count, D, D, 1);
      gemmColumns(out + row * T * 4, packedA, packedB, count, D, T, visible);
    }
  }

  /**
   * out[rows, D] = W·B over an attention group's stacked rows, W [rows, T] (the probabilities, or the scores'
   * gradient) zero past each row's position and B [T, D] (values, or keys): each block of rows reads only the
   * first `visible` rows of B. `packing`: causalPackingBytes.
   */
  function causalWeightedSum(
    out: number,
    weights: number,
    b: number,
    rows: number,
    T: number,
    D: number,
    [packedA, packedB]: number[],
  ): void {
    for (const { row, count, visible } of causalBlocks(rows, T)) {
      wasm.packA(packedA, weights + row * T * 4, count, visible, T, 1);
      wasm.packRows(packedB, b, visible, D);
      gemmColumns(out + row * D * 4, packedA, packedB, count, visible, D, D);
    }
  }

  /** The sizes of causalScores' and causalWeightedSum's two packing regions. */
  function causalPackingBytes(T: number, D: number): number[] {
    return [
      Math.max(wasm.packedASize(CAUSAL_BLOCK, D), wasm.packedASize(CAUSAL_BLOCK, T)),
      Math.max(wasm.packedBSize(D, T), wasm.packedBSize(T, D)),
    ];
  }

  /**
   * out[T, D] = Aᵀ·B over an attention group's stacked rows (row r is position r mod T of its query head):
   * A [rows, T] holds probabilities or their gradients, zero past each row's position; B is [rows, D]. Row s
   * of out needs only the stacked rows of positions t ≥ s (A is zero in the others), so for each block of
   * s those rows of every head are gathered into one K, in the order the whole product sums them.
   * `scratch` is four regions of causalTransposedBytes(rows, T, D).
   */
  function causalTransposedProduct(
    out: number,
    a: number,
    b: number,
    rows: number,
    T: number,
    D: number,
    [gatheredA, gatheredB, packedA, packedB]: number[],
  ): void {
    const heads = rows / T;
    for (let s = 0; s < T; s += CAUSAL_BLOCK) {
      const count = Math.min(CAUSAL_BLOCK, T - s);
      const tail = T - s; // positions s … T − 1 of each head
      for (let head = 0; head < heads; head++) {
        const first = head * T + s;
        wasm.copyRows(
          gatheredA + head * tail * count * 4,
          count * 4,
          a + (first * T + s) * 4,
          T * 4,
          tail,
          count * 4,
        );
        wasm.copyRows(gatheredB + head * tail * D * 4, D * 4, b + first * D * 4, D * 4, tail, D * 4);
      }
      const K = heads * tail;
      wasm.packA(packedA, gatheredA, count, K, 1, count); // the transpose of the gathered [K, count]
      wasm.packRows(packedB, gatheredB, K, D);
      gemmColumns(out + s * D * 4, packedA, packedB, count, K, D, D);
    }
  }

  /** The sizes of causalTransposedProduct's scratch regions. */
  function causalTransposedBytes(rows: number, T: number, D: number): number[] {
    return [
      rows * CAUSAL_BLOCK * 4,
      rows * D * 4,
      wasm.packedASize(CAUSAL_BLOCK, rows),
      wasm.packedBSize(rows, D),
    ];
  }

  // ---------------------------------------------------------------------------- quantized weights (quant.as)

  /** Packed quantized weights by the identity of their QuantizedWeight (which is immutable). */
  const packedQuantized = new WeakMap<QuantizedWeight, PackedWeight>();
  /** f16/bf16 weights widened once to float32: they then run as float32 weights (packed by packedWeight). */
  const widenedWeights = new WeakMap<QuantizedWeight, Float32Array>();

  /** quant.as's descriptor of a weight packed in groups of 4 rows (see there), packing it on first use. */
  function packedQuantizedWeight(w: BlockWeight | RunqWeight, N: number, K: number): number {
    const known = packedQuantized.get(w);
    if (known) return known.start;
    const descriptor = wasm.quantDescriptorBytes();
    const groups = Math.ceil(N / 4);
    const blocks = K / 32;
    const runq = w.type === 'runq';
    const valueBytes = runq ? N * K : groups * blocks * (w.type === 'q8_0' ? 128 : 64);
    const scaleBytes = runq ? (N * K * 4) / w.groupSize : groups * blocks * 16;
    const minBytes = w.type === 'q4_1' ? scaleBytes : 0;
    const start = heap.allocate(aligned(descriptor) + aligned(valueBytes) + aligned(scaleBytes) + minBytes);
    const values = start + aligned(descriptor);
    const scales = values + aligned(valueBytes);
    const mins = scales + aligned(scaleBytes);
    const bytes = new Uint8Array(memory.buffer);
    const f32 = heap.f32;
    bytes.fill(0, start, mins + minBytes); // the padding rows of the last group stay 0
    const words = new Int32Array(memory.buffer, start, 5);
    words.set([
      QUANT_KINDS[w.type as keyof typeof QUANT_KINDS],
      values,
      scales,
      mins,
      runq ? w.groupSize : 0,
    ]);
    if (runq) {
      bytes.set(new Uint8Array(w.values.buffer, w.values.byteOffset, N * K), values);
      f32.set(w.scales.subarray(0, scaleBytes / 4), scales >> 2);
    } else {
      const blockBytes = { q8_0: 34, q4_0: 18, q4_1: 20 }[w.type as 'q8_0' | 'q4_0' | 'q4_1'];
      const quantBytes = w.type === 'q8_0' ? 32 : 16;
      const head = w.type === 'q4_1' ? 4 : 2; // d (and m) before the values
      for (let n = 0; n < N; n++) {
        for (let b = 0; b < blocks; b++) {
          const from = (n * blocks + b) * blockBytes;
          const slot = ((n >> 2) * blocks + b) * 4 + (n & 3);
          const quants = w.bytes.subarray(from + head, from + head + quantBytes);
          bytes.set(w.type === 'q8_0' ? quants : nibbleLanes(quants), values + slot * quantBytes);
          f32[(scales >> 2) + slot] = readFloat16(w.bytes, from);
          if (minBytes > 0) f32[(mins >> 2) + slot] = readFloat16(w.bytes, from + 2);
        }
      }
    }
    const packed: PackedWeight = { start, rows: N, columns: K, sample: new Float32Array(0) };
    packedQuantized.set(w, packed);
    packedSet.add(packed);
    collected.register(w, packed, packed);
    return start;
  }

  /**
   * The activations of a q4_1 or runq product quantized by the weight's readable quantizer (Q8_1 blocks, or
   * runq's groups), once per product: int8 values [M, K], a float32 scale per block or group and, for Q8_1,
   * each block's d·Σq. (Q8_0 activations, for q8_0 and q4_0 weights, are quantized in the kernels' memory:
   * q8_0ActivationsInMemory.)
   */
  function quantizedActivations(
    w: BlockWeight | RunqWeight,
    x: Float32Array,
    M: number,
    K: number,
  ): { values: Int8Array; scales: Float32Array; sums: Float32Array } {
    if (w.type === 'runq') {
      const groups = K / w.groupSize;
      const values = new Int8Array(M * K);
      const scales = new Float32Array(M * groups);
      for (let i = 0; i < M; i++) {
        const row = quantizeRunq(x.subarray(i * K, (i + 1) * K), K, w.groupSize);
        values.set(row.values, i * K);
        scales.set(row.scales, i * groups);
      }
      return { values, scales, sums: new Float32Array(0) };
    }
    const q81 = quantizeActivationsQ8_1(x, M, K);
    const blocks = q81.blocks;
    const count = (M * K) / 32;
    const values = new Int8Array(M * K);
    const scales = new Float32Array(count);
    const signed = new Int8Array(blocks.bytes.buffer, blocks.bytes.byteOffset, blocks.bytes.length);
    for (let b = 0; b < count; b++) {
      values.set(signed.subarray(b * 34 + 2, b * 34 + 34), b * 32);
      scales[b] = readFloat16(blocks.bytes, b * 34);
    }
    return { values, scales, sums: q81.sums };
  }

  /**
   * Q8_0 activations for a q8_0 or q4_0 product, quantized in the kernels' memory (quant.as quantizeRowsQ8_0),
   * with quant.as's activation descriptor and a region of `outBytes` for the product: their offsets.
   */
  function q8_0ActivationsInMemory(
    x: Float32Array,
    M: number,
    K: number,
    outBytes: number,
  ): [number, number] {
    const blocks = (M * K) / 32;
    const [descriptorAt, xAt, valuesAt, scalesAt, intSumsAt, outAt] = scratchRegions(
      wasm.quantDescriptorBytes(),
      M * K * 4,
      M * K,
      blocks * 4,
      blocks * 4,
      outBytes,
    );
    const f32 = heap.f32;
    copyIn(f32, x, M * K, xAt);
    wasm.quantizeRowsQ8_0(valuesAt, scalesAt, intSumsAt, xAt, blocks);
    // Each d as the reference's blocks hold it: rounded through float16, as the file format stores it.
    for (let at = scalesAt >> 2; at < (scalesAt >> 2) + blocks; at++)
      f32[at] = float16ToFloat32(float32ToFloat16(f32[at]));
    new Int32Array(memory.buffer, descriptorAt, 4).set([valuesAt, scalesAt, 0, intSumsAt]);
    return [descriptorAt, outAt];
  }

  /** quantizedActivations copied into the kernels' memory, with the descriptor and the output's region. */
  function copiedActivations(
    w: BlockWeight | RunqWeight,
    x: Float32Array,
    M: number,
    K: number,
    outBytes: number,
  ): [number, number] {
    const { values, scales, sums } = quantizedActivations(w, x, M, K);
    const [descriptorAt, valuesAt, scalesAt, sumsAt, outAt] = scratchRegions(
      wasm.quantDescriptorBytes(),
      values.length,
      scales.length * 4,
      sums.length * 4,
      outBytes,
    );
    const f32 = heap.f32;
    new Uint8Array(memory.buffer).set(new Uint8Array(values.buffer), valuesAt);
    f32.set(scales, scalesAt >> 2);
    f32.set(sums, sumsAt >> 2);
    new Int32Array(memory.buffer, descriptorAt, 4).set([valuesAt, scalesAt, sumsAt, 0]);
    return [descriptorAt, outAt];
  }

  function quantizedMatmul(
    out: Float32Array,
    x: Float32Array,
    w: QuantizedWeight,
    M: number,
    K: number,
    N: number,
  ): void {
    checkLength('quantizedMatmul', 'out', out, M * N);
    checkLength('quantizedMatmul', 'x', x, M * K);
    if (M === 0 || N === 0) return;
    if (w.type === 'f16' || w.type === 'bf16') {
      // Widened once, then the float32 product: what dequantize-then-f32 means, at float32 speed.
      let widened = widenedWeights.get(w);
      if (!widened) widenedWeights.set(w, (widened = dequantizeWeight(w)));
      kernels.matmulTransposedB(out, x, widened, M, K, N);
      return;
    }
    if (w.type === 'runq' && (K % w.groupSize !== 0 || w.groupSize % 8 !== 0)) {
      // Rows that are not whole groups of a multiple of 8: runq.c's odd indexing stays with the readable loop.
      readableQuantizedMatmul(out, x, w, M, K, N);
      return;
    }
    const weight = packedQuantizedWeight(w, N, K); // may grow memory: before the scratch layout
    const [aAt, outAt] =
      w.type === 'q8_0' || w.type === 'q4_0'
        ? q8_0ActivationsInMemory(x, M, K, M * N * 4)
        : copiedActivations(w, x, M, K, M * N * 4);
    const f32 = heap.f32;
    // The integer kernels are bound by arithmetic, not memory (WebAssembly SIMD has no 8-bit dot product), so
    // even decode's small products are worth sharing: a quarter of the float32 threshold.
    if (pool && pool.worthSplitting(M, K, N, QUANTIZED_SPLIT)) pool.gemm(outAt, aAt, weight, M, K, N, true);
    else wasm.quantPart(outAt, N * 4, aAt, weight, M, K, N, 0, wasm.panelCount(N));
    copyOut(f32, outAt, M * N, out);
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

  /** Training's softmaxes (src/kernels/train.as), in place of the loops of src/engine/train/ops.ts. */
  const trainingFastPaths: TrainingFastPaths = {
    swigluForward(out, gate, up) {
      layerKernels.swiglu(out, gate, up);
    },

    swigluBackward(dGate, dUp, dOut, gate, up) {
      const count = dOut.length;
      checkLengths('swigluBackward', {
        dGate: [dGate, count],
        dUp: [dUp, count],
        gate: [gate, count],
        up: [up, count],
      });
      const [dGateAt, dUpAt, dOutAt, gateAt, upAt] = scratchRegions(...Array<number>(5).fill(count * 4));
      const f32 = heap.f32;
      copyIn(f32, dOut, count, dOutAt);
      copyIn(f32, gate, count, gateAt);
      copyIn(f32, up, count, upAt);
      wasm.swigluBackward(dGateAt, dUpAt, dOutAt, gateAt, upAt, count);
      copyOut(f32, dGateAt, count, dGate);
      copyOut(f32, dUpAt, count, dUp);
    },

    causalSoftmax(scores, rows, T, scale) {
      const count = rows * T;
      checkLength('causalSoftmax', 'scores', scores, count);
      const [scoresAt] = scratchRegions(count * 4);
      const f32 = heap.f32;
      copyIn(f32, scores, count, scoresAt);
      wasm.causalSoftmaxRows(scoresAt, rows, T, scale);
      copyOut(f32, scoresAt, count, scores);
    },

    causalSoftmaxBackward(dProbs, probs, rows, T, scale) {
      const count = rows * T;
      checkLength('causalSoftmaxBackward', 'dProbs', dProbs, count);
      checkLength('causalSoftmaxBackward', 'probs', probs, count);
      const [dAt, probsAt] = scratchRegions(count * 4, count * 4);
      const f32 = heap.f32;
      copyIn(f32, dProbs, count, dAt);
      copyIn(f32, probs, count, probsAt);
      wasm.causalSoftmaxBackwardRows(dAt, probsAt, rows, T, scale);
      copyOut(f32, dAt, count, dProbs);
    },

    // One attention group's products and softmax (src/engine/train/ops.ts attentionGroupForward and
    // attentionGroupBackward). Only the inputs and results cross into and out of the kernels' memory, not
    // the T×T scores, probabilities and their gradients between steps. And the products skip what the
    // causal mask makes zero (see causalBlocks): every value they do compute is the one the full product
    // computes, so for finite inputs the results are the unfused fast paths' bit for bit (the tests check; an
    // infinite value would make the full product's 0·∞ at a masked entry NaN, which the fused one skips).
    attentionGroupForward(output, probs, queries, keysTransposed, values, rows, T, D) {
      checkLengths('attentionGroupForward', {
        output: [output, rows * D],
        probs: [probs, rows * T],
        queries: [queries, rows * D],
        keysTransposed: [keysTransposed, D * T],
        values: [values, T * D],
      });
      const [qAt, ktAt, vAt, pAt, outAt, ...packing] = scratchRegions(
        rows * D * 4,
        D * T * 4,
        T * D * 4,
        rows * T * 4,
        rows * D * 4,
        ...causalPackingBytes(T, D),
      );
      const f32 = heap.f32;
      copyIn(f32, queries, rows * D, qAt);
      copyIn(f32, keysTransposed, D * T, ktAt);
      copyIn(f32, values, T * D, vAt);
      causalScores(pAt, qAt, ktAt, rows, T, D, packing); // S = Q·Kᵀ
      wasm.causalSoftmaxRows(pAt, rows, T, 1 / Math.sqrt(D)); // P, zero past each row's position
      causalWeightedSum(outAt, pAt, vAt, rows, T, D, packing); // P·V
      copyOut(f32, pAt, rows * T, probs);
      copyOut(f32, outAt, rows * D, output);
    },

    attentionGroupBackward(
      dQueries,
      dKeys,
      dValues,
      dOutput,
      probs,
      queries,
      keys,
      valuesTransposed,
      rows,
      T,
      D,
    ) {
      checkLengths('attentionGroupBackward', {
        dQueries: [dQueries, rows * D],
        dKeys: [dKeys, T * D],
        dValues: [dValues, T * D],
        dOutput: [dOutput, rows * D],
        probs: [probs, rows * T],
        queries: [queries, rows * D],
        keys: [keys, T * D],
        valuesTransposed: [valuesTransposed, D * T],
      });
      const regions = scratchRegions(
        rows * D * 4,
        rows * T * 4,
        rows * D * 4,
        T * D * 4,
        D * T * 4,
        rows * T * 4,
        rows * D * 4,
        T * D * 4,
        T * D * 4,
        ...causalPackingBytes(T, D), // two regions
        ...causalTransposedBytes(rows, T, D), // four
      );
      const [dOutAt, pAt, qAt, kAt, vtAt, dsAt, dqAt, dkAt, dvAt] = regions;
      const packing = regions.slice(9, 11);
      const transposed = regions.slice(11);
      const f32 = heap.f32;
      copyIn(f32, dOutput, rows * D, dOutAt);
      copyIn(f32, probs, rows * T, pAt);
      copyIn(f32, queries, rows * D, qAt);
      copyIn(f32, keys, T * D, kAt);
      copyIn(f32, valuesTransposed, D * T, vtAt);
      causalTransposedProduct(dvAt, pAt, dOutAt, rows, T, D, transposed); // dV = Pᵀ·dOut
      causalScores(dsAt, dOutAt, vtAt, rows, T, D, packing); // dP = dOut·Vᵀ
      wasm.causalSoftmaxBackwardRows(dsAt, pAt, rows, T, 1 / Math.sqrt(D)); // dS, zero past each position
      causalWeightedSum(dqAt, dsAt, kAt, rows, T, D, packing); // dQ = dS·K
      causalTransposedProduct(dkAt, dsAt, qAt, rows, T, D, transposed); // dK = dSᵀ·Q
      copyOut(f32, dqAt, rows * D, dQueries);
      copyOut(f32, dkAt, T * D, dKeys);
      copyOut(f32, dvAt, T * D, dValues);
    },

    logSumExpRows(out, logits, rows, width) {
      const count = rows * width;
      checkLength('logSumExpRows', 'logits', logits, count);
      const [logitsAt, outAt] = scratchRegions(count * 4, rows * 4);
      const f32 = heap.f32;
      copyIn(f32, logits, count, logitsAt);
      wasm.logSumExpRows(outAt, logitsAt, rows, width);
      for (let r = 0; r < rows; r++) out[r] = f32[(outAt >> 2) + r];
    },

    softmaxGradientRows(out, logits, logSumExp, rows, width, scale) {
      const count = rows * width;
      checkLength('softmaxGradientRows', 'logits', logits, count);
      checkLength('softmaxGradientRows', 'out', out, count);
      const [logitsAt, lseAt, outAt] = scratchRegions(count * 4, rows * 4, count * 4);
      const f32 = heap.f32;
      copyIn(f32, logits, count, logitsAt);
      for (let r = 0; r < rows; r++) f32[(lseAt >> 2) + r] = logSumExp[r];
      wasm.softmaxGradientRows(outAt, logitsAt, lseAt, rows, width, scale);
      copyOut(f32, outAt, count, out);
    },
  };

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

  const kernels: WasmKernelSet = {
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

    quantizedMatmul,

    ...layerKernels,

    ...trainingFastPaths,

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
  return kernels;
}
