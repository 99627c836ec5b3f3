/**
 * Chapter 13's analysis (src/analysis/learning.ts) held to independent arithmetic: the per-token loss to a
 * brute-force log-softmax and its mean to the trainer's loss; one weight's finite difference to
 * backpropagation (float32, within the tolerance derived below) and to a float64 difference; the tiny block's
 * gradients to hand formulas and to finite differences; the filter-normalised directions row by row; the
 * plane's loss and gradient to losses of weights built here and to differences along a and b; the
 * optimisers' first steps to their formulas; and the shipped landscape of the house model to a live
 * recomputation of some of its points and of its race's first steps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BLOCK_OPS,
  centralDifference,
  CHECK_FLOOR,
  DIRECTION_SEEDS,
  dot,
  filterNormalisedDirection,
  gridCoordinates,
  LossPlane,
  MOMENTUM,
  newOptimiser,
  optimiserStep,
  parameterNamed,
  parameterShapes,
  Race,
  RACE_ADAMW,
  textBatch,
  TINY_BLOCK_CONFIG,
  tinyBlockWalk,
} from '../src/analysis/learning.ts';
import { textSurprise } from '../src/analysis/surprise.ts';
import { LANDSCAPE_SETTINGS, VALLEY_MARGIN } from '../src/app/chapters/13-learning/landscape-settings.ts';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { readTextFile } from '../src/cli/text-input.ts';
import { tokenize, trainValidationSplit } from '../src/cli/train/run.ts';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { TrainingModel } from '../src/engine/train/model.ts';
import { namedParameters, toFloat64, zerosLike, type Weights } from '../src/engine/train/parameters.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { defaultKernels, smallConfig } from './helpers.ts';

const config = smallConfig({ sharedClassifier: true, ropeLayout: 'half' });
/** Weights of std 0.3: large enough that the loss moves visibly with each weight. */
const model = randomModel(config, 5, 0.3);
const TOKENS = [1, 7, 3, 22, 7, 41, 9, 3, 3, 18, 30, 2];

/** log Σ exp(z) − z[target] straight from the definition, in float64, no max subtracted. */
function bruteForceLoss(row: ArrayLike<number>, target: number): number {
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]);
  return Math.log(sum) - row[target];
}

describe('the loss of each token of a text', () => {
  it('is −log softmax(logits)[next token], and its mean is the trainer’s loss on the same tokens', () => {
    const { logits } = forward(model, TOKENS, new KVCache(config), {
      logits: 'all',
      kernels: referenceKernels,
    });
    const V = config.vocabSize;
    const result = textSurprise(TOKENS, logits, V);
    for (let t = 1; t < TOKENS.length; t++) {
      expect(result.surprise[t - 1]).toBeCloseTo(
        bruteForceLoss(logits.subarray((t - 1) * V, t * V), TOKENS[t]),
        10,
      );
    }
    const trainer = new TrainingModel(config, model.weights);
    // Two float32 pipelines (the engine's forward and the trainer's) agree to float32 rounding of a loss ≈ 4.
    expect(trainer.forward(textBatch(TOKENS))).toBeCloseTo(result.meanNll, 5);
    expect(() => textBatch([1])).toThrow(/predicts nothing/);
  });
});

describe('the parameters a reader can pick', () => {
  it('are the trainer’s tensors, with their shapes', () => {
    for (const tied of [true, false]) {
      const c = smallConfig({ sharedClassifier: tied });
      const weights = randomModel(c, 1).weights;
      const listed = parameterShapes(c);
      expect(listed.map((p) => p.name)).toEqual(namedParameters(weights).map((p) => p.name));
      listed.forEach((p) => expect(p.rows * p.cols).toBe(parameterNamed(weights, p.name).data.length));
    }
  });
});

describe('one weight’s gradient by finite differences', () => {
  const batch = textBatch(TOKENS);

  it('agrees with backpropagation in float32 where h is neither too large nor too small, and restores the weight', () => {
    const trainer = new TrainingModel(config, model.weights);
    trainer.forward(batch);
    const gradients = zerosLike(model.weights);
    trainer.backward(gradients);
    for (const [name, index] of [
      ['layers.0.wq', 37],
      ['layers.1.wDown', 500],
      ['tokenEmbedding', 7 * config.dim + 3],
      ['layers.1.ffnNorm', 4],
    ] as const) {
      const tensor = parameterNamed(model.weights, name);
      const before = tensor.data[index];
      const backprop = parameterNamed(gradients, name).data[index];
      const fd = centralDifference(() => trainer.forward(batch), tensor.data, index, 1e-2);
      expect(tensor.data[index]).toBe(before);
      // Tolerance. Truncation: h²·|L‴|/6, with |L‴| ≲ 10 for these weights (measured: the h = 1e-1 estimate
      // is off by < 2e-2), so < 2e-4 at h = 1e-2. Rounding: the float32 loss ≈ 4 carries ~1e-6 of noise
      // between two passes, /2h = 5e-5. Both under 1e-3 + 1e-2·|g|.
      expect(Math.abs(fd.estimate - backprop), name).toBeLessThan(1e-3 + 1e-2 * Math.abs(backprop));
      // The step the stored float32 weight really took is h up to float32 rounding of w ± h.
      expect(Math.abs(fd.step - 1e-2)).toBeLessThan(1e-8);
    }
  });

  it('at h = 1e-7, float32 rounding of the loss swamps it; in float64 the difference matches to 1e-6', () => {
    const name = 'layers.0.wv';
    const index = 100;
    const f64 = toFloat64(model.weights);
    const trainer64 = new TrainingModel(config, f64);
    trainer64.forward(batch);
    const gradients = zerosLike(f64);
    trainer64.backward(gradients);
    const exact = parameterNamed(gradients, name).data[index];
    const fd64 = centralDifference(
      () => trainer64.forward(batch),
      parameterNamed(f64, name).data,
      index,
      1e-6,
    );
    expect(Math.abs(fd64.estimate - exact)).toBeLessThan(1e-6 * Math.max(1, Math.abs(exact)));
    const trainer32 = new TrainingModel(config, model.weights);
    const tiny = centralDifference(
      () => trainer32.forward(batch),
      parameterNamed(model.weights, name).data,
      index,
      1e-7,
    );
    const good = centralDifference(
      () => trainer32.forward(batch),
      parameterNamed(model.weights, name).data,
      index,
      1e-2,
    );
    expect(Math.abs(tiny.estimate - exact)).toBeGreaterThan(Math.abs(good.estimate - exact));
  });
});

describe('backpropagation through the tiny block', () => {
  const walk = tinyBlockWalk();
  const { dim, vocabSize, seqLen } = TINY_BLOCK_CONFIG;

  it('shows every tensor its ops name, forward and backward', () => {
    for (const op of BLOCK_OPS) {
      for (const name of op.outputs) expect(walk.forward[name], name).toBeDefined();
      for (const name of op.gradients) expect(walk.gradients[name], name).toBeDefined();
      for (const name of op.weights) expect(walk.weightGradients[name], name).toBeDefined();
    }
    expect(walk.tokens).toHaveLength(seqLen + 1);
  });

  it('starts from the right numbers: embedding rows, per-position losses, dLogits = (softmax − onehot)/T', () => {
    const weights = randomModel(TINY_BLOCK_CONFIG, walk.seed, 0.5).weights;
    for (let t = 0; t < seqLen; t++) {
      const row = walk.forward.embeddings.values.slice(t * dim, (t + 1) * dim);
      const table = Array.from(
        weights.tokenEmbedding.data.subarray(walk.tokens[t] * dim, (walk.tokens[t] + 1) * dim),
      );
      row.forEach((value, i) => expect(value).toBeCloseTo(table[i], 6));
    }
    const logits = walk.forward.logits.values;
    const losses = walk.tokens
      .slice(1)
      .map((target, t) => bruteForceLoss(logits.slice(t * vocabSize, (t + 1) * vocabSize), target));
    losses.forEach((loss, t) => expect(walk.forward.loss.values[t]).toBeCloseTo(loss, 10));
    expect(walk.loss).toBeCloseTo(losses.reduce((a, b) => a + b) / seqLen, 10);
    walk.gradients.logits.values.forEach((g, i) => {
      const t = Math.floor(i / vocabSize);
      const row = logits.slice(t * vocabSize, (t + 1) * vocabSize);
      const sum = row.reduce((a, z) => a + Math.exp(z), 0);
      const onehot = i % vocabSize === walk.tokens[t + 1] ? 1 : 0;
      expect(g).toBeCloseTo((Math.exp(logits[i]) / sum - onehot) / seqLen, 12);
    });
    // The classifier's gradient by hand: dW[v, i] = Σ_t dLogits[t, v]·finalNorm[t, i].
    const dW = walk.weightGradients.classifier.values;
    const normed = walk.forward.finalNorm.values;
    for (const [v, i] of [
      [0, 0],
      [5, 3],
      [15, 7],
    ]) {
      let sum = 0;
      for (let t = 0; t < seqLen; t++)
        sum += walk.gradients.logits.values[t * vocabSize + v] * normed[t * dim + i];
      expect(dW[v * dim + i]).toBeCloseTo(sum, 12);
    }
  });

  it('has every gradient equal to central finite differences (float64, relative 1e-4)', () => {
    // Why 1e-4 with a floor of 1e-6: see tests/train-gradcheck.test.ts (the same h = 1e-5 in float64).
    expect(CHECK_FLOOR).toBe(1e-6);
    const names = [...Object.keys(walk.gradients), ...Object.keys(walk.weightGradients)];
    for (const name of names) expect(walk.checks[name], name).toBeLessThan(1e-4);
    // And the check is not vacuous: a wrong gradient fails it (a nudge of the embeddings by hand).
    const weights = toFloat64(randomModel(TINY_BLOCK_CONFIG, walk.seed, 0.5).weights);
    const trainer = new TrainingModel(TINY_BLOCK_CONFIG, weights);
    const batch = textBatch(walk.tokens);
    const t = walk.tokens
      .slice(0, seqLen)
      .findIndex((token, i, all) => all.indexOf(token) === i && all.lastIndexOf(token) === i);
    expect(t).toBeGreaterThanOrEqual(0);
    const element = walk.tokens[t] * dim + 2;
    const fd = centralDifference(() => trainer.forward(batch), weights.tokenEmbedding.data, element, 1e-5);
    expect(walk.gradients.embeddings.values[t * dim + 2]).toBeCloseTo(fd.estimate, 8);
  });
});

/** The weights at θ + a·d1 + b·d2, built here element by element, in float64. */
function pointWeights(theta: Weights, d1: Weights, d2: Weights, a: number, b: number): Weights<Float64Array> {
  const copy = zerosLike(toFloat64(theta));
  const [t, x, y] = [theta, d1, d2].map(namedParameters);
  namedParameters(copy).forEach(({ tensor }, k) => {
    for (let i = 0; i < tensor.data.length; i++) {
      tensor.data[i] = t[k].tensor.data[i] + a * x[k].tensor.data[i] + b * y[k].tensor.data[i];
    }
  });
  return copy;
}

describe('the loss landscape', () => {
  const batch = textBatch(TOKENS);

  it('uses filter-normalised directions: each matrix row as long as θ’s row, norm gains not moved', () => {
    const direction = filterNormalisedDirection(model.weights, 11);
    const thetaTensors = namedParameters(model.weights);
    namedParameters(direction).forEach(({ name, tensor }, k) => {
      const theta = thetaTensors[k].tensor;
      if (tensor.shape.length === 1) {
        expect(
          tensor.data.every((x) => x === 0),
          name,
        ).toBe(true);
        return;
      }
      const width = tensor.shape[1];
      for (let row = 0; row < tensor.shape[0]; row++) {
        let d = 0;
        let w = 0;
        for (let i = 0; i < width; i++) {
          d += tensor.data[row * width + i] ** 2;
          w += theta.data[row * width + i] ** 2;
        }
        expect(Math.sqrt(d) / Math.sqrt(w), `${name} row ${row}`).toBeCloseTo(1, 5);
      }
    });
    // Seeded: the same seed gives the same direction, another seed another (nearly orthogonal) one.
    const again = filterNormalisedDirection(model.weights, 11);
    expect(Array.from(again.layers[0].wq.data)).toEqual(Array.from(direction.layers[0].wq.data));
    const other = filterNormalisedDirection(model.weights, 12);
    const cosine = dot(direction, other) / Math.sqrt(dot(direction, direction) * dot(other, other));
    expect(Math.abs(cosine)).toBeLessThan(0.1);
  });

  it('gives the loss of θ + a·d1 + b·d2, and a gradient in the plane equal to differences along a and b', () => {
    const plane = new LossPlane(config, model.weights, batch, referenceKernels, [3, 4]);
    const trainer = new TrainingModel(config, model.weights);
    expect(plane.loss(0, 0)).toBe(trainer.forward(batch));
    for (const [a, b] of [
      [0.3, -0.2],
      [-0.5, 0.4],
    ]) {
      const here = new TrainingModel(config, pointWeights(model.weights, plane.d1, plane.d2, a, b));
      expect(plane.loss(a, b)).toBeCloseTo(here.forward(batch), 4);
      const { gradient } = plane.gradient(a, b);
      // Differences along a and b in float64, on weights built here: L(a ± h, b) and L(a, b ± h).
      const h = 1e-5;
      const at = (x: number, y: number) =>
        new TrainingModel(config, pointWeights(model.weights, plane.d1, plane.d2, x, y)).forward(batch);
      const alongA = (at(a + h, b) - at(a - h, b)) / (2 * h);
      const alongB = (at(a, b + h) - at(a, b - h)) / (2 * h);
      // Float64 differences of the exact function (truncation ~h², rounding ~1e-16/h: both < 1e-9); the
      // plane's gradient is the float32 trainer's, whose rounding is ~1e-6 relative.
      expect(Math.abs(gradient[0] - alongA)).toBeLessThan(1e-4 * Math.max(1, Math.abs(alongA)));
      expect(Math.abs(gradient[1] - alongB)).toBeLessThan(1e-4 * Math.max(1, Math.abs(alongB)));
    }
    // θ itself was never touched.
    expect(plane.loss(0, 0)).toBe(trainer.forward(batch));
  });

  it('steps SGD, momentum, Adam and AdamW by their formulas', () => {
    const start = [0.5, -0.25] as const;
    const g1 = [2, -0.5] as const;
    const g2 = [1, 0.25] as const;
    const lr = 0.1;
    const sgd = newOptimiser('sgd', start);
    optimiserStep(sgd, g1, lr);
    expect(Array.from(sgd.position)).toEqual([0.5 - 0.2, -0.25 + 0.05]);
    const momentum = newOptimiser('momentum', start);
    optimiserStep(momentum, g1, lr);
    optimiserStep(momentum, g2, lr);
    // v1 = g1, v2 = μ·g1 + g2; p2 = p0 − lr·(v1 + v2).
    const v2 = [MOMENTUM * g1[0] + g2[0], MOMENTUM * g1[1] + g2[1]];
    expect(momentum.position[0]).toBeCloseTo(start[0] - lr * (g1[0] + v2[0]), 12);
    expect(momentum.position[1]).toBeCloseTo(start[1] - lr * (g1[1] + v2[1]), 12);
    // Adam's first step: m̂ = g, v̂ = g², so each coordinate moves by lr·g/(|g| + ε), about lr.
    const { eps, weightDecay, beta1, beta2 } = RACE_ADAMW;
    const adam = newOptimiser('adam', start);
    optimiserStep(adam, g1, lr);
    for (let i = 0; i < 2; i++) {
      expect(adam.position[i]).toBeCloseTo(start[i] - (lr * g1[i]) / (Math.abs(g1[i]) + eps), 12);
    }
    // AdamW adds the decoupled decay lr·λ·w, w the position before the step.
    const adamw = newOptimiser('adamw', start);
    optimiserStep(adamw, g1, lr);
    for (let i = 0; i < 2; i++) {
      const adamStep = g1[i] / (Math.abs(g1[i]) + eps);
      expect(adamw.position[i]).toBeCloseTo(start[i] - lr * (adamStep + weightDecay * start[i]), 12);
    }
    // Its second step, with bias correction: m̂ = (β1·(1−β1)·g1 + (1−β1)·g2)/(1−β1²), likewise v̂.
    optimiserStep(adam, g2, lr);
    for (let i = 0; i < 2; i++) {
      const m = (beta1 * (1 - beta1) * g1[i] + (1 - beta1) * g2[i]) / (1 - beta1 ** 2);
      const v = (beta2 * (1 - beta2) * g1[i] ** 2 + (1 - beta2) * g2[i] ** 2) / (1 - beta2 ** 2);
      const first = start[i] - (lr * g1[i]) / (Math.abs(g1[i]) + eps);
      expect(adam.position[i]).toBeCloseTo(first - (lr * m) / (Math.sqrt(v) + eps), 12);
    }
  });
});

describe('the race', () => {
  /** A bowl L = a² + b², whose gradient is (2a, 2b): SGD's path is p·(1 − 2·lr)^k. */
  const bowl = {
    gradient: (a: number, b: number) => ({
      loss: a * a + b * b,
      gradient: [2 * a, 2 * b] as [number, number],
    }),
  };

  it('follows each optimiser’s rule from the gradient at each point, and stops one that leaves the map', () => {
    const race = new Race(bowl, { start: [0.8, -0.4], learningRate: 0.1 }, 3);
    for (let k = 0; k < 5; k++) race.step();
    race.paths.sgd.forEach((point, k) => {
      expect(point.a).toBeCloseTo(0.8 * 0.8 ** k, 12);
      expect(point.b).toBeCloseTo(-0.4 * 0.8 ** k, 12);
      expect(point.loss).toBeCloseTo(point.a ** 2 + point.b ** 2, 12);
    });
    const wild = new Race(bowl, { start: [0.8, -0.4], learningRate: 1.5 }, 3);
    for (let k = 0; k < 5; k++) wild.step();
    // SGD multiplies by (1 − 3) = −2 each step: 1.6, then 3.2, past the bound of 3.
    expect(wild.diverged.sgd).toBe(true);
    expect(wild.paths.sgd).toHaveLength(3);
    expect(Number.isNaN(wild.paths.sgd[2].loss)).toBe(true);
    // Adam's steps are about lr in size whatever the slope: it does not run away.
    expect(wild.diverged.adam).toBe(false);
  });

  it('steps the optimiser furthest behind, one at a time, to the same paths', () => {
    const together = new Race(bowl, { start: [0.5, 0.5], learningRate: 0.05 }, 3);
    const oneByOne = new Race(bowl, { start: [0.5, 0.5], learningRate: 0.05 }, 3);
    for (let k = 0; k < 3; k++) together.step();
    for (let k = 0; k < 12; k++) oneByOne.stepNext();
    expect(oneByOne.paths).toEqual(together.paths);
  });
});

const HOUSE = resolve(import.meta.dirname, '..', 'models', 'house');
const CORPUS = resolve(import.meta.dirname, '..', 'corpus', 'web.txt.gz');
const houseThere = existsSync(join(HOUSE, 'model.safetensors')) && existsSync(CORPUS);
if (!houseThere)
  console.warn('[glassbox tests] no house model or corpus: skipping the shipped landscape check');

describe.skipIf(!houseThere)('the shipped landscape of the house model', () => {
  it('holds the held-out batch, grid points and race steps that a live recomputation gives', async () => {
    const file = JSON.parse(
      readFileSync(resolve(import.meta.dirname, '..', 'src/app/chapters/13-learning/landscape.json'), 'utf8'),
    );
    const { model: house, tokenizer } = await loadModelAndTokenizer(HOUSE);
    const text = await readTextFile(CORPUS);
    const heldOut = trainValidationSplit(text).val[0];
    const tokens = Array.from(tokenize(tokenizer, [heldOut]).slice(0, LANDSCAPE_SETTINGS.positions + 1));
    expect(file.tokens).toEqual(tokens);
    expect(file.directionSeeds).toEqual([...DIRECTION_SEEDS]);
    const { size, range } = file;
    expect(file.losses).toHaveLength(size * size);
    const plane = new LossPlane(house.config, house.weights, textBatch(tokens), defaultKernels());
    const coordinates = gridCoordinates(range, size);
    const centre = (size - 1) / 2;
    for (const [row, col] of [
      [centre, centre],
      [0, 0],
      [size - 1, 3],
      [7, size - 2],
      [centre + 2, centre - 5],
    ]) {
      const live = plane.loss(coordinates[col], coordinates[row]);
      expect(file.losses[row * size + col], `row ${row}, col ${col}`).toBeCloseTo(live, 4);
    }
    // θ's own loss on the batch is the trainer's loss with the model's weights.
    const trainer = new TrainingModel(house.config, house.weights, { kernels: defaultKernels() });
    expect(file.losses[centre * size + centre]).toBeCloseTo(trainer.forward(textBatch(tokens)), 4);
    // The race: its first two steps recomputed live.
    const race = new Race(plane, file.race, LANDSCAPE_SETTINGS.bound);
    race.step();
    race.step();
    for (const name of Object.keys(file.race.paths) as (keyof typeof race.paths)[]) {
      race.paths[name].forEach((point, k) => {
        const [a, b, loss] = file.race.paths[name][k];
        expect(a).toBeCloseTo(point.a, 6);
        expect(b).toBeCloseTo(point.b, 6);
        expect(loss).toBeCloseTo(point.loss, 4);
      });
    }
  }, 120_000);

  it('races as chapter 13’s “too small, too large” says, at learning rates 0.001, 0.1 and 0.3', async () => {
    const file = JSON.parse(
      readFileSync(resolve(import.meta.dirname, '..', 'src/app/chapters/13-learning/landscape.json'), 'utf8'),
    );
    const { model: house } = await loadModelAndTokenizer(HOUSE);
    const plane = new LossPlane(house.config, house.weights, textBatch(file.tokens), defaultKernels());
    const floor = Math.min(...(file.losses as number[])) + VALLEY_MARGIN;
    const start = plane.loss(...LANDSCAPE_SETTINGS.race.start);
    const raced = (learningRate: number) => {
      const race = new Race(plane, { ...LANDSCAPE_SETTINGS.race, learningRate }, LANDSCAPE_SETTINGS.bound);
      for (let step = 0; step < LANDSCAPE_SETTINGS.raceSteps; step++) race.step();
      const summary = (name: keyof typeof race.paths) => {
        const path = race.paths[name];
        return {
          last: path.at(-1)!.loss,
          left: path.findIndex((point) => !Number.isFinite(point.loss)),
          floorAt: path.findIndex((point) => point.loss <= floor),
        };
      };
      return {
        sgd: summary('sgd'),
        momentum: summary('momentum'),
        adam: summary('adam'),
        adamw: summary('adamw'),
      };
    };
    // 0.001: Adam and AdamW crawl (still high on the wall), SGD gets most of the way down, momentum reaches the floor.
    const small = raced(0.001);
    for (const adam of [small.adam, small.adamw])
      expect(adam.last).toBeGreaterThan(start - (start - floor) / 4);
    expect(small.sgd.last).toBeLessThan(start - (start - floor) / 2);
    expect(small.sgd.floorAt).toBe(-1);
    expect(small.momentum.floorAt).toBeGreaterThan(0);
    // 0.1: SGD never lands on the floor and, after a few steps, leaves the map; momentum leaves within a few steps.
    const large = raced(0.1);
    expect(large.sgd.floorAt).toBe(-1);
    expect(large.sgd.left).toBeGreaterThan(3);
    expect(large.momentum.left).toBeGreaterThan(0);
    expect(large.momentum.left).toBeLessThanOrEqual(5);
    // 0.3: SGD leaves at its first step; Adam does not explode, reaches the floor, and does not stay on it.
    const huge = raced(0.3);
    expect(huge.sgd.left).toBe(1);
    expect(huge.adam.left).toBe(-1);
    expect(huge.adam.floorAt).toBeGreaterThan(0);
    expect(huge.adam.last).toBeGreaterThan(floor);
  }, 120_000);
});
