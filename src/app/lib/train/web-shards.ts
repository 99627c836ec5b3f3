/**
 * Shard workers in a browser: the twin of src/cli/train/thread-shards.ts with Web Workers instead of
 * Node's worker threads. Each worker is a TrainingModel on its own thread; all read one copy of the weights
 * in shared memory and write shard gradients into shared buffers that the trainer averages (shards.ts). This
 * needs a cross-origin isolated page (SharedArrayBuffer); elsewhere the trainer computes the shards itself,
 * one after another, with the same numbers.
 */
import type { ShardJob, ShardReply, ShardRequest, ShardThreadInit } from '../../../cli/train/shard-thread.ts';
import type { ModelConfig } from '../../../engine/model.ts';
import type { Batch } from '../../../engine/train/data.ts';
import type { Weights } from '../../../engine/train/parameters.ts';
import { shareWeights, type ShardWorker } from '../../../engine/train/shards.ts';
import type { KernelPreference } from '../../../kernels/select.ts';

class WebShardWorker implements ShardWorker {
  private readonly thread: Worker;
  private nextId = 0;
  private stale = false;
  private failure: Error | undefined;
  private readonly pending = new Map<
    number,
    { resolve: (reply: ShardReply) => void; reject: (error: Error) => void }
  >();

  constructor(init: ShardThreadInit) {
    this.thread = new Worker(new URL('./shard-worker.ts', import.meta.url), {
      type: 'module',
      name: 'glassbox-train-shard',
    });
    this.thread.onmessage = (event: MessageEvent<ShardReply>) => {
      const reply = event.data;
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (!waiting) return;
      if (reply.error !== undefined) waiting.reject(new Error(`training worker: ${reply.error}`));
      else waiting.resolve(reply);
    };
    this.thread.onerror = (event) => {
      event.preventDefault();
      this.failure = new Error(`a training worker stopped${event.message ? `: ${event.message}` : ''}`);
      for (const waiting of this.pending.values()) waiting.reject(this.failure);
      this.pending.clear();
    };
    this.thread.postMessage(init);
  }

  private request(job: ShardJob): Promise<ShardReply> {
    if (this.failure) return Promise.reject(this.failure);
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

  close(): Promise<void> {
    this.thread.terminate();
    return Promise.resolve();
  }
}

/**
 * `threads` workers over `weights` (moved into shared memory if they are not there yet) and the shard
 * gradient buffers (allocated in shared memory by the caller, see shardGradients).
 */
export function startShardWorkers(
  threads: number,
  config: ModelConfig,
  weights: Weights,
  gradients: Weights[],
  kernels: KernelPreference,
): ShardWorker[] {
  shareWeights(weights);
  return Array.from({ length: threads }, () => new WebShardWorker({ config, weights, gradients, kernels }));
}
