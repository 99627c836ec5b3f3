/**
 * Chapter 13 (learning), as pure functions over the trainer of src/engine/train: the text as a training
 * batch; one weight's gradient by central finite differences, to set beside backpropagation; a tiny block's
 * forward and backward passes, tensor by tensor, each gradient checked by finite differences; two random
 * filter-normalised directions through the weights (Li et al. 2018, "Visualizing the Loss Landscape of
 * Neural Nets"), the loss on the plane they span and its gradient in that plane; and SGD, momentum, Adam and
 * AdamW stepping on that plane. No I/O; the page's worker and the tests call the same functions.
 *
 * The per-token loss itself is `textSurprise` (surprise.ts): −ln softmax(logits)[next token], whose mean
 * over a text is the trainer's cross-entropy loss on it.
 */
import { mulberry32, normalSampler, randomModel } from '../engine/init.ts';
import { expectedShapes, type ModelConfig } from '../engine/model.ts';
import { adamwUpdate, DEFAULT_ADAMW, type AdamWConfig } from '../engine/train/adamw.ts';
import type { Batch } from '../engine/train/data.ts';
import { TrainingModel, type TrainingKernels } from '../engine/train/model.ts';
import type { FloatArray } from '../engine/train/ops.ts';
import {
  LAYER_TENSORS,
  namedParameters,
  toFloat64,
  zerosLike,
  type ParameterTensor,
  type Weights,
} from '../engine/train/parameters.ts';

// ---------------------------------------------------------------------------------------------------------
// The reader's text as a batch: one sequence, every token but the last as input, each next token as target.

/** The batch the trainer would see for this text: inputs tokens[0 … T−2], targets tokens[1 … T−1]. */
export function textBatch(tokens: readonly number[]): Batch {
  if (tokens.length < 2) throw new Error('textBatch: a text of one token predicts nothing');
  const seqLen = tokens.length - 1;
  return {
    batchSize: 1,
    seqLen,
    inputs: Int32Array.from(tokens.slice(0, seqLen)),
    targets: Int32Array.from(tokens.slice(1)),
  };
}

// ---------------------------------------------------------------------------------------------------------
// One weight's gradient by central finite differences: nudge the weight by ±h, run the loss twice.

/** The step sizes the page tries, from too large (the curve bends within ±h) to too small (rounding). */
export const FINITE_DIFFERENCE_STEPS = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7] as const;

export interface FiniteDifference {
  /** The step asked for. */
  h: number;
  /** Half the step the stored weight really took, (w₊ − w₋)/2: a float32 weight rounds w ± h. */
  step: number;
  /** L(w + h) and L(w − h). */
  plus: number;
  minus: number;
  /** (L(w + h) − L(w − h)) / (w₊ − w₋): the slope of the loss along this one weight. */
  estimate: number;
}

/**
 * The central difference of `loss` in element `index` of `data`, with the weight restored exactly after.
 * `changed` is called after every write (a kernel set that caches packed weights must forget them).
 * Dividing by the step the stored weight really took, not 2h, keeps the weight's own rounding out of the
 * estimate; what is left at tiny h is the rounding of the loss, ~ε·L/h.
 */
export function centralDifference(
  loss: () => number,
  data: FloatArray,
  index: number,
  h: number,
  changed: () => void = () => {},
): FiniteDifference {
  const saved = data[index];
  const at = (value: number) => {
    data[index] = value;
    changed();
    return { value: data[index], loss: loss() };
  };
  try {
    const plus = at(saved + h);
    const minus = at(saved - h);
    return {
      h,
      step: (plus.value - minus.value) / 2,
      plus: plus.loss,
      minus: minus.loss,
      estimate: (plus.loss - minus.loss) / (plus.value - minus.value),
    };
  } finally {
    data[index] = saved;
    changed();
  }
}

/** The parameter called `name` ('tokenEmbedding', 'layers.0.wq', 'finalNorm', 'classifier'). */
export function parameterNamed<A extends FloatArray>(weights: Weights<A>, name: string): ParameterTensor<A> {
  const found = namedParameters(weights).find((parameter) => parameter.name === name);
  if (!found) throw new Error(`no parameter called ${name}`);
  return found.tensor;
}

/**
 * Every parameter tensor's name and shape for `config`, in namedParameters' order (a tied classifier is the
 * embedding table and not listed again); a norm gain's shape is [1, dim] here: one row of weights.
 */
export function parameterShapes(config: ModelConfig): { name: string; rows: number; cols: number }[] {
  const shapes = expectedShapes(config);
  const entry = (name: string, shape: number[]) => ({
    name,
    rows: shape.length > 1 ? shape[0] : 1,
    cols: shape[shape.length - 1],
  });
  return [
    entry('tokenEmbedding', shapes.tokenEmbedding),
    ...Array.from({ length: config.nLayers }, (_, l) =>
      LAYER_TENSORS.map((key) => entry(`layers.${l}.${key}`, shapes.layer[key])),
    ).flat(),
    entry('finalNorm', shapes.finalNorm),
    ...(config.sharedClassifier ? [] : [entry('classifier', shapes.classifier)]),
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Backpropagation through one block of a tiny model, step by step, in float64.

/** Small enough to show every number: 4 positions, width 8, two heads, a feed-forward width of 16. */
export const TINY_BLOCK_CONFIG: ModelConfig = {
  dim: 8,
  hiddenDim: 16,
  nLayers: 1,
  nHeads: 2,
  nKvHeads: 2,
  vocabSize: 16,
  seqLen: 4,
  normEps: 1e-5,
  ropeTheta: 10000,
  ropeLayout: 'half',
  sharedClassifier: false,
};
export const TINY_BLOCK_SEED = 13;
/**
 * The weights' spread: 0.5, as the trainer's gradient checks use, so that every path carries a visible
 * gradient (at the trainer's usual 0.02 the attention would be nearly uniform and its gradients tiny).
 */
const TINY_BLOCK_STD = 0.5;

/** One op of the block: its forward and backward functions in ops.ts, and what each writes. */
export interface BlockOp {
  id: string;
  title: string;
  /** The ops.ts functions of the forward step and of its backward step. */
  forward: string[];
  backward: string[];
  /** The tensors the forward step computes (Trace names; 'loss' for the per-position losses). */
  outputs: string[];
  /** The activations whose gradients the backward step completes (the gradient of its inputs). */
  gradients: string[];
  /** The parameters whose gradients the backward step writes. */
  weights: string[];
}

/** The ops of a one-layer model, in forward order; the backward pass runs them from the last to the first. */
export const BLOCK_OPS: readonly BlockOp[] = [
  {
    id: 'embedding',
    title: 'Embedding lookup',
    forward: ['embeddingForward'],
    backward: ['embeddingBackward'],
    outputs: ['embeddings'],
    gradients: [],
    weights: ['tokenEmbedding'],
  },
  {
    id: 'attn-norm',
    title: 'RMSNorm before attention',
    forward: ['rmsNormForward'],
    backward: ['rmsNormBackward'],
    outputs: ['layers[0].attnNorm'],
    gradients: ['embeddings'],
    weights: ['layers.0.attnNorm'],
  },
  {
    id: 'qkv',
    title: 'Query, key and value projections',
    forward: ['linearForward'],
    backward: ['linearBackward'],
    outputs: ['layers[0].q', 'layers[0].k', 'layers[0].v'],
    gradients: ['layers[0].attnNorm'],
    weights: ['layers.0.wq', 'layers.0.wk', 'layers.0.wv'],
  },
  {
    id: 'rope',
    title: 'RoPE on queries and keys',
    forward: ['ropeForward'],
    backward: ['ropeBackward'],
    outputs: ['layers[0].qRope', 'layers[0].kRope'],
    gradients: ['layers[0].q', 'layers[0].k'],
    weights: [],
  },
  {
    id: 'attention',
    title: 'Causal attention',
    forward: ['attentionForward', 'attentionGroupForward', 'causalSoftmax'],
    backward: ['attentionBackward', 'attentionGroupBackward', 'causalSoftmaxBackward'],
    outputs: ['layers[0].weights', 'layers[0].attnOutput'],
    gradients: ['layers[0].qRope', 'layers[0].kRope', 'layers[0].v'],
    weights: [],
  },
  {
    id: 'wo',
    title: 'Output projection and residual add',
    forward: ['linearForward', 'addInto'],
    backward: ['linearBackward'],
    outputs: ['layers[0].attnProjected', 'layers[0].residualAfterAttn'],
    gradients: ['layers[0].attnOutput'],
    weights: ['layers.0.wo'],
  },
  {
    id: 'ffn-norm',
    title: 'RMSNorm before the feed-forward block',
    forward: ['rmsNormForward'],
    backward: ['rmsNormBackward'],
    outputs: ['layers[0].ffnNorm'],
    gradients: ['layers[0].residualAfterAttn'],
    weights: ['layers.0.ffnNorm'],
  },
  {
    id: 'gate-up',
    title: 'Gate and up projections',
    forward: ['linearForward'],
    backward: ['linearBackward'],
    outputs: ['layers[0].ffnGate', 'layers[0].ffnUp'],
    gradients: ['layers[0].ffnNorm'],
    weights: ['layers.0.wGate', 'layers.0.wUp'],
  },
  {
    id: 'swiglu',
    title: 'SwiGLU: silu(gate) ⊙ up',
    forward: ['swigluForward', 'swigluLoop'],
    backward: ['swigluBackward', 'swigluBackwardLoop'],
    outputs: ['layers[0].ffnActivation'],
    gradients: ['layers[0].ffnGate', 'layers[0].ffnUp'],
    weights: [],
  },
  {
    id: 'down',
    title: 'Down projection and residual add',
    forward: ['linearForward', 'addInto'],
    backward: ['linearBackward'],
    outputs: ['layers[0].ffnOutput', 'layers[0].residualAfterFfn'],
    gradients: ['layers[0].ffnActivation'],
    weights: ['layers.0.wDown'],
  },
  {
    id: 'final-norm',
    title: 'Final RMSNorm',
    forward: ['rmsNormForward'],
    backward: ['rmsNormBackward'],
    outputs: ['finalNorm'],
    gradients: ['layers[0].residualAfterFfn'],
    weights: ['finalNorm'],
  },
  {
    id: 'classifier',
    title: 'Classifier: logits',
    forward: ['linearForward'],
    backward: ['linearBackward'],
    outputs: ['logits'],
    gradients: ['finalNorm'],
    weights: ['classifier'],
  },
  {
    id: 'loss',
    title: 'Cross-entropy loss',
    forward: ['crossEntropyForward', 'logSumExpRows'],
    backward: ['crossEntropyBackward', 'softmaxGradientRows'],
    outputs: ['loss'],
    gradients: ['logits'],
    weights: [],
  },
];

export interface ShownTensor {
  shape: number[];
  values: number[];
}

export interface TinyBlockWalk {
  config: ModelConfig;
  seed: number;
  /** The 5 token ids: inputs are the first 4, targets the last 4. */
  tokens: number[];
  loss: number;
  /** Every forward tensor by its Trace name, and 'loss': each position's −ln p(target). */
  forward: Record<string, ShownTensor>;
  /** The gradient of the loss with respect to each activation, by the activation's name. */
  gradients: Record<string, ShownTensor>;
  /** The gradient with respect to each parameter, by parameter name. */
  weightGradients: Record<string, ShownTensor>;
  /**
   * For each activation and parameter gradient: the largest |backprop − finite difference| /
   * max(|backprop|, |finite difference|, CHECK_FLOOR) over its elements.
   */
  checks: Record<string, number>;
}

/** Finite-difference step of the tiny block's checks (float64: truncation ~h², rounding ~1e-16/h). */
export const CHECK_STEP = 1e-5;
/** Gradients below this are compared in absolute terms: at h = 1e-5 the difference itself is ~1e-10. */
export const CHECK_FLOOR = 1e-6;

/**
 * The tiny block's whole story: a seeded random one-layer model, 4 seeded tokens predicting the next 4,
 * the forward pass (every tensor the trainer computes, observed as it is computed), the backward pass (every
 * activation's gradient, observed as it is completed, and every weight's), and each gradient checked
 * element by element against central finite differences of the same trainer's loss.
 */
export function tinyBlockWalk(seed = TINY_BLOCK_SEED): TinyBlockWalk {
  const config = TINY_BLOCK_CONFIG;
  const weights = toFloat64(randomModel(config, seed, TINY_BLOCK_STD).weights);
  const random = mulberry32(seed + 1);
  const tokens = Array.from({ length: config.seqLen + 1 }, () => Math.floor(random() * config.vocabSize));
  const batch = textBatch(tokens);
  const model = new TrainingModel(config, weights);
  const copy = (data: Float64Array, shape: readonly number[]): ShownTensor => ({
    shape: [...shape],
    values: Array.from(data),
  });

  const forward: Record<string, ShownTensor> = {};
  const loss = model.forward(batch, (name, data, shape) => (forward[name] = copy(data, shape)));
  forward.loss = { shape: [config.seqLen], values: rowLosses(forward.logits.values, tokens.slice(1)) };
  const gradients: Record<string, ShownTensor> = {};
  const weightGradients: Record<string, ShownTensor> = {};
  const grads = zerosLike(weights);
  model.backward(grads, (name, data, shape) => (gradients[name] = copy(data, shape)));
  for (const { name, tensor } of namedParameters(grads))
    weightGradients[name] = copy(tensor.data, tensor.shape);

  const checks: Record<string, number> = {};
  // An activation's gradient: nudge one element as the forward pass computes it, and let the pass go on.
  for (const [name, gradient] of Object.entries(gradients)) {
    let worst = 0;
    gradient.values.forEach((analytic, i) => {
      const nudged = (h: number) =>
        model.forward(batch, (seen, data) => {
          if (seen === name) data[i] += h;
        });
      const numeric = (nudged(CHECK_STEP) - nudged(-CHECK_STEP)) / (2 * CHECK_STEP);
      worst = Math.max(worst, relativeDifference(analytic, numeric));
    });
    checks[name] = worst;
  }
  for (const { name, tensor } of namedParameters(weights)) {
    let worst = 0;
    weightGradients[name].values.forEach((analytic, i) => {
      const numeric = centralDifference(() => model.forward(batch), tensor.data, i, CHECK_STEP).estimate;
      worst = Math.max(worst, relativeDifference(analytic, numeric));
    });
    checks[name] = worst;
  }
  return { config, seed, tokens, loss, forward, gradients, weightGradients, checks };
}

function relativeDifference(analytic: number, numeric: number): number {
  return Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), CHECK_FLOOR);
}

/** −ln softmax(row)[target] of each row of `logits` (rows of equal length, one per target). */
function rowLosses(logits: readonly number[], targets: readonly number[]): number[] {
  const width = logits.length / targets.length;
  return targets.map((target, row) => {
    const values = logits.slice(row * width, (row + 1) * width);
    const max = Math.max(...values);
    const sum = values.reduce((total, z) => total + Math.exp(z - max), 0);
    return Math.log(sum) - (values[target] - max);
  });
}

// ---------------------------------------------------------------------------------------------------------
// The loss landscape: L(θ + a·d1 + b·d2) over a plane through the trained weights θ.

/**
 * A random direction through the weights, filter-normalised (Li et al. 2018): Gaussian entries, then each
 * row of every matrix (one output neuron's weights; one token's row of the embedding table) scaled to the
 * length of the same row of θ. A step of 1 along it changes every neuron by as much as its own size, so
 * the plane's scale means the same in every layer. The norm gains (1-D) get no direction, as Li et al. give
 * none to biases and normalisation parameters.
 */
export function filterNormalisedDirection(theta: Weights<Float32Array>, seed: number): Weights<Float32Array> {
  const normal = normalSampler(mulberry32(seed));
  const direction = zerosLike(theta);
  const thetaTensors = namedParameters(theta);
  namedParameters(direction).forEach(({ tensor }, index) => {
    if (tensor.shape.length < 2) return;
    const width = tensor.shape[tensor.shape.length - 1];
    const of = thetaTensors[index].tensor.data;
    const d = tensor.data;
    for (let row = 0; row < d.length / width; row++) {
      const start = row * width;
      let randomNorm = 0;
      let thetaNorm = 0;
      for (let i = start; i < start + width; i++) {
        d[i] = normal();
        randomNorm += d[i] * d[i];
        thetaNorm += of[i] * of[i];
      }
      const scale = Math.sqrt(thetaNorm) / Math.sqrt(randomNorm);
      for (let i = start; i < start + width; i++) d[i] *= scale;
    }
  });
  return direction;
}

/** The seeds of the two directions (any two different seeds give a slice; these are the page's). */
export const DIRECTION_SEEDS = [2018, 2019] as const;

/**
 * The loss restricted to the plane θ + a·d1 + b·d2, on one fixed batch. Its own copy of the weights is
 * rewritten for each point, so θ is never touched. The gradient in the plane is the chain rule through
 * w(a, b): ∂L/∂a = ∇L(w)·d1, ∂L/∂b = ∇L(w)·d2, with ∇L from the trainer's backward pass.
 */
export class LossPlane {
  readonly theta: Weights<Float32Array>;
  readonly d1: Weights<Float32Array>;
  readonly d2: Weights<Float32Array>;
  readonly batch: Batch;
  private readonly point: Weights<Float32Array>;
  private readonly gradients: Weights<Float32Array>;
  private readonly model: TrainingModel<Float32Array>;
  private readonly forget: (weight: Float32Array) => void;

  constructor(
    config: ModelConfig,
    theta: Weights<Float32Array>,
    batch: Batch,
    kernels?: TrainingKernels & { invalidate?(weight: Float32Array): void },
    seeds: readonly [number, number] = DIRECTION_SEEDS,
  ) {
    this.theta = theta;
    this.d1 = filterNormalisedDirection(theta, seeds[0]);
    this.d2 = filterNormalisedDirection(theta, seeds[1]);
    this.batch = batch;
    this.point = zerosLike(theta);
    this.gradients = zerosLike(theta);
    this.model = new TrainingModel(config, this.point, { kernels });
    // Forget the packed copies of this plane's own weights only, not those of the model the page reads.
    this.forget = (weight) =>
      kernels?.invalidate ? kernels.invalidate(weight) : this.model.weightsChanged();
  }

  /** Writes θ + a·d1 + b·d2 into the plane's weights. */
  private moveTo(a: number, b: number): void {
    const [theta, d1, d2] = [this.theta, this.d1, this.d2].map(namedParameters);
    namedParameters(this.point).forEach(({ tensor }, index) => {
      const [w, x, y] = [theta[index], d1[index], d2[index]].map((p) => p.tensor.data);
      const out = tensor.data;
      for (let i = 0; i < out.length; i++) out[i] = w[i] + a * x[i] + b * y[i];
      this.forget(out);
    });
  }

  loss(a: number, b: number): number {
    this.moveTo(a, b);
    return this.model.forward(this.batch);
  }

  /** The loss at (a, b) and its gradient in the plane, (∇L·d1, ∇L·d2). */
  gradient(a: number, b: number): { loss: number; gradient: [number, number] } {
    this.moveTo(a, b);
    const loss = this.model.forward(this.batch);
    this.model.backward(this.gradients);
    const along = (direction: Weights<Float32Array>) => dot(this.gradients, direction);
    return { loss, gradient: [along(this.d1), along(this.d2)] };
  }
}

/** Σ over every parameter of x·y, in float64. */
export function dot(x: Weights<FloatArray>, y: Weights<FloatArray>): number {
  const ys = namedParameters(y);
  let sum = 0;
  namedParameters(x).forEach(({ tensor }, index) => {
    const a = tensor.data;
    const b = ys[index].tensor.data;
    for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  });
  return sum;
}

/** The grid's coordinates: n values from −range to range (n odd puts θ itself at the centre). */
export function gridCoordinates(range: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => -range + (2 * range * i) / (n - 1));
}

// ---------------------------------------------------------------------------------------------------------
// Optimisers on the plane: the two numbers (a, b) are the parameters.

export type OptimiserName = 'sgd' | 'momentum' | 'adam' | 'adamw';
export const OPTIMISERS: readonly { name: OptimiserName; label: string }[] = [
  { name: 'sgd', label: 'SGD' },
  { name: 'momentum', label: 'Momentum' },
  { name: 'adam', label: 'Adam' },
  { name: 'adamw', label: 'AdamW' },
];

/** Momentum's μ (PyTorch's usual 0.9); Adam and AdamW take the trainer's β1, β2, ε, and AdamW its decay. */
export const MOMENTUM = 0.9;
export const RACE_ADAMW: AdamWConfig = DEFAULT_ADAMW;

export interface OptimiserState {
  name: OptimiserName;
  /** (a, b). */
  position: Float64Array;
  /** Momentum's velocity; Adam's first moment m. */
  velocity: Float64Array;
  /** Adam's second moment v. */
  second: Float64Array;
  steps: number;
}

export function newOptimiser(name: OptimiserName, start: readonly [number, number]): OptimiserState {
  return {
    name,
    position: Float64Array.from(start),
    velocity: new Float64Array(2),
    second: new Float64Array(2),
    steps: 0,
  };
}

/** One step of the optimiser from the gradient at its position, in place. */
export function optimiserStep(
  state: OptimiserState,
  gradient: readonly [number, number],
  learningRate: number,
): void {
  const p = state.position;
  state.steps++;
  switch (state.name) {
    case 'sgd':
      // Downhill by the learning rate times the slope: steep slopes give big steps.
      for (let i = 0; i < 2; i++) p[i] -= learningRate * gradient[i];
      break;
    case 'momentum':
      // A velocity that keeps μ of itself each step (PyTorch's SGD with momentum): it builds up along a
      // steady slope and cancels where the slope keeps changing sign.
      for (let i = 0; i < 2; i++) {
        state.velocity[i] = MOMENTUM * state.velocity[i] + gradient[i];
        p[i] -= learningRate * state.velocity[i];
      }
      break;
    case 'adam':
    case 'adamw':
      // The trainer's own update (adamw.ts); Adam is AdamW without the decay.
      adamwUpdate(p, Float64Array.from(gradient), state.velocity, state.second, state.steps, learningRate, {
        ...RACE_ADAMW,
        weightDecay: state.name === 'adamw' ? RACE_ADAMW.weightDecay : 0,
      });
      break;
  }
}

export interface RacePoint {
  a: number;
  b: number;
  /** The loss at (a, b). */
  loss: number;
}

export interface RaceSettings {
  start: readonly [number, number];
  learningRate: number;
}

/**
 * The four optimisers racing on a plane from one start: path[k] is where each stands after k steps, with
 * the loss there. Each point's gradient is computed when the point is reached (the start's once, shared),
 * so a step costs one forward and one backward pass per optimiser. An optimiser that leaves the plane's
 * neighbourhood (|a| or |b| beyond `bound`) or reaches a non-finite loss has diverged and stops.
 */
export class Race {
  readonly settings: RaceSettings;
  readonly optimisers: OptimiserState[];
  readonly paths: Record<OptimiserName, RacePoint[]>;
  readonly diverged: Record<OptimiserName, boolean>;
  private readonly plane: Pick<LossPlane, 'gradient'>;
  private readonly bound: number;
  private readonly gradients = new Map<OptimiserName, [number, number]>();

  constructor(plane: Pick<LossPlane, 'gradient'>, settings: RaceSettings, bound: number) {
    this.plane = plane;
    this.settings = settings;
    this.bound = bound;
    const [a, b] = settings.start;
    const first = plane.gradient(a, b);
    this.optimisers = OPTIMISERS.map(({ name }) => newOptimiser(name, settings.start));
    this.paths = {} as Record<OptimiserName, RacePoint[]>;
    this.diverged = {} as Record<OptimiserName, boolean>;
    for (const { name } of OPTIMISERS) {
      this.paths[name] = [{ a, b, loss: first.loss }];
      this.diverged[name] = false;
      this.gradients.set(name, first.gradient);
    }
  }

  get steps(): number {
    return Math.max(...Object.values(this.paths).map((path) => path.length - 1));
  }

  /** One step of every optimiser still in the race. */
  step(): void {
    for (const optimiser of this.optimisers) this.stepOne(optimiser);
  }

  /**
   * One step of the optimiser furthest behind (the first of them), if any is still racing: a page that
   * asks for one step per request keeps each request to one forward and one backward pass.
   */
  stepNext(): void {
    const racing = this.optimisers.filter((optimiser) => !this.diverged[optimiser.name]);
    if (racing.length === 0) return;
    this.stepOne(racing.reduce((a, b) => (b.steps < a.steps ? b : a)));
  }

  private stepOne(optimiser: OptimiserState): void {
    const { name } = optimiser;
    if (this.diverged[name]) return;
    optimiserStep(optimiser, this.gradients.get(name)!, this.settings.learningRate);
    const [a, b] = optimiser.position;
    const outside = !(Math.abs(a) <= this.bound && Math.abs(b) <= this.bound);
    const next = outside
      ? { loss: NaN, gradient: [NaN, NaN] as [number, number] }
      : this.plane.gradient(a, b);
    this.paths[name].push({ a, b, loss: next.loss });
    this.gradients.set(name, next.gradient);
    if (outside || !Number.isFinite(next.loss)) this.diverged[name] = true;
  }
}
