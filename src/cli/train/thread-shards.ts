/**
 * Worker threads for data-parallel training (`glassbox train --threads N`): N ShardWorkers, each a
 * TrainingModel on its own thread, all reading one copy of the weights in shared memory and writing shard
 * gradients into shared buffers that the main thread averages (shards.ts). The main thread runs the
 * optimizer between steps, while every worker waits for its next shard.
 */
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from '../../engine/model.ts';
import type { Batch } from '../../engine/train/data.ts';
import type { Weights } from '../../engine/train/parameters.ts';
import { sharedFloat32, shareWeights, type ShardWorker } from '../../engine/train/shards.ts';
import type { KernelPreference } from '../../kernels/select.ts';
import type { ShardJob, ShardReply, ShardRequest, ShardThreadInit } from './shard-thread.ts';

export { sharedFloat32, shareWeights };

class ThreadShardWorker implements ShardWorker {
  private readonly thread: Worker;
  private nextId = 0;
  private stale = false;
  private readonly pending = new Map<
    number,
    { resolve: (reply: ShardReply) => void; reject: (error: Error) => void }
  >();

  constructor(init: ShardThreadInit) {
    const entry = new URL('./shard-thread.js', import.meta.url);
    if (import.meta.url.endsWith('.ts')) {
      throw new Error('training on several threads runs from the built CLI (npm run build), not from source');
    }
    this.thread = new Worker(entry, { workerData: init });
    this.thread.on('message', (reply: ShardReply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (!waiting) return;
      if (reply.error !== undefined) waiting.reject(new Error(`training thread: ${reply.error}`));
      else waiting.resolve(reply);
    });
    const fail = (error: Error) => {
      for (const waiting of this.pending.values()) waiting.reject(error);
      this.pending.clear();
    };
    this.thread.on('error', fail);
    this.thread.on('exit', (code) => fail(new Error(`training thread exited (code ${code})`)));
  }

  private request(job: ShardJob): Promise<ShardReply> {
    const id = this.nextId++;
    const full: ShardRequest = { ...job, id, weightsChanged: this.stale };
    this.stale = false;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage(full);
    });
  }

  async gradient(shard: number, batch: Batch): Promise<number> {
    return (await this.request({ type: 'gradient', shard, batch })).loss!;
  }

  async losses(batches: readonly Batch[]): Promise<number[]> {
    return (await this.request({ type: 'losses', batches: [...batches] })).losses!;
  }

  weightsChanged(): void {
    this.stale = true;
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
