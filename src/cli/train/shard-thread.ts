/**
 * A worker thread of `glassbox train --threads N`: it holds a TrainingModel over the run's weights (shared
 * memory, written only by the main thread's optimizer between steps) and computes the gradient of the
 * shards it is sent into the shared gradient buffers. See thread-shards.ts for the other side.
 */
import { parentPort, workerData } from 'node:worker_threads';
import {
  answerShardRequest,
  type ShardRequest,
  type ShardThreadInit,
} from '../../engine/train/shard-messages.ts';
import { TrainingModel } from '../../engine/train/model.ts';
import { LocalShardWorker } from '../../engine/train/shards.ts';
import { selectKernels } from '../../kernels/select.ts';

const init = workerData as ShardThreadInit;
// One thread per worker: the parallelism is across shards, not inside a product.
const model = new TrainingModel(init.config, init.weights, { kernels: selectKernels(init.kernels) });
const worker = new LocalShardWorker(model, init.gradients);

parentPort!.on('message', (request: ShardRequest) => {
  void answerShardRequest(worker, request).then((reply) => parentPort!.postMessage(reply));
});
