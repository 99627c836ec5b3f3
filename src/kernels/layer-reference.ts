/**
 * The per-token operations of a Llama block other than the matrix products — RMSNorm, RoPE, attention and
 * SwiGLU's element-wise step — and softmax's sums over the vocabulary, as a set of kernels, like the
 * products in reference.ts.
 *
 * Their readable versions are the engine's own functions (src/engine/ops.ts, src/engine/attention.ts,
 * src/engine/sampling.ts):
 * those are the reference, and the WebAssembly twins in src/kernels/layer.as are tested against them.
 */
import { causalSelfAttention } from '../engine/attention.ts';
import { applyRopeRows, rmsNormRows, swiglu } from '../engine/ops.ts';
import { softmaxSumsRows } from '../engine/sampling.ts';
import type { MatrixKernels } from './reference.ts';

/** The operations; each has the signature of the engine function of the same name. */
export interface LayerKernels {
  rmsNormRows: typeof rmsNormRows;
  swiglu: typeof swiglu;
  applyRopeRows: typeof applyRopeRows;
  /**
   * With a `record` (tracing) it also writes the scores and weights it computed, so a traced pass gives
   * exactly the output of an untraced one.
   */
  causalSelfAttention: typeof causalSelfAttention;
  /** The max and denominator of softmax over each row of logits (the logit lens reads many rows). */
  softmaxSumsRows: typeof softmaxSumsRows;
}

/** Everything the forward pass calls: the products and the layer operations. */
export type EngineKernels = MatrixKernels & LayerKernels;

export const referenceLayerKernels: LayerKernels = {
  rmsNormRows,
  swiglu,
  applyRopeRows,
  causalSelfAttention,
  softmaxSumsRows,
};

/**
 * `kernels` with the reference filling in any layer operation it lacks: a caller may pass plain matrix
 * kernels (such as `referenceKernels`), and the forward pass still has every operation.
 */
export function withLayerKernels(kernels: MatrixKernels & Partial<LayerKernels>): EngineKernels {
  const complete =
    kernels.rmsNormRows &&
    kernels.swiglu &&
    kernels.applyRopeRows &&
    kernels.causalSelfAttention &&
    kernels.softmaxSumsRows;
  return complete ? (kernels as EngineKernels) : { ...referenceLayerKernels, ...kernels };
}
