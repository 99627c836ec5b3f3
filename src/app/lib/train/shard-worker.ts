/**
 * A shard worker of the page's trainer: the browser twin of `glassbox train --threads N`'s worker thread
 * (src/cli/train/shard-thread.ts). It holds a TrainingModel over the run's weights (shared memory, written
 * only by the trainer's optimizer between steps) and computes the gradient of the shards it is sent into
 * the shared gradient buffers. The first message sets it up; every later one is a numbered job.
 */
import {
  answerShardRequest,
  type ShardRequest,
  type ShardThreadInit,
} from '../../../engine/train/shard-messages.ts';
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
  if (!worker) {
    self.postMessage({ id: message.id, error: 'the shard worker was asked for work before it was set up' });
    return;
  }
  void answerShardRequest(worker, message).then((reply) => self.postMessage(reply));
};
