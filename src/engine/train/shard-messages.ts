/**
 * Shards computed on other threads, spoken to by messages: what `glassbox train --threads N` (Node's worker
 * threads: src/cli/train/thread-shards.ts and shard-thread.ts) and the page's trainer (Web Workers:
 * src/app/lib/train/web-shards.ts and shard-worker.ts) share. Only the way a message crosses differs, so
 * each side here is written once:
 *   - the thread's side: `answerShardRequest` runs a numbered job on the thread's LocalShardWorker;
 *   - the trainer's side: `MessageShardWorker`, a ShardWorker that numbers each job, posts it, and settles
 *     its promise when the reply with that number comes back.
 */
import type { KernelPreference } from '../../kernels/select.ts';
import type { ModelConfig } from '../model.ts';
import type { Batch } from './data.ts';
import type { Weights } from './parameters.ts';
import type { LocalShardWorker, ShardWorker } from './shards.ts';

/** What a thread is started with: the run's weights and gradient buffers, in shared memory. */
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

/** The thread's side: runs one request on its worker and says what came of it, an error included. */
export async function answerShardRequest(
  worker: LocalShardWorker,
  request: ShardRequest,
): Promise<ShardReply> {
  try {
    if (request.weightsChanged) worker.weightsChanged();
    return request.type === 'gradient'
      ? { id: request.id, loss: await worker.gradient(request.shard, request.batch) }
      : { id: request.id, losses: await worker.losses(request.batches) };
  } catch (error) {
    return { id: request.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  }
}

/**
 * The trainer's side: a ShardWorker whose work is done by a thread that answers with answerShardRequest.
 * A subclass posts the requests (`post`) and hands back every reply (`receive`) and the thread's failure
 * (`fail`): after a failure every pending and later request is rejected with it, rather than waiting for
 * a reply that will not come.
 */
export abstract class MessageShardWorker implements ShardWorker {
  private nextId = 0;
  private stale = false;
  private failure: Error | undefined;
  private readonly pending = new Map<
    number,
    { resolve: (reply: ShardReply) => void; reject: (error: Error) => void }
  >();

  /** `what` names the thread in errors, e.g. "training thread". */
  protected constructor(private readonly what: string) {}

  protected abstract post(request: ShardRequest): void;
  abstract close(): Promise<void>;

  protected receive(reply: ShardReply): void {
    const waiting = this.pending.get(reply.id);
    this.pending.delete(reply.id);
    if (!waiting) return;
    if (reply.error !== undefined) waiting.reject(new Error(`${this.what}: ${reply.error}`));
    else waiting.resolve(reply);
  }

  protected fail(error: Error): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(error);
    this.pending.clear();
  }

  private request(job: ShardJob): Promise<ShardReply> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    const request: ShardRequest = { ...job, id, weightsChanged: this.stale };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      try {
        this.post(request);
      } catch (error) {
        // Not sent (a message that cannot be copied, say): the thread still has to hear of changed weights.
        this.pending.delete(id);
        reject(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      this.stale = false;
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
}
