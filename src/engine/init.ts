/**
 * Fresh models with random weights: for tests, benchmarks, and (later) the start of training.
 * Weights are drawn from a normal distribution with a small standard deviation (0.02, as GPT-2 and Llama
 * do); norm gains start at 1 so a fresh RMSNorm passes its input through.
 */
import {
  expectedShapes,
  validateConfig,
  type LayerWeights,
  type Model,
  type ModelConfig,
  type Tensor,
} from './model.ts';

/**
 * mulberry32: a tiny, fast 32-bit generator, seeded, for filling millions of weights (the 64-bit xorshift in
 * rng.ts is for sampling, where matching llama2.c matters more than speed).
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples by the Box–Muller transform. */
export function normalSampler(uniform: () => number): () => number {
  return () => {
    const u = 1 - uniform(); // in (0, 1], so log(u) is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

export function randomModel(config: ModelConfig, seed = 1, std = 0.02): Model {
  validateConfig(config, 'randomModel');
  const normal = normalSampler(mulberry32(seed));
  const shapes = expectedShapes(config);
  const random = (shape: number[]): Tensor => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = normal() * std;
    return { data, shape };
  };
  const ones = (shape: number[]): Tensor => ({ data: new Float32Array(shape[0]).fill(1), shape });

  const tokenEmbedding = random(shapes.tokenEmbedding);
  const layers: LayerWeights[] = Array.from({ length: config.nLayers }, () => ({
    attnNorm: ones(shapes.layer.attnNorm),
    wq: random(shapes.layer.wq),
    wk: random(shapes.layer.wk),
    wv: random(shapes.layer.wv),
    wo: random(shapes.layer.wo),
    ffnNorm: ones(shapes.layer.ffnNorm),
    wGate: random(shapes.layer.wGate),
    wUp: random(shapes.layer.wUp),
    wDown: random(shapes.layer.wDown),
  }));
  return {
    config,
    weights: {
      tokenEmbedding,
      layers,
      finalNorm: ones(shapes.finalNorm),
      classifier: config.sharedClassifier ? tokenEmbedding : random(shapes.classifier),
    },
  };
}

/** The shape of llama2.c's stories15M (without its weights): the benchmark's mid-size model. */
export const STORIES15M_SHAPE: ModelConfig = {
  dim: 288,
  hiddenDim: 768,
  nLayers: 6,
  nHeads: 6,
  nKvHeads: 6,
  vocabSize: 32000,
  seqLen: 256,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeLayout: 'interleaved',
  sharedClassifier: true,
};
