/**
 * Data parallelism: one batch of B sequences is cut into a few shards, each shard's gradient is computed
 * on its own (possibly on its own thread, by its own copy of the TrainingModel reading the same weights),
 * and the batch's gradient is their average weighted by size:
 *
 *   loss = Σ_k (n_k / N)·loss_k        gradient = Σ_k (n_k / N)·gradient_k
 *
 * which is exactly the mean over all N positions, because each shard's loss is the mean over its n_k.
 * The shards are combined in shard order, so a run's numbers depend on how many shards it uses and not on
 * how many threads computed them: one thread doing two shards gives the same bits as two threads.
 */
import type { Batch } from './data.ts';
import type { TrainingModel } from './model.ts';
import type { FloatArray } from './ops.ts';
import { namedParameters, zerosLike, type Weights } from './parameters.ts';

/** Cuts a batch into `count` groups of consecutive sequences whose sizes differ by at most one. */
export function splitBatch(batch: Batch, count: number): Batch[] {
  if (!(Number.isInteger(count) && count >= 1 && count <= batch.batchSize)) {
    throw new Error(`splitBatch: cannot cut ${batch.batchSize} sequences into ${count} shards`);
  }
  const T = batch.seqLen;
  const shards: Batch[] = [];
  let first = 0;
  for (let k = 0; k < count; k++) {
    const size = Math.floor(batch.batchSize / count) + (k < batch.batchSize % count ? 1 : 0);
    shards.push({
      batchSize: size,
      seqLen: T,
      inputs: batch.inputs.slice(first * T, (first + size) * T),
      targets: batch.targets.slice(first * T, (first + size) * T),
    });
    first += size;
  }
  return shards;
}

/** into = Σ_k fractions[k]·parts[k], tensor by tensor, summed in shard order. */
export function averageShards<A extends FloatArray>(
  into: Weights<A>,
  parts: readonly Weights<A>[],
  fractions: readonly number[],
): void {
  const sources = parts.map((part) => namedParameters(part));
  namedParameters(into).forEach(({ tensor }, index) => {
    const out = tensor.data;
    const datas = sources.map((list) => list[index].tensor.data);
    for (let i = 0; i < out.length; i++) {
      let sum = 0;
      for (let k = 0; k < datas.length; k++) sum += fractions[k] * datas[k][i];
      out[i] = sum;
    }
  });
}

/**
 * Something that computes shard gradients: the TrainingModel on this thread (LocalShardWorker), or one
 * on another thread (shard-messages.ts: Node's worker threads or the page's Web Workers). Every worker
 * reads the same weights and writes shard k's gradient into `gradients[k]`, buffers the caller allocated.
 */
export interface ShardWorker {
  /** Forward and backward over `batch`; writes the gradient into gradients[shard], resolves to the loss. */
  gradient(shard: number, batch: Batch): Promise<number>;
  /** The mean loss of each batch (forward passes only), in order. */
  losses(batches: readonly Batch[]): Promise<number[]>;
  /** The weights changed (an optimizer step): drop any packed copies of them before the next pass. */
  weightsChanged(): void;
  close(): Promise<void>;
}

/** Shard gradients computed one after another on the calling thread. */
export class LocalShardWorker implements ShardWorker {
  private readonly model: TrainingModel;
  private readonly gradients: readonly Weights[];

  constructor(model: TrainingModel, gradients: readonly Weights[]) {
    this.model = model;
    this.gradients = gradients;
  }

  gradient(shard: number, batch: Batch): Promise<number> {
    const loss = this.model.forward(batch);
    this.model.backward(this.gradients[shard]);
    return Promise.resolve(loss);
  }

  losses(batches: readonly Batch[]): Promise<number[]> {
    return Promise.resolve(batches.map((batch) => this.model.forward(batch)));
  }

  weightsChanged(): void {
    this.model.weightsChanged();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A Float32Array in shared memory, so worker threads (Node's or a browser's) see the same numbers. */
export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
}

/** Moves every weight tensor into shared memory (same values, same structure, shared classifier kept). */
export function shareWeights(weights: Weights): void {
  for (const { tensor } of namedParameters(weights)) {
    if (tensor.data.buffer instanceof SharedArrayBuffer) continue;
    const shared = sharedFloat32(tensor.data.length);
    shared.set(tensor.data);
    tensor.data = shared;
  }
}

/** One gradient buffer per shard, in the weights' structure (shared memory when `allocate` makes it). */
export function shardGradients(
  weights: Weights,
  shards: number,
  allocate: (length: number) => Float32Array = (length) => new Float32Array(length),
): Weights[] {
  return Array.from({ length: shards }, () => {
    const gradients = zerosLike(weights);
    for (const { tensor } of namedParameters(gradients)) tensor.data = allocate(tensor.data.length);
    return gradients;
  });
}

/**
 * The gradient of the mean loss over `batch` (written into `gradients`) and that loss: the batch cut into
 * `shardGradients.length` shards, shard k computed by worker k mod W, the workers running at the same time,
 * and the shards averaged by size in shard order. With one shard it is the whole batch's forward and
 * backward pass, exactly.
 */
export async function batchGradient(
  workers: readonly ShardWorker[],
  shardGradients: readonly Weights[],
  gradients: Weights,
  batch: Batch,
): Promise<number> {
  const shards = splitBatch(batch, shardGradients.length);
  const shardLosses = new Array<number>(shards.length);
  await Promise.all(
    workers.map(async (worker, w) => {
      for (let k = w; k < shards.length; k += workers.length) {
        shardLosses[k] = await worker.gradient(k, shards[k]);
      }
    }),
  );
  const fractions = shards.map((shard) => shard.batchSize / batch.batchSize);
  averageShards(gradients, shardGradients, fractions);
  return shardLosses.reduce((sum, shardLoss, k) => sum + fractions[k] * shardLoss, 0);
}

/**
 * The mean loss over every position of `batches` (as evaluateLoss in step.ts), the batches dealt out to
 * the workers in contiguous runs and the total summed in batch order.
 */
export async function shardedEvaluateLoss(
  workers: readonly ShardWorker[],
  batches: readonly Batch[],
): Promise<number> {
  const per = Math.ceil(batches.length / workers.length);
  const parts = await Promise.all(
    workers.map((worker, w) => worker.losses(batches.slice(w * per, (w + 1) * per))),
  );
  return meanOverPositions(batches, parts.flat());
}

/** Σ_b loss_b · positions_b / Σ_b positions_b, summed in batch order: the mean loss over every position. */
export function meanOverPositions(batches: readonly Batch[], losses: readonly number[]): number {
  let total = 0;
  let positions = 0;
  batches.forEach((batch, b) => {
    const count = batch.batchSize * batch.seqLen;
    total += losses[b] * count;
    positions += count;
  });
  return total / positions;
}
