/**
 * "The code that ran", kept true. The chapters show the engine's readable functions; with the WebAssembly
 * kernels (the default where the browser has SIMD) the numbers on the page were computed by their twins in
 * src/kernels/*.as, and with the TypeScript kernels the matrix products run in the tiled loop of tiled.ts
 * (same sums, bit for bit, sooner). Tests hold every twin to the readable function. This table says, for each
 * shown function, which code computes it under each choice, so a code excerpt can say so and show it.
 */
import type { Excerpt } from '../build/plugins.ts';
import gemmPart from '../../kernels/matmul.as?symbol=gemmPart&excerpt';
import tiledProduct from '../../kernels/tiled.ts?symbol=tiledMatmulTransposedB&excerpt';
import rmsNormRowsAs from '../../kernels/layer.as?symbol=rmsNormRows&excerpt';
import swigluAs from '../../kernels/layer.as?symbol=swiglu&excerpt';
import ropeRowsAs from '../../kernels/layer.as?symbol=ropeRows&excerpt';
import attentionAs from '../../kernels/layer.as?symbol=causalSelfAttention&excerpt';
import softmaxSumsAs from '../../kernels/layer.as?symbol=softmaxSumsRows&excerpt';
import quantPart from '../../kernels/quant.as?symbol=quantPart&excerpt';
import quantGroup from '../../kernels/quant.as?symbol=group4&excerpt';
import runqRow from '../../kernels/quant.as?symbol=runqRow&excerpt';
import quantizeQ8_0As from '../../kernels/quant.as?symbol=quantizeRowsQ8_0&excerpt';

/** The code that computes a shown function under each kernel choice; absent: the function itself. */
export interface KernelTwins {
  /** With the WebAssembly kernels. */
  wasm?: Excerpt[];
  /** With the TypeScript kernels. */
  ts?: Excerpt[];
}

const PRODUCTS: KernelTwins = { wasm: [gemmPart], ts: [tiledProduct] };
const LAYER_OPERATIONS: KernelTwins = {
  wasm: [gemmPart, rmsNormRowsAs, ropeRowsAs, attentionAs, swigluAs],
  ts: [tiledProduct],
};

/** By "file#symbol" of the readable function a page shows. */
const TWINS: Record<string, KernelTwins> = {
  'src/kernels/reference.ts#matmulTransposedB': PRODUCTS,
  'src/engine/forward.ts#forward': LAYER_OPERATIONS,
  'src/engine/forward.ts#attentionBlock': {
    wasm: [gemmPart, rmsNormRowsAs, ropeRowsAs, attentionAs],
    ts: [tiledProduct],
  },
  'src/engine/forward.ts#feedForwardBlock': { wasm: [gemmPart, rmsNormRowsAs, swigluAs], ts: [tiledProduct] },
  'src/engine/ops.ts#rmsNorm': { wasm: [rmsNormRowsAs] },
  'src/engine/ops.ts#rmsNormRows': { wasm: [rmsNormRowsAs] },
  'src/engine/ops.ts#silu': { wasm: [swigluAs] },
  'src/engine/ops.ts#swiglu': { wasm: [swigluAs] },
  'src/engine/ops.ts#applyRope': { wasm: [ropeRowsAs] },
  'src/engine/ops.ts#applyRopeRows': { wasm: [ropeRowsAs] },
  'src/engine/attention.ts#causalSelfAttention': { wasm: [attentionAs] },
  'src/engine/sampling.ts#softmaxSumsRows': { wasm: [softmaxSumsAs] },
  'src/analysis/lens.ts#logitLens': { wasm: [gemmPart, rmsNormRowsAs, softmaxSumsAs], ts: [tiledProduct] },
  // Quantized weights: with the TypeScript kernels the readable products themselves run.
  'src/engine/quant-matmul.ts#linear': {
    wasm: [gemmPart, quantizeQ8_0As, quantPart, quantGroup],
    ts: [tiledProduct],
  },
  'src/engine/quant-matmul.ts#quantizedMatmul': {
    wasm: [quantizeQ8_0As, quantPart, quantGroup, runqRow, gemmPart],
  },
  'src/engine/quant-matmul.ts#matmulQ8_0': { wasm: [quantizeQ8_0As, quantPart, quantGroup] },
  'src/engine/quant-matmul.ts#matmulQ4_0': { wasm: [quantizeQ8_0As, quantPart, quantGroup] },
  'src/engine/quant-matmul.ts#matmulQ4_1': { wasm: [quantPart, quantGroup] },
  'src/engine/quant-matmul.ts#matmulRunq': { wasm: [quantPart, runqRow] },
  'src/engine/quant-matmul.ts#matmulWidened': { wasm: [gemmPart] },
};

/** Which family of kernels a describeKernels line names ("matrix kernels: wasm-simd — …" → 'wasm'). */
export function kernelFamily(description: string | undefined): 'wasm' | 'ts' | undefined {
  const name = /^matrix kernels: (\S+)/.exec(description ?? '')?.[1];
  if (!name) return undefined;
  return name.startsWith('wasm') ? 'wasm' : 'ts';
}

/** The code that computed `excerpt`'s numbers under `family`, when it is not the excerpt itself. */
export function twinsOf(
  excerpt: Pick<Excerpt, 'file' | 'symbol'>,
  family: 'wasm' | 'ts' | undefined,
): Excerpt[] {
  if (!family) return [];
  return TWINS[`${excerpt.file}#${excerpt.symbol}`]?.[family] ?? [];
}
