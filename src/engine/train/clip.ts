/**
 * Global gradient-norm clipping: if the gradient of all parameters together, seen as one long vector, is
 * longer than maxNorm, scale it down to exactly maxNorm. One bad batch then cannot throw the weights far.
 */
import type { FloatArray } from './ops.ts';
import { namedParameters, type Weights } from './parameters.ts';

/** ‖g‖₂ over every distinct gradient tensor (a shared classifier's gradient is counted once). */
export function gradientNorm(gradients: Weights<FloatArray>): number {
  let sumOfSquares = 0;
  for (const { tensor } of namedParameters(gradients)) {
    for (const g of tensor.data) sumOfSquares += g * g;
  }
  return Math.sqrt(sumOfSquares);
}

/** Scales the gradients to norm maxNorm when they are longer; returns the norm before clipping. */
export function clipGradientNorm(gradients: Weights<FloatArray>, maxNorm: number): number {
  const norm = gradientNorm(gradients);
  if (norm > maxNorm) {
    const scale = maxNorm / norm;
    for (const { tensor } of namedParameters(gradients)) {
      const g = tensor.data;
      for (let i = 0; i < g.length; i++) g[i] *= scale;
    }
  }
  return norm;
}
