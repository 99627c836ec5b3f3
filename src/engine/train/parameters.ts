/**
 * The trainable parameters, seen as one list of named tensors.
 *
 * `Weights<A>` has exactly the structure of ModelWeights (a ModelWeights *is* a Weights<Float32Array>), but
 * the array type may also be Float64Array, for gradient checks. Gradients use the same structure: one
 * gradient tensor per weight tensor, and with a shared classifier `classifier` and `tokenEmbedding` are the
 * same object in the gradients too, so the classifier's gradient and the embedding's add up in one place.
 */
import { expectedShapes, type LayerWeights, type ModelConfig } from '../model.ts';
import type { FloatArray } from './ops.ts';

export interface ParameterTensor<A extends FloatArray = Float32Array> {
  data: A;
  shape: readonly number[];
}

export type LayerParameters<A extends FloatArray = Float32Array> = Record<
  keyof LayerWeights,
  ParameterTensor<A>
>;

export interface Weights<A extends FloatArray = Float32Array> {
  tokenEmbedding: ParameterTensor<A>;
  layers: LayerParameters<A>[];
  finalNorm: ParameterTensor<A>;
  /** The same object as tokenEmbedding when the classifier is shared (tied). */
  classifier: ParameterTensor<A>;
}

/** The order layer tensors are listed in: the order the forward pass uses them. */
export const LAYER_TENSORS: readonly (keyof LayerWeights)[] = [
  'attnNorm',
  'wq',
  'wk',
  'wv',
  'wo',
  'ffnNorm',
  'wGate',
  'wUp',
  'wDown',
];

export interface NamedParameter<A extends FloatArray = Float32Array> {
  /** e.g. 'tokenEmbedding', 'layers.3.wq', 'finalNorm', 'classifier'. */
  name: string;
  tensor: ParameterTensor<A>;
}

/** Every distinct parameter tensor once, in a fixed order (a shared classifier is not listed again). */
export function namedParameters<A extends FloatArray>(weights: Weights<A>): NamedParameter<A>[] {
  const list: NamedParameter<A>[] = [{ name: 'tokenEmbedding', tensor: weights.tokenEmbedding }];
  weights.layers.forEach((layer, l) => {
    for (const key of LAYER_TENSORS) list.push({ name: `layers.${l}.${key}`, tensor: layer[key] });
  });
  list.push({ name: 'finalNorm', tensor: weights.finalNorm });
  if (weights.classifier !== weights.tokenEmbedding) {
    list.push({ name: 'classifier', tensor: weights.classifier });
  }
  return list;
}

/** A copy of the structure with new arrays made by `makeArray` from each old one (sharing is kept). */
function mapWeights<A extends FloatArray, B extends FloatArray>(
  weights: Weights<A>,
  makeArray: (data: A) => B,
): Weights<B> {
  const map = (t: ParameterTensor<A>): ParameterTensor<B> => ({
    data: makeArray(t.data),
    shape: [...t.shape],
  });
  const tokenEmbedding = map(weights.tokenEmbedding);
  return {
    tokenEmbedding,
    layers: weights.layers.map(
      (layer) => Object.fromEntries(LAYER_TENSORS.map((key) => [key, map(layer[key])])) as LayerParameters<B>,
    ),
    finalNorm: map(weights.finalNorm),
    classifier: weights.classifier === weights.tokenEmbedding ? tokenEmbedding : map(weights.classifier),
  };
}

/** Zeros in the shape of `weights`, with the same array type: the gradients of those weights. */
export function zerosLike<A extends FloatArray>(weights: Weights<A>): Weights<A> {
  return mapWeights(weights, (data) => new (data.constructor as new (length: number) => A)(data.length));
}

/** A float64 copy (for gradient checks). */
export function toFloat64(weights: Weights<FloatArray>): Weights<Float64Array> {
  return mapWeights(weights, (data) => Float64Array.from(data));
}

/** A float32 copy. */
export function toFloat32(weights: Weights<FloatArray>): Weights<Float32Array> {
  return mapWeights(weights, (data) => Float32Array.from(data));
}

/** Whether weights of this structure fit `config`, shape by shape; throws naming the first that does not. */
export function checkWeights(config: ModelConfig, weights: Weights<FloatArray>): void {
  const shared = weights.classifier === weights.tokenEmbedding;
  if (shared !== config.sharedClassifier) {
    throw new Error(
      `weights: classifier is ${shared ? '' : 'not '}the embedding table, but config.sharedClassifier is ${config.sharedClassifier}`,
    );
  }
  if (weights.layers.length !== config.nLayers) {
    throw new Error(`weights: ${weights.layers.length} layers, config says ${config.nLayers}`);
  }
  for (const { name, tensor } of namedParameters(weights)) {
    const expected = expectedShape(config, name);
    const size = expected.reduce((a, b) => a * b, 1);
    if (tensor.shape.join(',') !== expected.join(',') || tensor.data.length !== size) {
      throw new Error(
        `weights: ${name} has shape [${tensor.shape.join(', ')}] (${tensor.data.length} values), expected [${expected.join(', ')}]`,
      );
    }
  }
}

function expectedShape(config: ModelConfig, name: string): number[] {
  const shapes = expectedShapes(config);
  if (name === 'tokenEmbedding' || name === 'classifier' || name === 'finalNorm') return shapes[name];
  return shapes.layer[name.split('.')[2] as keyof LayerWeights];
}

/**
 * target += scale·source, tensor by tensor. Averages gradients: of several micro-batches (gradient
 * accumulation) or of several workers' shares of one batch (each gradient being that share's mean, a
 * batch split into k equal shares has gradient (1/k)·Σ share gradients).
 */
export function addScaled<A extends FloatArray>(target: Weights<A>, source: Weights<A>, scale: number): void {
  const sources = namedParameters(source);
  namedParameters(target).forEach(({ name, tensor }, index) => {
    const from = sources[index];
    if (from.name !== name || from.tensor.data.length !== tensor.data.length) {
      throw new Error(`addScaled: ${name} does not match ${from.name}`);
    }
    for (let i = 0; i < tensor.data.length; i++) tensor.data[i] += scale * from.tensor.data[i];
  });
}
