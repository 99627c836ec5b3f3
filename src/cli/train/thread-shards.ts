/**
 * Worker threads for data-parallel training (`glassbox train --threads N`): N ShardWorkers, each a
 * TrainingModel on its own thread, all reading one copy of the weights in shared memory and writing shard
 * gradients into shared buffers that the main thread averages (shards.ts). The main thread runs the
 * optimizer between steps, while every worker waits for its next shard.
 */
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from '../../engine/model.ts';
import {
  MessageShardWorker,
  type ShardRequest,
  type ShardThreadInit,
} from '../../engine/train/shard-messages.ts';
import type { Weights } from '../../engine/train/parameters.ts';
import { sharedFloat32, shareWeights, type ShardWorker } from '../../engine/train/shards.ts';
import type { KernelPreference } from '../../kernels/select.ts';

export { sharedFloat32, shareWeights };

/** A MessageShardWorker over one of Node's worker threads (shard-thread.ts). */
class ThreadShardWorker extends MessageShardWorker {
  private readonly thread: Worker;

  constructor(init: ShardThreadInit) {
    super('training thread');
    const entry = new URL('./shard-thread.js', import.meta.url);
    if (import.meta.url.endsWith('.ts')) {
      throw new Error('training on several threads runs from the built CLI (npm run build), not from source');
    }
    this.thread = new Worker(entry, { workerData: init });
    this.thread.on('message', (reply) => this.receive(reply));
    this.thread.on('error', (error) => this.fail(error));
    this.thread.on('exit', (code) => this.fail(new Error(`training thread exited (code ${code})`)));
  }

  protected post(request: ShardRequest): void {
    this.thread.postMessage(request);
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }
}

/**
 * `threads` workers over `weights` (moved into shared memory if they are not there yet) and the shard
 * gradient buffers (allocated in shared memory by the caller, see shardGradients).
 */
export function startShardThreads(
  threads: number,
  config: ModelConfig,
  weights: Weights,
  gradients: Weights[],
  kernels: KernelPreference,
): ShardWorker[] {
  shareWeights(weights);
  return Array.from(
    { length: threads },
    () => new ThreadShardWorker({ config, weights, gradients, kernels }),
  );
}
