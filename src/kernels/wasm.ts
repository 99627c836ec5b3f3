/**
 * The WebAssembly SIMD matrix kernels: the same products as `reference.ts`, computed by
 * `src/kernels/matmul.as` (AssemblyScript, compiled into `wasm-binaries.ts`) on plain Float32Arrays.
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
 *
 * The memory grows on demand. Growing detaches every view of the old buffer, so views are only ever taken
 * through `heap.f32` after all of a call's allocations.
 */
import type { MatrixKernels } from './reference.ts';
import { matmulRelaxedSimdBase64, matmulSimdBase64 } from './wasm-binaries.ts';

/** The kernel implementations there are: the readable reference and the two WebAssembly builds. */
export type KernelVariant = 'ts' | 'wasm-simd' | 'wasm-relaxed-simd';
export type WasmVariant = Exclude<KernelVariant, 'ts'>;

/** A set of matrix kernels, as `selectKernels` returns it. */
export interface KernelSet extends MatrixKernels {
  /** Which implementation computes the products. */
  readonly variant: KernelVariant;
  /** Forget the packed copy of a weight whose values changed, so the next product reads them anew. */
  invalidate(weight: Float32Array): void;
  /** Forget every packed weight (for example after each optimizer step). */
  invalidateAll(): void;
}

/** The WebAssembly kernel set, which can also say how much memory its packed weights hold. */
export interface WasmKernelSet extends KernelSet {
  readonly variant: WasmVariant;
  /** Bytes of WebAssembly memory in use by packed weights. */
  packedWeightBytes(): number;
}

/** The exports of matmul.as; pointers and sizes in bytes, shapes in elements. */
export interface MatmulExports {
  heapBase(): number;
  blockedRows(M: number): number;
  packedASize(M: number, K: number): number;
  packedBSize(K: number, N: number): number;
  gemm(out: number, a: number, b: number, M: number, K: number, N: number): void;
  packA(dst: number, src: number, M: number, K: number, rowStride: number, colStride: number): void;
  packRows(dst: number, src: number, K: number, N: number): void;
  packTransposed(dst: number, src: number, N: number, K: number): void;
  ceiling(iterations: number, seed: number): number;
}

const BASE64: Record<WasmVariant, string> = {
  'wasm-simd': matmulSimdBase64,
  'wasm-relaxed-simd': matmulRelaxedSimdBase64,
};

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The module bytes of a variant. */
export function wasmBinary(variant: WasmVariant): Uint8Array<ArrayBuffer> {
  return decodeBase64(BASE64[variant]);
}

const support = new Map<WasmVariant, boolean>();

/**
 * Whether this runtime can run a variant: `WebAssembly.validate` on the very module that would be loaded
 * (4 KB), so the answer covers every instruction it uses — SIMD, and for 'wasm-relaxed-simd' the relaxed
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

const PAGE_BYTES = 65536;
const ALIGN = 64;

/** A first-fit allocator over WebAssembly linear memory, which it grows when nothing free is big enough. */
class LinearHeap {
  /** Free ranges, sorted by start and never adjacent (they are merged). */
  private readonly free: { start: number; bytes: number }[] = [];
  private readonly allocated = new Map<number, number>();
  private view: Float32Array;

  constructor(
    private readonly memory: WebAssembly.Memory,
    base: number,
  ) {
    this.free.push({ start: base, bytes: memory.buffer.byteLength - base });
    this.view = new Float32Array(memory.buffer);
  }

  /** The whole memory as floats. Take it after allocating: growth replaces the buffer. */
  get f32(): Float32Array {
    if (this.view.buffer !== this.memory.buffer) this.view = new Float32Array(this.memory.buffer);
    return this.view;
  }

  /** Bytes currently allocated. */
  allocatedBytes(): number {
    let total = 0;
    for (const bytes of this.allocated.values()) total += bytes;
    return total;
  }

  allocate(requested: number): number {
    const bytes = Math.max(ALIGN, Math.ceil(requested / ALIGN) * ALIGN);
    let index = this.free.findIndex((range) => range.bytes >= bytes);
    if (index < 0) index = this.grow(bytes);
    const range = this.free[index];
    const start = range.start;
    if (range.bytes === bytes) this.free.splice(index, 1);
    else {
      range.start += bytes;
      range.bytes -= bytes;
    }
    this.allocated.set(start, bytes);
    return start;
  }

  release(start: number): void {
    const bytes = this.allocated.get(start);
    if (bytes === undefined) return;
    this.allocated.delete(start);
    let index = this.free.findIndex((range) => range.start > start);
    if (index < 0) index = this.free.length;
    this.free.splice(index, 0, { start, bytes });
    this.mergeAround(index);
  }

  /** Grows the memory so that the last free range holds `bytes`; returns that range's index. */
  private grow(bytes: number): number {
    const end = this.memory.buffer.byteLength;
    const last = this.free[this.free.length - 1];
    const tailFree = last && last.start + last.bytes === end ? last.bytes : 0;
    // At least half the current size again, so that a growing model does not grow memory on every weight.
    const pages = Math.max(Math.ceil((bytes - tailFree) / PAGE_BYTES), Math.ceil(end / PAGE_BYTES / 2));
    try {
      this.memory.grow(pages);
    } catch {
      throw new RangeError(
        `WebAssembly kernels: cannot grow memory from ${end / 2 ** 20} MiB by ${(pages * PAGE_BYTES) / 2 ** 20} MiB`,
      );
    }
    this.free.push({ start: end, bytes: pages * PAGE_BYTES });
    this.mergeAround(this.free.length - 1);
    return this.free.length - 1;
  }

  private mergeAround(index: number): void {
    const next = this.free[index + 1];
    const range = this.free[index];
    if (next && range.start + range.bytes === next.start) {
      range.bytes += next.bytes;
      this.free.splice(index + 1, 1);
    }
    const previous = this.free[index - 1];
    if (previous && previous.start + previous.bytes === range.start) {
      previous.bytes += range.bytes;
      this.free.splice(index, 1);
    }
  }
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

function checkLength(product: string, name: string, array: Float32Array, needed: number): void {
  if (array.length < needed) {
    throw new RangeError(`${product}: ${name} has ${array.length} elements, the shape needs ${needed}`);
  }
}

/**
 * A new instance of matmul.as with a memory of `initialPages` × 64 KiB, compiled synchronously (the module
 * is 4 KB, well under what browsers allow on the main thread). The benchmark uses this to time `gemm` alone.
 */
export function instantiateMatmul(
  variant: WasmVariant,
  initialPages = 32,
): { wasm: MatmulExports; memory: WebAssembly.Memory } {
  const memory = new WebAssembly.Memory({ initial: initialPages });
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasmBinary(variant)), { env: { memory } });
  return { wasm: instance.exports as unknown as MatmulExports, memory };
}

/** Creates a WebAssembly kernel set. Throws if the runtime cannot compile the variant. */
export function createWasmKernels(variant: WasmVariant): WasmKernelSet {
  const { wasm, memory } = instantiateMatmul(variant);
  const heap = new LinearHeap(memory, wasm.heapBase());

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

  /**
   * out[M,N] = A·B where A's element (i,k) is a[i·rowStride + k·colStride]; `packB(rawB, packedB)` is
   * called with b already copied to rawB. With `packedB` given, B is a weight that is already packed.
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
    const aBytes = M * K * 4;
    const packedABytes = wasm.packedASize(M, K);
    // Rows that the packing leaves unblocked are stored as they are: then A can be copied in directly.
    const copyDirect = colStride === 1 && wasm.blockedRows(M) === 0;
    const bBytes = packedB === undefined ? K * N * 4 : 0;
    const packedBBytes = packedB === undefined ? wasm.packedBSize(K, N) : 0;
    const base = scratch(aBytes + packedABytes + bBytes + packedBBytes + M * N * 4);
    const rawA = base;
    const packedA = rawA + aBytes;
    const rawB = packedA + packedABytes;
    const packedBStart = packedB ?? rawB + bBytes;
    const outStart = rawB + bBytes + packedBBytes;

    const f32 = heap.f32;
    if (copyDirect) f32.set(a.subarray(0, M * K), packedA >> 2);
    else {
      f32.set(a.subarray(0, M * K), rawA >> 2);
      wasm.packA(packedA, rawA, M, K, rowStride, colStride);
    }
    if (packedB === undefined) {
      f32.set(b.subarray(0, K * N), rawB >> 2);
      wasm.packRows(packedBStart, rawB, K, N);
    }
    wasm.gemm(outStart, packedA, packedBStart, M, K, N);
    out.set(f32.subarray(outStart >> 2, (outStart >> 2) + M * N));
  }

  return {
    name: variant,
    variant,

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

    invalidate: forget,

    invalidateAll() {
      for (const packed of [...packedSet]) release(packed);
      packedWeights = new WeakMap();
    },

    packedWeightBytes() {
      return heap.allocatedBytes() - scratchBytes;
    },
  };
}
