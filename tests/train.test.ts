/**
 * The trainer: its forward pass agrees with the inference engine, AdamW / the schedule / clipping compute
 * the textbook numbers, a short run learns, and everything is reproducible from its seed and saved state.
 */
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import type { ModelConfig } from '../src/engine/model.ts';
import { adamwStep, checkAdamWState, createAdamWState, type AdamWState } from '../src/engine/train/adamw.ts';
import { clipGradientNorm, gradientNorm } from '../src/engine/train/clip.ts';
import { BatchSampler, sequentialBatches, type Batch } from '../src/engine/train/data.ts';
import { TrainingModel } from '../src/engine/train/model.ts';
import { namedParameters, zerosLike, type Weights } from '../src/engine/train/parameters.ts';
import { learningRateAt, type ScheduleConfig, warmRestarts } from '../src/engine/train/schedule.ts';
import { LocalShardWorker, shardGradients, type ShardWorker } from '../src/engine/train/shards.ts';
import { evaluateLoss, trainStep, type TrainStepOptions } from '../src/engine/train/step.ts';
import { maxAbsDiff, smallConfig } from './helpers.ts';

const config = (overrides: Partial<ModelConfig> = {}): ModelConfig =>
  smallConfig({ hiddenDim: 64, vocabSize: 256, ropeLayout: 'half', sharedClassifier: true, ...overrides });

describe('the training forward pass computes what the inference engine computes', () => {
  // Attention here is written as matrix products and in the engine as loops, so the float32 sums round
  // differently: agreement to 1e-5, with the readable kernels and with the fast ones.
  const kernelSets = [referenceKernels, selectKernels('auto')];
  for (const ropeLayout of ['interleaved', 'half'] as const) {
    for (const sharedClassifier of [true, false]) {
      it(`${ropeLayout} RoPE, ${sharedClassifier ? 'tied' : 'untied'} classifier`, () => {
        const cfg = config({ vocabSize: 50, ropeLayout, sharedClassifier });
        // Large weights, so attention is far from uniform and position matters.
        const model = randomModel(cfg, 11, 0.3);
        const sequences = [
          [1, 17, 4, 33, 8, 8, 21, 49, 0, 12, 5, 30],
          [9, 9, 2, 40, 13, 7, 7, 7, 44, 1, 0, 25],
        ];
        const T = sequences[0].length;
        const batch: Batch = {
          batchSize: 2,
          seqLen: T,
          inputs: Int32Array.from(sequences.flat()),
          targets: new Int32Array(2 * T),
        };
        for (const kernels of kernelSets) {
          const trainer = new TrainingModel(cfg, model.weights, { kernels });
          trainer.forward(batch);
          sequences.forEach((tokens, b) => {
            const expected = forward(model, tokens, new KVCache(cfg), { logits: 'all', kernels }).logits;
            const actual = trainer.logits.subarray(b * T * cfg.vocabSize, (b + 1) * T * cfg.vocabSize);
            expect(maxAbsDiff(actual, expected), kernels.name).toBeLessThan(1e-5);
          });
        }
      });
    }
  }

  it('a smaller batch after a larger one (reused buffers) gives the same loss as a fresh model', () => {
    const cfg = config();
    const tokens = Uint8Array.from({ length: 400 }, (_, i) => (i * 37 + (i >> 3)) % 256);
    const [full, partial] = sequentialBatches(tokens, 8, 32);
    expect(partial.batchSize).toBe(4);
    const weights = randomModel(cfg, 2).weights;
    const reused = new TrainingModel(cfg, weights);
    reused.forward(full);
    expect(reused.forward(partial)).toBe(new TrainingModel(cfg, weights).forward(partial));
  });
});

describe('bad input gets a clear message', () => {
  const cfg = config();
  const model = new TrainingModel(cfg, randomModel(cfg, 1).weights);
  const batch = (inputs: number[], seqLen = inputs.length): Batch => ({
    batchSize: 1,
    seqLen,
    inputs: Int32Array.from(inputs),
    targets: new Int32Array(inputs.length),
  });

  it('names a token outside the vocabulary, a too-long sequence, and a backward pass without forward', () => {
    expect(() => model.backward(zerosLike(model.weights))).toThrow(/call forward first/);
    expect(() => model.forward(batch([1, 256, 3]))).toThrow(/token id 256 in batch.inputs is outside/);
    expect(() => model.forward(batch(new Array(33).fill(1)))).toThrow(/T must be 1 … seqLen \(32\)/);
    expect(() => model.forward(batch([1, 2, 3], 4))).toThrow(/batch.inputs has 3 ids, expected 4/);
  });

  it('rejects weights that do not fit the config', () => {
    const weights = randomModel(config({ sharedClassifier: false }), 1).weights;
    expect(() => new TrainingModel(cfg, weights)).toThrow(/config.sharedClassifier is true/);
    const narrow = randomModel(config({ hiddenDim: 48 }), 1).weights;
    expect(() => new TrainingModel(cfg, narrow)).toThrow(/layers.0.wGate has shape \[48, 32\]/);
  });
});

describe('AdamW', () => {
  it('takes one step by the hand-computed numbers: bias correction, decay on matrices only', () => {
    const cfg = config({ dim: 2, hiddenDim: 2, nLayers: 1, nHeads: 1, nKvHeads: 1, vocabSize: 2 });
    const weights = randomModel(cfg, 1).weights;
    const gradients = zerosLike(weights);
    weights.tokenEmbedding.data.set([0.5, -1, 2, 0]);
    gradients.tokenEmbedding.data.set([0.1, -0.2, 0, 3]);
    weights.finalNorm.data.set([1.5, 1]);
    gradients.finalNorm.data.set([0.4, 0]);
    const state = createAdamWState(weights);
    const hyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
    const lr = 0.01;
    adamwStep(state, weights, gradients, lr, hyper);

    // Step 1: m = 0.1·g, v = 0.05·g²; m̂ = m/0.1 = g, v̂ = v/0.05 = g²; so m̂/(√v̂ + eps) = g/(|g| + 1e-8).
    const adam = (g: number) => g / (Math.abs(g) + 1e-8);
    const matrix = (w: number, g: number) => w - lr * (adam(g) + 0.1 * w);
    const expectedEmbedding = [matrix(0.5, 0.1), matrix(-1, -0.2), matrix(2, 0), matrix(0, 3)];
    // Within float32 rounding (the moments are stored as float32); decay alone moves w = 0.5 by 5e-4.
    expectedEmbedding.forEach((w, i) => expect(weights.tokenEmbedding.data[i]).toBeCloseTo(w, 6));
    // The gain is not decayed: only the Adam step moves it, and a zero gradient leaves it where it was.
    expect(weights.finalNorm.data[0]).toBeCloseTo(1.5 - lr * adam(0.4), 6);
    expect(weights.finalNorm.data[1]).toBe(1);
    expect(state.firstMoment.tokenEmbedding[0]).toBeCloseTo(0.1 * 0.1, 8);
    expect(state.secondMoment.finalNorm[0]).toBeCloseTo(0.05 * 0.4 * 0.4, 8);

    // Step 2 with the same gradient: m = 0.19·g, v = 0.0975·g², corrections 0.19 and 0.0975, so again
    // m̂ = g and v̂ = g² — the bias correction makes a constant gradient give a constant step.
    const before = weights.finalNorm.data[0];
    adamwStep(state, weights, gradients, lr, hyper);
    expect(state.step).toBe(2);
    expect(weights.finalNorm.data[0]).toBeCloseTo(before - lr * adam(0.4), 7);
  });

  it('rejects a saved state that does not fit the model', () => {
    const weights = randomModel(config(), 1).weights;
    const state = createAdamWState(weights);
    expect(() => checkAdamWState(state, weights)).not.toThrow();
    state.firstMoment['layers.0.wq'] = new Float32Array(3);
    expect(() => checkAdamWState(state, weights)).toThrow(
      /layers\.0\.wq needs moments of 1024 values, got 3/,
    );
  });
});

describe('learning-rate schedule', () => {
  const schedule: ScheduleConfig = { maxLr: 1e-3, minLr: 1e-4, warmupSteps: 10, totalSteps: 110 };
  it('warms up linearly, then follows a cosine down to the floor', () => {
    expect(learningRateAt(0, schedule)).toBeCloseTo(1e-4, 15); // 1/10 of maxLr
    expect(learningRateAt(4, schedule)).toBeCloseTo(5e-4, 15);
    expect(learningRateAt(9, schedule)).toBeCloseTo(1e-3, 15); // end of warmup
    expect(learningRateAt(10, schedule)).toBeCloseTo(1e-3, 15); // cosine starts at the top
    expect(learningRateAt(60, schedule)).toBeCloseTo(5.5e-4, 15); // half way: the mean of max and min
    expect(learningRateAt(85, schedule)).toBeCloseTo(
      1e-4 + (9e-4 * (1 + Math.cos((Math.PI * 3) / 4))) / 2,
      15,
    );
    expect(learningRateAt(110, schedule)).toBeCloseTo(1e-4, 15);
    expect(learningRateAt(500, schedule)).toBe(1e-4);
  });

  it('finds where a resumed run stretched its schedule (the rate rising again after it fell), not the warm-up', () => {
    // A run of 110 steps, resumed at step 110 with --steps 210: from step 111 on, the cosine of 210 steps.
    const stretched: ScheduleConfig = { ...schedule, totalSteps: 210 };
    const log = Array.from({ length: 210 }, (_, i) => ({
      step: i + 1,
      lr: learningRateAt(i, i < 110 ? schedule : stretched),
    }));
    expect(warmRestarts(log)).toEqual([111]);
    expect(warmRestarts(log.slice(0, 110))).toEqual([]);
    // A run that ends in the warm-up, or sits on the floor, has no restart.
    expect(warmRestarts(log.slice(0, 8))).toEqual([]);
    expect(warmRestarts(log.slice(100, 110))).toEqual([]);
  });
});

describe('gradient clipping', () => {
  const weights = randomModel(config(), 1).weights;
  const fill = (gradients: Weights, value: number) => {
    for (const { tensor } of namedParameters(gradients)) tensor.data.fill(value);
  };
  const count = namedParameters(weights).reduce((n, p) => n + p.tensor.data.length, 0);

  it('scales a long gradient to exactly the maximum norm, and returns the norm before', () => {
    const gradients = zerosLike(weights);
    fill(gradients, 0.5);
    const norm = clipGradientNorm(gradients, 1);
    expect(norm).toBeCloseTo(0.5 * Math.sqrt(count), 9);
    expect(gradientNorm(gradients)).toBeCloseTo(1, 6);
    expect(gradients.layers[1].wUp.data[7]).toBeCloseTo(1 / Math.sqrt(count), 9);
  });

  it('leaves a short gradient alone, and counts a shared classifier once', () => {
    const gradients = zerosLike(weights);
    expect(gradients.classifier).toBe(gradients.tokenEmbedding);
    fill(gradients, 1e-4);
    expect(clipGradientNorm(gradients, 1)).toBeCloseTo(Math.fround(1e-4) * Math.sqrt(count), 12);
    expect(gradients.layers[0].wq.data[0]).toBe(Math.fround(1e-4));
  });
});

// About 900 bytes of plain English: the model learns from the first 700 and is judged on the rest.
const TEXT =
  'The little house stood at the end of the lane, where the road turned into a path and the path ' +
  'turned into the woods. Every morning the old woman who lived there opened the green door, looked at ' +
  'the sky, and said the same thing: the weather will do what the weather wants. Then she fed the hens, ' +
  'watered the beans, and sat on the step with a cup of tea. In the spring the children from the village ' +
  'came to see the lambs in the field behind the house. They ran along the fence and laughed, and the ' +
  'old woman laughed with them. In the summer the bees hummed in the roses and the days were long and ' +
  'slow. In the autumn the leaves fell on the roof and the path, and she swept them into a heap by the ' +
  'gate. In the winter the snow came down on the lane and the woods and the little house, and the old ' +
  'woman sat by the fire and told the cat the stories she had told the children, and the cat listened ' +
  'to every word, as a good cat does, and then it fell asleep by the warm fire.';

const bytes = new TextEncoder().encode(TEXT);
const trainTokens = bytes.subarray(0, 700);
const validationTokens = bytes.subarray(700);

/** Cross-entropy (nats) of the validation bytes under the training bytes' unigram counts, add-one smoothed. */
function unigramBaseline(): number {
  const counts = new Float64Array(256).fill(1);
  for (const b of trainTokens) counts[b]++;
  const total = trainTokens.length + 256;
  let sum = 0;
  for (const b of validationTokens) sum -= Math.log(counts[b] / total);
  return sum / validationTokens.length;
}

const runOptions: TrainStepOptions = {
  schedule: { maxLr: 1e-2, minLr: 1e-3, warmupSteps: 5, totalSteps: 50 },
  maxGradNorm: 1,
};

interface Run {
  model: TrainingModel;
  /** The whole batch as one shard, on this thread. */
  workers: ShardWorker[];
  shardGradients: Weights[];
  gradients: Weights;
  optimizer: AdamWState;
  sampler: BatchSampler;
}

function startRun(seed: number): Run {
  const cfg = config();
  const model = new TrainingModel(cfg, randomModel(cfg, seed).weights);
  const perShard = shardGradients(model.weights, 1);
  return {
    model,
    workers: [new LocalShardWorker(model, perShard)],
    shardGradients: perShard,
    gradients: zerosLike(model.weights),
    optimizer: createAdamWState(model.weights),
    sampler: new BatchSampler(trainTokens, 8, 32, seed),
  };
}

async function train(run: Run, steps: number): Promise<number[]> {
  const { workers, shardGradients, gradients, model, optimizer } = run;
  const losses: number[] = [];
  for (let i = 0; i < steps; i++) {
    const batch = run.sampler.next();
    const result = await trainStep(
      workers,
      shardGradients,
      gradients,
      model.weights,
      optimizer,
      batch,
      runOptions,
    );
    losses.push(result.loss);
  }
  return losses;
}

function allWeights(weights: Weights): number[] {
  return namedParameters(weights).flatMap(({ tensor }) => Array.from(tensor.data));
}

describe('training', () => {
  it('50 steps on a small English text bring validation loss below the unigram baseline', async () => {
    const run = startRun(1);
    const validation = sequentialBatches(validationTokens, 8, 32);
    const before = evaluateLoss(run.model, validation);
    const losses = await train(run, 50);
    const after = evaluateLoss(run.model, validation);
    const baseline = unigramBaseline();
    expect(before).toBeGreaterThan(Math.log(256) - 0.1); // a fresh model guesses uniformly
    expect(after).toBeLessThan(baseline);
    expect(losses[49]).toBeLessThan(losses[0]);
  });

  it('is deterministic: the same seed gives bit-identical losses and weights', async () => {
    const [a, b] = [startRun(5), startRun(5)];
    expect(await train(a, 6)).toEqual(await train(b, 6));
    expect(allWeights(a.model.weights)).toEqual(allWeights(b.model.weights));
  });

  it('resumes exactly from saved weights, optimizer state and sampler state', async () => {
    const uninterrupted = startRun(7);
    await train(uninterrupted, 4);
    // "Save" after 4 steps: copies of the weights, the AdamW moments and step, and the sampler position.
    const savedWeights = allWeights(uninterrupted.model.weights);
    const savedOptimizer = structuredClone(uninterrupted.optimizer);
    const savedSampler = uninterrupted.sampler.getState();
    const expected = await train(uninterrupted, 3);

    const resumed = startRun(999); // different initial weights and sampler seed: everything must come from the save
    let offset = 0;
    for (const { tensor } of namedParameters(resumed.model.weights)) {
      tensor.data.set(savedWeights.slice(offset, offset + tensor.data.length));
      offset += tensor.data.length;
    }
    checkAdamWState(savedOptimizer, resumed.model.weights);
    resumed.optimizer = savedOptimizer;
    resumed.sampler.setState(savedSampler);
    expect(await train(resumed, 3)).toEqual(expected);
    expect(allWeights(resumed.model.weights)).toEqual(allWeights(uninterrupted.model.weights));
  });
});

describe('batches', () => {
  const tokens = Int32Array.from({ length: 300 }, (_, i) => (i * 7) % 256);

  it('pair every input with the token that follows it', () => {
    const batch = new BatchSampler(tokens, 4, 16, 3).next();
    for (let i = 0; i < batch.inputs.length; i++) {
      const position = tokens.indexOf(batch.inputs[i]);
      expect(batch.targets[i]).toBe(tokens[position + 1]);
    }
  });

  it('continue identically from a restored sampler state', () => {
    const sampler = new BatchSampler(tokens, 4, 16, 42);
    sampler.next();
    sampler.next();
    const state = sampler.getState();
    const expected = [sampler.next(), sampler.next()];
    const restored = new BatchSampler(tokens, 4, 16, 1);
    restored.setState(state);
    expect([restored.next(), restored.next()]).toEqual(expected);
    expect(new BatchSampler(tokens, 4, 16, 43).next()).not.toEqual(
      new BatchSampler(tokens, 4, 16, 42).next(),
    );
  });

  it('cover a validation text with non-overlapping windows', () => {
    const batches = sequentialBatches(tokens, 4, 16);
    expect(batches.map((b) => b.batchSize)).toEqual([4, 4, 4, 4, 2]); // 299 targets hold 18 windows
    expect(batches[4].targets[31]).toBe(tokens[18 * 16]);
  });
});
