/**
 * The committed WebAssembly (src/kernels/wasm-binaries.ts) is exactly what the AssemblyScript sources
 * (src/kernels/*.as) compile to, so the source a reader opens is the code that runs. On failure:
 * `npm run build:kernels`.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compileKernels,
  KERNEL_BINARIES,
  readKernelSources,
  renderBinariesModule,
  repositoryRoot,
} from '../src/kernels/build.ts';
import { wasmBinary } from '../src/kernels/wasm.ts';

describe('the committed WebAssembly kernels', () => {
  it('are the bytes that the AssemblyScript sources compile to', async () => {
    const root = repositoryRoot();
    const binaries = await compileKernels(readKernelSources(root));
    const stale = 'src/kernels/wasm-binaries.ts is stale: run `npm run build:kernels`';
    expect(wasmBinary('wasm-simd'), stale).toEqual(binaries.simd);
    expect(wasmBinary('wasm-relaxed-simd'), stale).toEqual(binaries.relaxedSimd);
    expect(wasmBinary('wasm-simd', true), stale).toEqual(binaries.simdShared);
    expect(wasmBinary('wasm-relaxed-simd', true), stale).toEqual(binaries.relaxedSimdShared);
    expect(readFileSync(join(root, KERNEL_BINARIES), 'utf8'), stale).toBe(renderBinariesModule(binaries));
  });
});
