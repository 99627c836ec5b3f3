/**
 * Choosing the kernels: the fastest WebAssembly build this runtime can run, on one thread or several, or
 * the readable TypeScript reference. All compute the same products and layer operations (the WebAssembly
 * ones in float32 SIMD lanes, so they agree with the reference to about 1e-6 of the magnitude of each sum,
 * not bit for bit; several threads give exactly what one thread gives).
 */
import { referenceLayerKernels } from './layer-reference.ts';
import { sharedMemoryUnavailable } from './threads.ts';
import { tiledReferenceKernels } from './tiled.ts';
import {
  createWasmKernels,
  wasmVariantSupported,
  type KernelSet,
  type KernelVariant,
  type WasmKernelSet,
  type WasmVariant,
} from './wasm.ts';

export type { KernelSet, KernelVariant } from './wasm.ts';

/**
 * What a caller asks for: 'auto' (the fastest available), 'wasm' (WebAssembly, best build available),
 * 'ts' (the reference), or one WebAssembly build by name.
 */
export type KernelPreference = 'auto' | 'wasm' | KernelVariant;

/**
 * How many threads share the large products: 1, 2, or 'auto' (2 where this runtime can share memory
 * with a worker and has a second core, else 1).
 */
export type ThreadPreference = 1 | 2 | 'auto';

export interface SelectOptions {
  /** Default 1: threads are opt-in, since they keep a second core busy. */
  threads?: ThreadPreference;
}

/**
 * The reference kernels as a KernelSet, with the tiled product (tiled.ts: the same sums as the plain loop,
 * bit for bit, sooner). Nothing is cached, so there is nothing to invalidate.
 */
export const tsKernels: KernelSet = {
  ...tiledReferenceKernels,
  ...referenceLayerKernels,
  variant: 'ts',
  threads: 1,
  invalidate() {},
  invalidateAll() {},
  async ready() {},
  close() {},
};

/** Fastest first. */
const WASM_VARIANTS: readonly WasmVariant[] = ['wasm-relaxed-simd', 'wasm-simd'];

const DESCRIPTIONS: Record<KernelVariant, string> = {
  'wasm-relaxed-simd': 'WebAssembly 128-bit SIMD with fused multiply-add (relaxed SIMD)',
  'wasm-simd': 'WebAssembly 128-bit SIMD (multiply, then add)',
  ts: 'the readable TypeScript reference (float64 sums)',
};

/** One instance per build and thread count, so that every caller shares its packed weights. */
const instances = new Map<string, WasmKernelSet>();

/**
 * The WebAssembly kernels of one build on `threads` threads (fewer if this runtime cannot share memory
 * with workers: the set's `threads` says), or undefined when this runtime cannot run the build.
 */
export function wasmKernels(variant: WasmVariant, threads = 1): WasmKernelSet | undefined {
  if (!wasmVariantSupported(variant)) return undefined;
  if (sharedMemoryUnavailable()) threads = 1;
  const key = `${variant} ${threads}`;
  let kernels = instances.get(key);
  if (!kernels) {
    kernels = createWasmKernels(variant, threads);
    instances.set(key, kernels);
  }
  return kernels;
}

/** Cores this runtime reports (navigator.hardwareConcurrency in browsers and in Node ≥ 21). */
function cores(): number {
  const nodeProcess = (globalThis as { process?: NodeJS.Process }).process;
  if (nodeProcess?.versions?.node) {
    const os = nodeProcess.getBuiltinModule?.('node:os') as typeof import('node:os') | undefined;
    if (os) return os.availableParallelism();
  }
  return typeof navigator === 'object' ? (navigator.hardwareConcurrency ?? 1) : 1;
}

/** The thread count a preference means here. */
export function threadCount(preference: ThreadPreference = 1): number {
  if (preference !== 'auto') return preference;
  return cores() >= 2 && sharedMemoryUnavailable() === undefined ? 2 : 1;
}

/** `kernels` under a name that says what was asked for and why something else was chosen. */
function fallback(kernels: KernelSet, wanted: string): KernelSet {
  return { ...kernels, name: `${kernels.variant} (${wanted} unavailable)` };
}

/**
 * The kernels to use. Their `name` says what was chosen, and why when it is not what was asked for, e.g.
 * 'wasm-relaxed-simd', 'wasm-simd (wasm-relaxed-simd unavailable)', 'ts (WebAssembly SIMD unavailable)';
 * `variant` is the bare choice.
 */
export function selectKernels(
  preference: KernelPreference = 'auto',
  { threads = 1 }: SelectOptions = {},
): KernelSet {
  if (preference === 'ts') return tsKernels;
  const count = threadCount(threads);
  if (preference === 'auto' || preference === 'wasm') {
    for (const variant of WASM_VARIANTS) {
      const kernels = wasmKernels(variant, count);
      if (kernels) return kernels;
    }
    return preference === 'auto' ? tsKernels : fallback(tsKernels, 'WebAssembly SIMD');
  }
  const exact = wasmKernels(preference, count);
  if (exact) return exact;
  for (const variant of WASM_VARIANTS.slice(WASM_VARIANTS.indexOf(preference) + 1)) {
    const kernels = wasmKernels(variant, count);
    if (kernels) return fallback(kernels, preference);
  }
  return fallback(tsKernels, preference);
}

/** Every kernel set created so far forgets its packed weights (a new model's are packed at first use). */
export function invalidateAllKernels(): void {
  tsKernels.invalidateAll();
  for (const kernels of instances.values()) kernels.invalidateAll();
}

/** Stops the worker threads of every kernel set created so far (they keep working on one thread). */
export function closeKernels(): void {
  for (const kernels of instances.values()) kernels.close();
}

function isNode(): boolean {
  return typeof process === 'object' && typeof process.versions?.node === 'string';
}

/**
 * One line for the CLI and the UI: which kernels compute the products, on how many threads, and what this
 * runtime supports, e.g. "matrix kernels: wasm-relaxed-simd — WebAssembly 128-bit SIMD with fused
 * multiply-add (relaxed SIMD); threads: 1; this runtime: relaxed SIMD yes, SIMD yes, threads yes".
 */
export function describeKernels(kernels: KernelSet = selectKernels('auto')): string {
  const relaxed = wasmVariantSupported('wasm-relaxed-simd');
  const simd = wasmVariantSupported('wasm-simd');
  const noThreads = sharedMemoryUnavailable();
  let line =
    `matrix kernels: ${kernels.name} — ${DESCRIPTIONS[kernels.variant]}; threads: ${kernels.threads}; ` +
    `this runtime: relaxed SIMD ${relaxed ? 'yes' : 'no'}, SIMD ${simd ? 'yes' : 'no'}, ` +
    `threads ${noThreads ? `no (${noThreads})` : 'yes'}`;
  if (!relaxed && simd && isNode()) {
    line += ` (Node ${process.versions.node}: relaxed SIMD needs --experimental-wasm-relaxed-simd before Node 22)`;
  }
  return line;
}
