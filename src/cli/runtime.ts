/**
 * Node-specific start-up for the CLI and scripts. Node 20 has WebAssembly relaxed SIMD (fused multiply-add)
 * behind a V8 flag that Node 22 turns on by default; setting it before the first module is compiled lets
 * `--kernels auto` pick the fastest build on every Node we support.
 */
import { setFlagsFromString } from 'node:v8';
import { wasmVariantSupported } from '../kernels/wasm.ts';

export function enableRelaxedSimd(): void {
  if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');
}
