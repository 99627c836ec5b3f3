/**
 * The Llama model for training: a forward pass over a batch of B sequences of T tokens that keeps every
 * activation the backward pass needs and returns the mean cross-entropy loss, and the backward pass that
 * turns that loss into a gradient for every weight.
 *
 *   x = embedding[inputs]
 *   for each layer:
 *     x = x + wo · Attention(RoPE(wq·n), RoPE(wk·n), wv·n)     n = RMSNorm(x)·attnNorm
 *     x = x + wDown · (silu(wGate·n) ⊙ wUp·n)                  n = RMSNorm(x)·ffnNorm
 *   logits = classifier · RMSNorm(x)·finalNorm
 *   loss = mean over the B·T positions of −log softmax(logits)[target]
 *
 * It computes what src/engine/forward.ts computes (the tests hold the logits equal), on B·T rows at once so
 * every weight matrix is one matrix product per step. The backward pass walks the same steps in reverse;
 * each op's derivative is written beside its forward in ops.ts.
 *
 * Buffers are allocated once, for the largest batch size seen at the current T, and reused by every step
 * (a smaller batch, such as the last one of an evaluation, uses the first part of each).
 *
 * The array type follows the weights: Float32Array weights train with the given MatrixKernels, Float64Array
 * weights (for gradient checks) with float64Kernels.
 */
import { referenceKernels, type MatrixKernels } from '../../kernels/reference.ts';
import { headDim, validateConfig, type ModelConfig } from '../model.ts';
import type { Batch } from './data.ts';
import {
  addInto,
  attentionBackward,
  attentionForward,
  crossEntropyBackward,
  crossEntropyForward,
  embeddingBackward,
  embeddingForward,
  float64Kernels,
  linearBackward,
  linearForward,
  rmsNormBackward,
  rmsNormForward,
  ropeBackward,
  ropeForward,
  ropeTable,
  swigluBackward,
  swigluForward,
  type AttentionShape,
  type FloatArray,
  type Kernels,
  type TrainingFastPaths,
  type RopeTable,
} from './ops.ts';
import { checkWeights, namedParameters, type ParameterTensor, type Weights } from './parameters.ts';

/**
 * Float32 matrix kernels. A kernel set that caches packed copies of weights (the WebAssembly one) has
 * `invalidateAll`, which `weightsChanged()` calls after each optimizer step.
 */
export type TrainingKernels = MatrixKernels & Partial<TrainingFastPaths> & { invalidateAll?(): void };

/**
 * Told by `forward` and `backward`, when given one, of each tensor as soon as it is computed: its name (the
 * Trace's name, trace.ts; in the backward pass, the name of the tensor whose gradient it is), the live
 * buffer and its shape ([B·T, width], attention weights [B, nHeads, T, T]). Buffers are reused, so copy what
 * you keep. In the forward pass the observer may change the values, and the rest of the pass reads the
 * changed ones: a finite-difference check of one activation's gradient nudges it here.
 */
export type PassObserver<A extends FloatArray> = (name: string, data: A, shape: readonly number[]) => void;

export interface TrainingModelOptions {
  /** Default: the readable TypeScript reference. Float64 weights always use float64Kernels (ops.ts). */
  kernels?: TrainingKernels;
}

/**
 * What one layer's forward pass keeps for its backward pass ([rows, width], rows = B·T), named as the
 * Trace names the same tensors (trace.ts).
 */
interface LayerActivations<A extends FloatArray> {
  /** The residual stream entering the layer. */
  input: A;
  attnNorm: A;
  attnInvRms: A;
  /** Queries and keys after RoPE (the projections are rotated in place), values. */
  qRope: A;
  kRope: A;
  v: A;
  /** [B, nHeads, T, T]: softmax weights, row t over positions s ≤ t. */
  weights: A;
  /** The heads' weighted sums of values, side by side, before wo. */
  attnOutput: A;
  /** The residual stream after the attention block. */
  residualAfterAttn: A;
  ffnNorm: A;
  ffnInvRms: A;
  ffnGate: A;
  ffnUp: A;
  /** silu(gate) ⊙ up. */
  ffnActivation: A;
}

interface Activations<A extends FloatArray> {
  batchSize: number;
  seqLen: number;
  inputs: Int32Array;
  targets: Int32Array;
  rope: RopeTable;
  layers: LayerActivations<A>[];
  /** The residual stream leaving the last layer. */
  output: A;
  finalNorm: A;
  finalInvRms: A;
  logits: A;
  logSumExp: Float64Array;
  /** Scratch: what a wo or wDown product adds to the stream. */
  projected: A;
}

/** Gradient buffers for the backward pass (the weight gradients live in the caller's Weights). */
interface GradientScratch<A extends FloatArray> {
  dLogits: A;
  /** The gradient of the residual stream, carried from the top layer down to the embedding. */
  dResidual: A;
  /** The gradient of a normalized input (where q/k/v or gate/up branches meet). */
  dNormed: A;
  /** A branch's contribution before it is added in. */
  dBranch: A;
  dAttnOutput: A;
  dq: A;
  dk: A;
  dv: A;
  dFfnActivation: A;
  dFfnGate: A;
  dFfnUp: A;
}

export class TrainingModel<A extends FloatArray = Float32Array> {
  readonly config: ModelConfig;
  readonly weights: Weights<A>;
  readonly kernels: Kernels<A> & Partial<TrainingFastPaths>;
  private readonly invalidate: () => void;
  private readonly newArray: (length: number) => A;
  /** Buffers for the largest batch of the current T, and the views the current batch uses. */
  private full: Activations<A> | undefined;
  private fullScratch: GradientScratch<A> | undefined;
  private activations: Activations<A> | undefined;
  private forwardDone = false;

  constructor(config: ModelConfig, weights: Weights<A>, options: TrainingModelOptions = {}) {
    validateConfig(config, 'TrainingModel');
    for (const { name, tensor } of namedParameters(weights)) {
      const quantized = (tensor as { quantized?: { type: string } }).quantized;
      if (quantized) {
        throw new Error(
          `TrainingModel: ${name} is quantized (${quantized.type}); a quantized model is for inference — ` +
            `train the float32 model and quantize it afterwards`,
        );
      }
    }
    checkWeights(config, weights);
    this.config = config;
    this.weights = weights;
    const float64 = weights.finalNorm.data instanceof Float64Array;
    for (const { name, tensor } of namedParameters(weights)) {
      if (tensor.data instanceof Float64Array !== float64) {
        throw new Error(
          `TrainingModel: ${name} is not a ${float64 ? 'Float64Array' : 'Float32Array'} like finalNorm`,
        );
      }
    }
    this.newArray = (length) => (float64 ? new Float64Array(length) : new Float32Array(length)) as A;
    const kernels: TrainingKernels = options.kernels ?? referenceKernels;
    this.kernels = (float64 ? float64Kernels : kernels) as unknown as Kernels<A>;
    this.invalidate = () => kernels.invalidateAll?.();
  }

  /**
   * Call after changing weight values in place — an optimizer step (trainStep does), loading a checkpoint
   * into the arrays — so that kernels caching packed copies of the weights (WebAssembly) repack them.
   */
  weightsChanged(): void {
    this.invalidate();
  }

  /** The logits of the last forward pass, [B·T, vocabSize]. */
  get logits(): A {
    if (!this.activations) throw new Error('TrainingModel: no forward pass yet');
    return this.activations.logits;
  }

  /**
   * Runs the model on the batch and returns the mean cross-entropy loss over its B·T positions; `observe`
   * (for figures and checks) sees each tensor as it is computed.
   */
  forward(batch: Batch, observe?: PassObserver<A>): number {
    const act = this.activationsFor(batch);
    const { config, weights, kernels } = this;
    const { dim, nHeads, nKvHeads, vocabSize, normEps } = config;
    const rows = batch.batchSize * batch.seqLen;
    // y = x·Wᵀ for all rows, and RMSNorm of all rows; W's shape [out, in] gives the widths.
    const linear = (y: A, x: A, w: ParameterTensor<A>) =>
      linearForward(kernels, y, x, w.data, rows, w.shape[1], w.shape[0]);
    const norm = (y: A, invRms: A, x: A, gain: ParameterTensor<A>) =>
      rmsNormForward(y, invRms, x, gain.data, rows, dim, normEps);
    const seen = (name: string, data: A) => observe?.(name, data, [rows, data.length / rows]);

    embeddingForward(act.layers[0].input, weights.tokenEmbedding.data, act.inputs, dim);
    seen('embeddings', act.layers[0].input);
    weights.layers.forEach((layer, l) => {
      const a = act.layers[l];
      const next = act.layers[l + 1]?.input ?? act.output;
      const at = `layers[${l}].`;
      // Attention block: residualAfterAttn = input + wo·Attention(RoPE(wq·n), RoPE(wk·n), wv·n).
      norm(a.attnNorm, a.attnInvRms, a.input, layer.attnNorm);
      seen(`${at}attnNorm`, a.attnNorm);
      linear(a.qRope, a.attnNorm, layer.wq);
      linear(a.kRope, a.attnNorm, layer.wk);
      linear(a.v, a.attnNorm, layer.wv);
      seen(`${at}q`, a.qRope);
      seen(`${at}k`, a.kRope);
      seen(`${at}v`, a.v);
      ropeForward(a.qRope, act.rope, rows, nHeads);
      ropeForward(a.kRope, act.rope, rows, nKvHeads);
      seen(`${at}qRope`, a.qRope);
      seen(`${at}kRope`, a.kRope);
      attentionForward(kernels, a.attnOutput, a.weights, a.qRope, a.kRope, a.v, this.attentionShape(batch));
      observe?.(`${at}weights`, a.weights, [batch.batchSize, nHeads, batch.seqLen, batch.seqLen]);
      seen(`${at}attnOutput`, a.attnOutput);
      linear(act.projected, a.attnOutput, layer.wo);
      seen(`${at}attnProjected`, act.projected);
      a.residualAfterAttn.set(a.input);
      addInto(a.residualAfterAttn, act.projected);
      seen(`${at}residualAfterAttn`, a.residualAfterAttn);
      // Feed-forward block: next = residualAfterAttn + wDown·(silu(wGate·n) ⊙ wUp·n).
      norm(a.ffnNorm, a.ffnInvRms, a.residualAfterAttn, layer.ffnNorm);
      seen(`${at}ffnNorm`, a.ffnNorm);
      linear(a.ffnGate, a.ffnNorm, layer.wGate);
      linear(a.ffnUp, a.ffnNorm, layer.wUp);
      seen(`${at}ffnGate`, a.ffnGate);
      seen(`${at}ffnUp`, a.ffnUp);
      swigluForward(kernels, a.ffnActivation, a.ffnGate, a.ffnUp);
      seen(`${at}ffnActivation`, a.ffnActivation);
      linear(act.projected, a.ffnActivation, layer.wDown);
      seen(`${at}ffnOutput`, act.projected);
      next.set(a.residualAfterAttn);
      addInto(next, act.projected);
      seen(`${at}residualAfterFfn`, next);
    });
    norm(act.finalNorm, act.finalInvRms, act.output, weights.finalNorm);
    seen('finalNorm', act.finalNorm);
    linear(act.logits, act.finalNorm, weights.classifier);
    seen('logits', act.logits);
    this.forwardDone = true;
    return crossEntropyForward(this.kernels, act.logSumExp, act.logits, act.targets, rows, vocabSize);
  }

  /**
   * Writes into `gradients` (same structure as the weights, e.g. from zerosLike) the gradient of the last
   * forward pass's loss with respect to every weight. Every gradient tensor is overwritten, not added to.
   * `observe` sees the gradient of each activation once it is complete (named as the forward pass names
   * the activation), from the logits down to the embeddings.
   */
  backward(gradients: Weights<A>, observe?: PassObserver<A>): void {
    const act = this.activations;
    if (!act || !this.forwardDone) throw new Error('TrainingModel.backward: call forward first');
    this.forwardDone = false;
    if ((gradients.classifier === gradients.tokenEmbedding) !== this.config.sharedClassifier) {
      throw new Error('TrainingModel.backward: gradients must share the classifier when the weights do');
    }
    const d = this.scratchFor(act);
    const { config, weights, kernels } = this;
    const { dim, nHeads, nKvHeads, vocabSize } = config;
    const rows = act.batchSize * act.seqLen;
    const shape = this.attentionShape(act);
    // The backward passes of y = x·Wᵀ (writes dx and dW) and of RMSNorm (writes dx and dGain), all rows.
    const linear = (dx: A, dW: ParameterTensor<A>, dy: A, x: A, w: ParameterTensor<A>) =>
      linearBackward(kernels, dx, dW.data, dy, x, w.data, rows, w.shape[1], w.shape[0]);
    const norm = (dx: A, dGain: ParameterTensor<A>, dy: A, x: A, invRms: A, gain: ParameterTensor<A>) =>
      rmsNormBackward(dx, dGain.data, dy, x, invRms, gain.data, rows, dim);
    const seen = (name: string, data: A) => observe?.(name, data, [rows, data.length / rows]);

    // Loss → logits → classifier and final norm. With a shared classifier this writes the classifier's
    // gradient into the embedding table's gradient; the embedding's own gradient is added at the end.
    crossEntropyBackward(this.kernels, d.dLogits, act.logSumExp, act.logits, act.targets, rows, vocabSize);
    seen('logits', d.dLogits);
    linear(d.dNormed, gradients.classifier, d.dLogits, act.finalNorm, weights.classifier);
    seen('finalNorm', d.dNormed);
    norm(d.dResidual, gradients.finalNorm, d.dNormed, act.output, act.finalInvRms, weights.finalNorm);
    seen(`layers[${config.nLayers - 1}].residualAfterFfn`, d.dResidual);

    for (let l = config.nLayers - 1; l >= 0; l--) {
      const a = act.layers[l];
      const layer = weights.layers[l];
      const g = gradients.layers[l];
      const at = `layers[${l}].`;
      // The residual stream's gradient reaches the skip connection and the branch's output unchanged
      // (y = x + f(x) passes dy to each).
      seen(`${at}ffnOutput`, d.dResidual);
      // Feed-forward block. The skip connection passes dResidual on unchanged; the branch adds its part.
      linear(d.dFfnActivation, g.wDown, d.dResidual, a.ffnActivation, layer.wDown);
      seen(`${at}ffnActivation`, d.dFfnActivation);
      swigluBackward(kernels, d.dFfnGate, d.dFfnUp, d.dFfnActivation, a.ffnGate, a.ffnUp);
      seen(`${at}ffnGate`, d.dFfnGate);
      seen(`${at}ffnUp`, d.dFfnUp);
      linear(d.dNormed, g.wGate, d.dFfnGate, a.ffnNorm, layer.wGate);
      linear(d.dBranch, g.wUp, d.dFfnUp, a.ffnNorm, layer.wUp);
      addInto(d.dNormed, d.dBranch);
      seen(`${at}ffnNorm`, d.dNormed);
      norm(d.dBranch, g.ffnNorm, d.dNormed, a.residualAfterAttn, a.ffnInvRms, layer.ffnNorm);
      addInto(d.dResidual, d.dBranch);
      seen(`${at}residualAfterAttn`, d.dResidual);
      seen(`${at}attnProjected`, d.dResidual);
      // Attention block, the same way; q, k and v all read the normed input, so their gradients add.
      linear(d.dAttnOutput, g.wo, d.dResidual, a.attnOutput, layer.wo);
      seen(`${at}attnOutput`, d.dAttnOutput);
      attentionBackward(kernels, d.dq, d.dk, d.dv, d.dAttnOutput, a.weights, a.qRope, a.kRope, a.v, shape);
      seen(`${at}qRope`, d.dq);
      seen(`${at}kRope`, d.dk);
      seen(`${at}v`, d.dv);
      ropeBackward(d.dq, act.rope, rows, nHeads);
      ropeBackward(d.dk, act.rope, rows, nKvHeads);
      seen(`${at}q`, d.dq);
      seen(`${at}k`, d.dk);
      linear(d.dNormed, g.wq, d.dq, a.attnNorm, layer.wq);
      linear(d.dBranch, g.wk, d.dk, a.attnNorm, layer.wk);
      addInto(d.dNormed, d.dBranch);
      linear(d.dBranch, g.wv, d.dv, a.attnNorm, layer.wv);
      addInto(d.dNormed, d.dBranch);
      seen(`${at}attnNorm`, d.dNormed);
      norm(d.dBranch, g.attnNorm, d.dNormed, a.input, a.attnInvRms, layer.attnNorm);
      addInto(d.dResidual, d.dBranch);
      seen(l === 0 ? 'embeddings' : `layers[${l - 1}].residualAfterFfn`, d.dResidual);
    }

    if (!config.sharedClassifier) gradients.tokenEmbedding.data.fill(0);
    embeddingBackward(gradients.tokenEmbedding.data, d.dResidual, act.inputs, dim);
  }

  private attentionShape(batch: { batchSize: number; seqLen: number }): AttentionShape {
    const { nHeads, nKvHeads } = this.config;
    return {
      batchSize: batch.batchSize,
      seqLen: batch.seqLen,
      nHeads,
      nKvHeads,
      headDim: headDim(this.config),
    };
  }

  /**
   * The activation buffers for this batch (holding its tokens). Buffers are allocated for the largest
   * batch size seen at this T; a smaller batch (the last one of an evaluation) uses the first part of
   * every buffer, which is exactly its layout because every buffer is batch-major.
   */
  private activationsFor(batch: Batch): Activations<A> {
    const { batchSize: B, seqLen: T } = batch;
    checkBatch(batch, this.config);
    if (!this.full || this.full.seqLen !== T || this.full.batchSize < B) {
      this.full = this.allocateActivations(B, T);
      this.fullScratch = undefined;
      this.activations = undefined;
    }
    if (this.activations?.batchSize !== B) {
      this.activations = B === this.full.batchSize ? this.full : firstSequences(this.full, B);
    }
    this.activations.inputs.set(batch.inputs);
    this.activations.targets.set(batch.targets);
    return this.activations;
  }

  private allocateActivations(B: number, T: number): Activations<A> {
    const { dim, hiddenDim, nHeads, nKvHeads, vocabSize, nLayers, ropeTheta, ropeLayout } = this.config;
    const rows = B * T;
    const hd = headDim(this.config);
    const array = this.newArray;
    const layers = Array.from({ length: nLayers }, () => ({
      input: array(rows * dim),
      attnNorm: array(rows * dim),
      attnInvRms: array(rows),
      qRope: array(rows * nHeads * hd),
      kRope: array(rows * nKvHeads * hd),
      v: array(rows * nKvHeads * hd),
      weights: array(B * nHeads * T * T),
      attnOutput: array(rows * nHeads * hd),
      residualAfterAttn: array(rows * dim),
      ffnNorm: array(rows * dim),
      ffnInvRms: array(rows),
      ffnGate: array(rows * hiddenDim),
      ffnUp: array(rows * hiddenDim),
      ffnActivation: array(rows * hiddenDim),
    }));
    return {
      batchSize: B,
      seqLen: T,
      inputs: new Int32Array(rows),
      targets: new Int32Array(rows),
      rope: ropeTable(T, hd, ropeTheta, ropeLayout),
      layers,
      output: array(rows * dim),
      finalNorm: array(rows * dim),
      finalInvRms: array(rows),
      logits: array(rows * vocabSize),
      logSumExp: new Float64Array(rows),
      projected: array(rows * dim),
    };
  }

  /** The gradient buffers, allocated at the full batch size on the first backward pass. */
  private scratchFor(act: Activations<A>): GradientScratch<A> {
    const full = this.full!;
    if (!this.fullScratch) {
      const { dim, hiddenDim, nHeads, nKvHeads, vocabSize } = this.config;
      const rows = full.batchSize * full.seqLen;
      const hd = headDim(this.config);
      const array = this.newArray;
      this.fullScratch = {
        dLogits: array(rows * vocabSize),
        dResidual: array(rows * dim),
        dNormed: array(rows * dim),
        dBranch: array(rows * dim),
        dAttnOutput: array(rows * nHeads * hd),
        dq: array(rows * nHeads * hd),
        dk: array(rows * nKvHeads * hd),
        dv: array(rows * nKvHeads * hd),
        dFfnActivation: array(rows * hiddenDim),
        dFfnGate: array(rows * hiddenDim),
        dFfnUp: array(rows * hiddenDim),
      };
    }
    const fraction = act.batchSize / full.batchSize;
    return fraction === 1 ? this.fullScratch : mapArrays(this.fullScratch, (x) => leading(x, fraction));
  }
}

/** The first `fraction` of a batch-major array. */
function leading<X extends FloatArray | Int32Array>(x: X, fraction: number): X {
  return x.subarray(0, x.length * fraction) as X;
}

function mapArrays<O extends object>(buffers: O, map: <X extends FloatArray>(x: X) => X): O {
  return Object.fromEntries(Object.entries(buffers).map(([key, x]) => [key, map(x)])) as O;
}

/** Views of the first B sequences of activation buffers allocated for more. */
function firstSequences<A extends FloatArray>(full: Activations<A>, B: number): Activations<A> {
  const fraction = B / full.batchSize;
  const take = <X extends FloatArray | Int32Array>(x: X) => leading(x, fraction);
  return {
    batchSize: B,
    seqLen: full.seqLen,
    inputs: take(full.inputs),
    targets: take(full.targets),
    rope: full.rope,
    layers: full.layers.map((layer) => mapArrays(layer, take)),
    output: take(full.output),
    finalNorm: take(full.finalNorm),
    finalInvRms: take(full.finalInvRms),
    logits: take(full.logits),
    logSumExp: take(full.logSumExp),
    projected: take(full.projected),
  };
}

function checkBatch(batch: Batch, config: ModelConfig): void {
  const { batchSize: B, seqLen: T } = batch;
  if (!(Number.isInteger(B) && B > 0 && Number.isInteger(T) && T > 0 && T <= config.seqLen)) {
    throw new Error(`TrainingModel: batch of ${B}×${T} tokens; T must be 1 … seqLen (${config.seqLen})`);
  }
  for (const [name, ids] of [
    ['inputs', batch.inputs],
    ['targets', batch.targets],
  ] as const) {
    if (ids.length !== B * T)
      throw new Error(`TrainingModel: batch.${name} has ${ids.length} ids, expected ${B * T}`);
    for (const id of ids) {
      if (!(id >= 0 && id < config.vocabSize)) {
        throw new Error(
          `TrainingModel: token id ${id} in batch.${name} is outside the vocabulary 0…${config.vocabSize - 1}`,
        );
      }
    }
  }
}
