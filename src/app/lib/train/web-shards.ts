/**
 * Shard workers in a browser: the twin of src/cli/train/thread-shards.ts with Web Workers instead of
 * Node's worker threads. Each worker is a TrainingModel on its own thread; all read one copy of the weights
 * in shared memory and write shard gradients into shared buffers that the trainer averages (shards.ts). This
 * needs a cross-origin isolated page (SharedArrayBuffer); elsewhere the trainer computes the shards itself,
 * one after another, with the same numbers.
 */
import type { ModelConfig } from '../../../engine/model.ts';
import {
  MessageShardWorker,
  type ShardReply,
  type ShardRequest,
  type ShardThreadInit,
} from '../../../engine/train/shard-messages.ts';
import type { Weights } from '../../../engine/train/parameters.ts';
import { shareWeights, type ShardWorker } from '../../../engine/train/shards.ts';
import type { KernelPreference } from '../../../kernels/select.ts';

/** A MessageShardWorker over one Web Worker (shard-worker.ts), set up by its first message. */
class WebShardWorker extends MessageShardWorker {
  private readonly thread: Worker;

  constructor(init: ShardThreadInit) {
    super('training worker');
    this.thread = new Worker(new URL('./shard-worker.ts', import.meta.url), {
      type: 'module',
      name: 'glassbox-train-shard',
    });
    this.thread.onmessage = (event: MessageEvent<ShardReply>) => this.receive(event.data);
    this.thread.onerror = (event) => {
      event.preventDefault();
      this.fail(new Error(`a training worker stopped${event.message ? `: ${event.message}` : ''}`));
    };
    this.thread.postMessage(init);
  }

  protected post(request: ShardRequest): void {
    this.thread.postMessage(request);
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
