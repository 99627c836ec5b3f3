/**
 * AdamW: Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch's torch.optim.AdamW computes it.
 *
 * For each parameter w with gradient g, at step t = 1, 2, …:
 *   m = β1·m + (1 − β1)·g            a running mean of the gradient (momentum)
 *   v = β2·v + (1 − β2)·g²           a running mean of its square (how large it usually is)
 *   m̂ = m/(1 − β1ᵗ), v̂ = v/(1 − β2ᵗ)  bias correction: m and v start at 0 and would be too small early on
 *   w = w − lr·(m̂/(√v̂ + eps) + λ·w)  a step of about lr per weight, plus decay toward 0
 * The decay λ·w is "decoupled": it is applied to the weight directly instead of being added to the gradient,
 * so Adam's per-weight scaling does not weaken it. Only the 2-D matrices (embeddings, projections,
 * classifier) decay; the RMSNorm gains (1-D) do not, as they scale activations and should stay near 1.
 *
 * The optimizer state is plain data — the step count and two arrays per parameter, named as in
 * namedParameters — so it can be saved beside a checkpoint and restored to resume training exactly.
 */
import type { FloatArray } from './ops.ts';
import { namedParameters, type ParameterTensor, type Weights } from './parameters.ts';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** The usual settings for language models (nanoGPT, Llama): β2 = 0.95 reacts faster than Adam's 0.999. */
export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

export interface AdamWState<A extends FloatArray = Float32Array> {
  /** Number of steps taken so far. */
  step: number;
  /** m for each parameter, by name ('tokenEmbedding', 'layers.0.wq', …). */
  firstMoment: Record<string, A>;
  /** v for each parameter, by name. */
  secondMoment: Record<string, A>;
}

/** Zero moments for every parameter of `weights`, in the same array type. */
export function createAdamWState<A extends FloatArray>(weights: Weights<A>): AdamWState<A> {
  const zeros = (t: ParameterTensor<A>) => new (t.data.constructor as new (n: number) => A)(t.data.length);
  const state: AdamWState<A> = { step: 0, firstMoment: {}, secondMoment: {} };
  for (const { name, tensor } of namedParameters(weights)) {
    state.firstMoment[name] = zeros(tensor);
    state.secondMoment[name] = zeros(tensor);
  }
  return state;
}

/** Throws unless `state` has a moment of the right length for every parameter of `weights` (after loading). */
export function checkAdamWState(state: AdamWState<FloatArray>, weights: Weights<FloatArray>): void {
  if (!(Number.isInteger(state.step) && state.step >= 0)) {
    throw new Error(`AdamW state: step must be a non-negative integer, got ${state.step}`);
  }
  const names = namedParameters(weights).map((p) => p.name);
  for (const moments of [state.firstMoment, state.secondMoment]) {
    const extra = Object.keys(moments).filter((name) => !names.includes(name));
    if (extra.length > 0) throw new Error(`AdamW state: moments for unknown parameters ${extra.join(', ')}`);
  }
  for (const { name, tensor } of namedParameters(weights)) {
    for (const moment of [state.firstMoment[name], state.secondMoment[name]]) {
      if (moment?.length !== tensor.data.length) {
        throw new Error(
          `AdamW state: ${name} needs moments of ${tensor.data.length} values, got ${moment?.length}`,
        );
      }
    }
  }
}

/** Whether AdamW decays this parameter: matrices yes, norm gains (1-D) no. */
export function decays(tensor: ParameterTensor<FloatArray>): boolean {
  return tensor.shape.length >= 2;
}

/** One AdamW update of every weight from its gradient, in place; advances state.step. */
export function adamwStep<A extends FloatArray>(
  state: AdamWState<A>,
  weights: Weights<A>,
  gradients: Weights<A>,
  learningRate: number,
  config: AdamWConfig = DEFAULT_ADAMW,
): void {
  state.step++;
  const gradientTensors = namedParameters(gradients);
  namedParameters(weights).forEach(({ name, tensor }, index) => {
    adamwUpdate(
      tensor.data,
      gradientTensors[index].tensor.data,
      state.firstMoment[name],
      state.secondMoment[name],
      state.step,
      learningRate,
      { ...config, weightDecay: decays(tensor) ? config.weightDecay : 0 },
    );
  });
}

/**
 * The update of one tensor w with gradient g and moments m, v at step t (1 for the first): the rule above,
 * element by element, in place. adamwStep calls it for every parameter; chapter 13 races it on two numbers.
 */
export function adamwUpdate(
  w: FloatArray,
  g: FloatArray,
  m: FloatArray,
  v: FloatArray,
  step: number,
  learningRate: number,
  { beta1, beta2, eps, weightDecay }: AdamWConfig,
): void {
  const firstCorrection = 1 - Math.pow(beta1, step);
  const secondCorrection = 1 - Math.pow(beta2, step);
  for (let i = 0; i < w.length; i++) {
    m[i] = beta1 * m[i] + (1 - beta1) * g[i];
    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
    const mHat = m[i] / firstCorrection;
    const vHat = v[i] / secondCorrection;
    w[i] -= learningRate * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * w[i]);
  }
}
