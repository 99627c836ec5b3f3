/**
 * Choosing the matrix kernels: the fastest WebAssembly build this runtime can run, or the readable
 * TypeScript reference. Both compute the same products (the WebAssembly ones in float32 SIMD lanes, so
 * they agree with the reference to about 1e-6 of the magnitude of each sum, not bit for bit).
 */
import { referenceKernels } from './reference.ts';
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

/** The reference kernels as a KernelSet: nothing is cached, so there is nothing to invalidate. */
export const tsKernels: KernelSet = {
  ...referenceKernels,
  variant: 'ts',
  invalidate() {},
  invalidateAll() {},
};

/** Fastest first. */
const WASM_VARIANTS: readonly WasmVariant[] = ['wasm-relaxed-simd', 'wasm-simd'];

const DESCRIPTIONS: Record<KernelVariant, string> = {
  'wasm-relaxed-simd': 'WebAssembly 128-bit SIMD with fused multiply-add (relaxed SIMD)',
  'wasm-simd': 'WebAssembly 128-bit SIMD (multiply, then add)',
  ts: 'the readable TypeScript reference (float64 sums)',
};

/** One instance per build, so that every caller shares its packed weights. */
const instances = new Map<WasmVariant, WasmKernelSet>();

/** The WebAssembly kernels of one build, or undefined when this runtime cannot run it. */
export function wasmKernels(variant: WasmVariant): WasmKernelSet | undefined {
  if (!wasmVariantSupported(variant)) return undefined;
  let kernels = instances.get(variant);
  if (!kernels) {
    kernels = createWasmKernels(variant);
    instances.set(variant, kernels);
  }
  return kernels;
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
export function selectKernels(preference: KernelPreference = 'auto'): KernelSet {
  if (preference === 'ts') return tsKernels;
  if (preference === 'auto' || preference === 'wasm') {
    for (const variant of WASM_VARIANTS) {
      const kernels = wasmKernels(variant);
      if (kernels) return kernels;
    }
    return preference === 'auto' ? tsKernels : fallback(tsKernels, 'WebAssembly SIMD');
  }
  const exact = wasmKernels(preference);
  if (exact) return exact;
  for (const variant of WASM_VARIANTS.slice(WASM_VARIANTS.indexOf(preference) + 1)) {
    const kernels = wasmKernels(variant);
    if (kernels) return fallback(kernels, preference);
  }
  return fallback(tsKernels, preference);
}

function isNode(): boolean {
  return typeof process === 'object' && typeof process.versions?.node === 'string';
}

/**
 * One line for the CLI and the UI: which kernels compute the products, and what this runtime supports,
 * e.g. "matrix kernels: wasm-relaxed-simd — WebAssembly 128-bit SIMD with fused multiply-add (relaxed
 * SIMD); this runtime: relaxed SIMD yes, SIMD yes".
 */
export function describeKernels(kernels: KernelSet = selectKernels('auto')): string {
  const relaxed = wasmVariantSupported('wasm-relaxed-simd');
  const simd = wasmVariantSupported('wasm-simd');
  let line =
    `matrix kernels: ${kernels.name} — ${DESCRIPTIONS[kernels.variant]}; ` +
    `this runtime: relaxed SIMD ${relaxed ? 'yes' : 'no'}, SIMD ${simd ? 'yes' : 'no'}`;
  if (!relaxed && simd && isNode()) {
    line += ` (Node ${process.versions.node}: relaxed SIMD needs --experimental-wasm-relaxed-simd before Node 22)`;
  }
  return line;
}
