/**
 * The browser line of `npm run bench:train`: the page's trainer — this worker running the loop's steps, the
 * shards computed by the page's own shard workers (src/app/lib/train/web-shards.ts) over shared memory, or
 * in turn on this worker for one thread — timed on the same configuration and batches as Node's.
 */
import { randomModel } from '../../../src/engine/init.ts';
import { TrainingModel } from '../../../src/engine/train/model.ts';
import {
  LocalShardWorker,
  sharedFloat32,
  shardGradients,
  type ShardWorker,
} from '../../../src/engine/train/shards.ts';
import { selectKernels } from '../../../src/kernels/select.ts';
import { startShardWorkers } from '../../../src/app/lib/train/web-shards.ts';
import { randomBatches, timeTrainSteps, type Measurement } from '../../bench-train-common.ts';
import type { TrainBenchRequest } from './protocol.ts';

export async function runTrainBench(
  request: TrainBenchRequest,
  log: (line: string) => void,
): Promise<Measurement[]> {
  const { config, shape } = request;
  const batches = randomBatches(shape, request.warmup + request.steps);
  const results: Measurement[] = [];
  for (const threads of request.threads) {
    const kernels = selectKernels('auto');
    await kernels.ready();
    const { weights } = randomModel(config, shape.seed);
    const perShard = shardGradients(weights, shape.shards, threads > 1 ? sharedFloat32 : undefined);
    const workers: ShardWorker[] =
      threads > 1
        ? startShardWorkers(threads, config, weights, perShard, kernels.variant)
        : [new LocalShardWorker(new TrainingModel(config, weights, { kernels }), perShard)];
    try {
      const name = `chromium ${kernels.variant}`;
      results.push(
        await timeTrainSteps(
          name,
          threads,
          weights,
          workers,
          perShard,
          batches,
          request.warmup,
          request.stepOptions,
        ),
      );
      log(
        `${threads} thread${threads === 1 ? '' : 's'}: ${Math.round(results.at(-1)!.tokensPerSecond)} tokens/s`,
      );
    } finally {
      await Promise.all(workers.map((worker) => worker.close()));
    }
  }
  return results;
}
