/**
 * A shard worker of the page's trainer: the browser twin of `glassbox train --threads N`'s worker thread
 * (src/cli/train/shard-thread.ts). It holds a TrainingModel over the run's weights (shared memory, written
 * only by the trainer's optimizer between steps) and computes the gradient of the shards it is sent into
 * the shared gradient buffers. The first message sets it up; every later one is a numbered job.
 */
import type { ShardReply, ShardRequest, ShardThreadInit } from '../../../cli/train/shard-thread.ts';
import { TrainingModel } from '../../../engine/train/model.ts';
import { LocalShardWorker } from '../../../engine/train/shards.ts';
import { selectKernels } from '../../../kernels/select.ts';

let worker: LocalShardWorker | undefined;

self.onmessage = (event: MessageEvent<ShardThreadInit | ShardRequest>) => {
  const message = event.data;
  if (!('id' in message)) {
    // One thread per worker: the parallelism is across shards, not inside a product.
    const model = new TrainingModel(message.config, message.weights, {
      kernels: selectKernels(message.kernels),
    });
    worker = new LocalShardWorker(model, message.gradients);
    return;
  }
  void answer(message);
};

async function answer(request: ShardRequest): Promise<void> {
  try {
    if (!worker) throw new Error('the shard worker was asked for work before it was set up');
    if (request.weightsChanged) worker.weightsChanged();
    const reply: ShardReply =
      request.type === 'gradient'
        ? { id: request.id, loss: await worker.gradient(request.shard, request.batch) }
        : { id: request.id, losses: await worker.losses(request.batches) };
    self.postMessage(reply);
  } catch (error) {
    self.postMessage({
      id: request.id,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    } satisfies ShardReply);
  }
}
