/**
 * A worker thread of `glassbox train --threads N`: it holds a TrainingModel over the run's weights (shared
 * memory, written only by the main thread's optimizer between steps) and computes the gradient of the
 * shards it is sent into the shared gradient buffers. See thread-shards.ts for the other side.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelConfig } from '../../engine/model.ts';
import type { Batch } from '../../engine/train/data.ts';
import { TrainingModel } from '../../engine/train/model.ts';
import type { Weights } from '../../engine/train/parameters.ts';
import { LocalShardWorker } from '../../engine/train/shards.ts';
import { selectKernels, type KernelPreference } from '../../kernels/select.ts';

export interface ShardThreadInit {
  config: ModelConfig;
  weights: Weights;
  gradients: Weights[];
  /** The variant the main thread chose (not 'auto'), so every thread computes with the same kernels. */
  kernels: KernelPreference;
}

export type ShardJob =
  { type: 'gradient'; shard: number; batch: Batch } | { type: 'losses'; batches: Batch[] };

/** A job, numbered, and whether the weights changed since the last one (an optimizer step). */
export type ShardRequest = ShardJob & { id: number; weightsChanged: boolean };

export type ShardReply = { id: number; loss?: number; losses?: number[]; error?: string };

const init = workerData as ShardThreadInit;
// One thread per worker: the parallelism is across shards, not inside a product.
const model = new TrainingModel(init.config, init.weights, { kernels: selectKernels(init.kernels) });
const worker = new LocalShardWorker(model, init.gradients);

parentPort!.on('message', (request: ShardRequest) => {
  void (async () => {
    try {
      if (request.weightsChanged) worker.weightsChanged();
      const reply: ShardReply =
        request.type === 'gradient'
          ? { id: request.id, loss: await worker.gradient(request.shard, request.batch) }
          : { id: request.id, losses: await worker.losses(request.batches) };
      parentPort!.postMessage(reply);
    } catch (error) {
      parentPort!.postMessage({
        id: request.id,
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
    }
  })();
});
