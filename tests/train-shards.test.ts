/**
 * Data-parallel training (src/engine/train/shards.ts): a batch cut into shards, each shard's gradient
 * computed on its own and averaged by size, is the whole batch's gradient; one shard is exactly the plain step
 * (forward, backward, clip, AdamW on the whole batch);
 * and `glassbox train` gives the same bits on one thread as on two (the built CLI's worker threads).
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mulberry32, randomModel } from '../src/engine/init.ts';
import { createAdamWState, type AdamWState } from '../src/engine/train/adamw.ts';
import { BatchSampler, type Batch } from '../src/engine/train/data.ts';
import { TrainingModel } from '../src/engine/train/model.ts';
import { namedParameters, toFloat64, zerosLike, type Weights } from '../src/engine/train/parameters.ts';
import {
  averageShards,
  LocalShardWorker,
  shardGradients,
  shardedEvaluateLoss,
  splitBatch,
} from '../src/engine/train/shards.ts';
import { evaluateLoss, trainStep, type TrainStepOptions } from '../src/engine/train/step.ts';
import {
  answerShardRequest,
  MessageShardWorker,
  type ShardReply,
  type ShardRequest,
} from '../src/engine/train/shard-messages.ts';
import { adamwStep, DEFAULT_ADAMW } from '../src/engine/train/adamw.ts';
import { clipGradientNorm } from '../src/engine/train/clip.ts';
import { learningRateAt } from '../src/engine/train/schedule.ts';
import type { TrainSettings } from '../src/cli/train/run.ts';
import { smallConfig } from './helpers.ts';

const config = smallConfig({
  hiddenDim: 64,
  vocabSize: 128,
  seqLen: 16,
  ropeLayout: 'half',
  sharedClassifier: true,
});

function batches(count: number, batchSize: number): Batch[] {
  const random = mulberry32(11);
  const tokens = Int32Array.from({ length: 4000 }, () => Math.floor(random() * config.vocabSize));
  const sampler = new BatchSampler(tokens, batchSize, config.seqLen, 5);
  return Array.from({ length: count }, () => sampler.next());
}

const options: TrainStepOptions = {
  schedule: { maxLr: 1e-2, minLr: 1e-3, warmupSteps: 2, totalSteps: 10 },
  maxGradNorm: 1,
};

describe('shards', () => {
  it('splitBatch cuts B sequences into groups differing by at most one, in order, losing nothing', () => {
    const [batch] = batches(1, 7);
    const shards = splitBatch(batch, 3);
    expect(shards.map((s) => s.batchSize)).toEqual([3, 2, 2]);
    const joined = (key: 'inputs' | 'targets') => shards.flatMap((s) => [...s[key]]);
    expect(joined('inputs')).toEqual([...batch.inputs]);
    expect(joined('targets')).toEqual([...batch.targets]);
    expect(() => splitBatch(batch, 8)).toThrow(/cannot cut 7 sequences into 8 shards/);
    expect(() => splitBatch(batch, 0)).toThrow(/cannot cut/);
  });

  it('the size-weighted average of shard gradients is the whole batch gradient (float64, uneven shards)', () => {
    const weights = toFloat64(randomModel(config, 3).weights);
    const model = new TrainingModel(config, weights);
    const [batch] = batches(1, 5);
    const whole = zerosLike(weights);
    const wholeLoss = model.forward(batch);
    model.backward(whole);

    const shards = splitBatch(batch, 2); // 3 + 2 sequences
    const parts = shards.map(() => zerosLike(weights));
    const losses = shards.map((shard, k) => {
      const loss = model.forward(shard);
      model.backward(parts[k]);
      return loss;
    });
    const fractions = shards.map((s) => s.batchSize / batch.batchSize);
    const averaged = zerosLike(weights);
    averageShards(averaged, parts, fractions);

    expect(Math.abs(losses[0] * fractions[0] + losses[1] * fractions[1] - wholeLoss)).toBeLessThan(1e-12);
    const expected = namedParameters(whole);
    for (const [index, { name, tensor }] of namedParameters(averaged).entries()) {
      const reference = expected[index].tensor.data;
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < reference.length; i++) {
        worst = Math.max(worst, Math.abs(tensor.data[i] - reference[i]));
        scale = Math.max(scale, Math.abs(reference[i]));
      }
      expect(worst / scale, name).toBeLessThan(1e-12);
    }
  });

  it('one shard on this thread is exactly the plain step (forward, backward, clip, AdamW), bit for bit', async () => {
    /** The textbook step on the whole batch, written out here so that the shard path has something to equal. */
    const plainStep = (model: TrainingModel, gradients: Weights, optimizer: AdamWState, batch: Batch) => {
      const learningRate = learningRateAt(optimizer.step, options.schedule);
      const loss = model.forward(batch);
      model.backward(gradients);
      const gradNorm = clipGradientNorm(gradients, options.maxGradNorm);
      adamwStep(optimizer, model.weights, gradients, learningRate, DEFAULT_ADAMW);
      model.weightsChanged();
      return { loss, gradNorm };
    };
    const run = async (sharded: boolean) => {
      const { weights } = randomModel(config, 9);
      const model = new TrainingModel(config, weights);
      const gradients = zerosLike(weights);
      const optimizer = createAdamWState(weights);
      const perShard = shardGradients(weights, 1);
      const workers = [new LocalShardWorker(model, perShard)];
      const losses: number[] = [];
      for (const batch of batches(4, 4)) {
        const result = sharded
          ? await trainStep(workers, perShard, gradients, weights, optimizer, batch, options)
          : plainStep(model, gradients, optimizer, batch);
        losses.push(result.loss, result.gradNorm);
      }
      const evaluation = batches(3, 3);
      losses.push(sharded ? await shardedEvaluateLoss(workers, evaluation) : evaluateLoss(model, evaluation));
      return { losses, weights: namedParameters(weights).map((p) => [...p.tensor.data]) };
    };
    const plain = await run(false);
    const sharded = await run(true);
    const untrained = namedParameters(randomModel(config, 9).weights).map((p) => [...p.tensor.data]);
    expect(plain.weights).not.toEqual(untrained); // the steps did update the weights
    expect(sharded.losses).toEqual(plain.losses);
    expect(sharded.weights).toEqual(plain.weights);
  });

  it('two shards train like the whole batch up to float32 rounding', async () => {
    const run = async (shards: number) => {
      const { weights } = randomModel(config, 9);
      const perShard = shardGradients(weights, shards);
      const workers = [new LocalShardWorker(new TrainingModel(config, weights), perShard)];
      const gradients = zerosLike(weights);
      const optimizer = createAdamWState(weights);
      const losses: number[] = [];
      for (const batch of batches(5, 4)) {
        losses.push((await trainStep(workers, perShard, gradients, weights, optimizer, batch, options)).loss);
      }
      return losses;
    };
    const one = await run(1);
    const two = await run(2);
    two.forEach((loss, i) => expect(Math.abs(loss - one[i])).toBeLessThan(1e-4));
  });
});

// The worker threads start from the built CLI (dist/), which `npm test` builds before running the tests.
const built = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'train', 'run.js');
if (!existsSync(built))
  console.warn(`[train-shards] thread test skipped: ${built} is missing (run npm run build)`);

describe.skipIf(!existsSync(built))('glassbox train on worker threads', () => {
  it('two threads give the same losses and weights as one, and a run stopped on two resumes on one', async () => {
    const { trainModel, DEFAULT_TRAIN_SETTINGS, LOG_FILE } = (await import(
      built
    )) as typeof import('../src/cli/train/run.ts');
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-threads-'));
    const input = join(dir, 'text.txt');
    writeFileSync(
      input,
      Array.from(
        { length: 60 },
        (_, i) =>
          `Psalm ${i + 1}\nPraise the lamps, all ${i + 2} rooms.\nAnd the rooms gave light to ${i + 3} lamps.`,
      ).join('\n\n'),
    );
    const settings: TrainSettings = {
      ...DEFAULT_TRAIN_SETTINGS,
      input,
      vocabSize: 300,
      dim: 16,
      layers: 2,
      heads: 2,
      kvHeads: 1,
      hidden: 24,
      seqLen: 16,
      batchSize: 4,
      steps: 12,
      warmupSteps: 2,
      evalEvery: 4,
      checkpointEvery: 4,
      shards: 2,
    };
    const io = (stopAfter = Infinity) => {
      let calls = 0;
      return { log: () => {}, stopRequested: () => ++calls >= stopAfter };
    };
    const one = await trainModel(
      settings,
      join(dir, 'one'),
      { resume: false, kernels: 'auto', threads: 1 },
      io(),
    );
    const first = await trainModel(
      settings,
      join(dir, 'two'),
      { resume: false, kernels: 'auto', threads: 2 },
      io(6),
    );
    expect(first).toMatchObject({ stepsDone: 6, interrupted: true });
    const rest = await trainModel(
      settings,
      join(dir, 'two'),
      { resume: true, kernels: 'auto', threads: 1 },
      io(),
    );
    expect([...first.losses, ...rest.losses]).toEqual(one.losses);
    const strip = (text: string) => text.replace(/"tokensPerSecond":[^,}]+/g, '');
    expect(strip(readFileSync(join(dir, 'two', LOG_FILE), 'utf8'))).toBe(
      strip(readFileSync(join(dir, 'one', LOG_FILE), 'utf8')),
    );
    expect(
      readFileSync(join(dir, 'two', 'model.safetensors')).equals(
        readFileSync(join(dir, 'one', 'model.safetensors')),
      ),
    ).toBe(true);
  });
});

describe('shards on other threads, by messages (shard-messages.ts)', () => {
  /** A MessageShardWorker whose "thread" answers on this one, after a turn, or fails when told to. */
  class LoopbackShardWorker extends MessageShardWorker {
    readonly posted: ShardRequest[] = [];
    failNext = false;
    throwNext = false;
    constructor(private readonly worker: LocalShardWorker) {
      super('test thread');
    }
    protected post(request: ShardRequest): void {
      if (this.throwNext) throw new Error('could not be cloned');
      this.posted.push(request);
      if (this.failNext) {
        setTimeout(() => this.fail(new Error('test thread exited (code 1)')));
        return;
      }
      void answerShardRequest(this.worker, request).then((reply: ShardReply) =>
        setTimeout(() => this.receive(reply)),
      );
    }
    close(): Promise<void> {
      return Promise.resolve();
    }
  }

  it('gives what the worker on this thread gives, says when the weights changed, and rejects after a failure', async () => {
    const { weights } = randomModel(config, 3);
    const [batch] = batches(1, 2);
    const [mine, theirs] = [zerosLike(weights), zerosLike(weights)];
    const local = new LocalShardWorker(new TrainingModel(config, weights), [mine]);
    const remote = new LoopbackShardWorker(
      new LocalShardWorker(new TrainingModel(config, weights), [theirs]),
    );

    expect(await remote.gradient(0, batch)).toBe(await local.gradient(0, batch));
    const gradientOf = (gradients: Weights) => namedParameters(gradients).map((p) => [...p.tensor.data]);
    expect(gradientOf(theirs)).toEqual(gradientOf(mine));
    remote.weightsChanged();
    expect(await remote.losses([batch, batch])).toEqual(await local.losses([batch, batch]));
    expect(remote.posted.map((request) => request.weightsChanged)).toEqual([false, true]);

    // A job that could not be sent is rejected, and the next one still says the weights changed.
    remote.weightsChanged();
    remote.throwNext = true;
    await expect(remote.losses([batch])).rejects.toThrow('could not be cloned');
    remote.throwNext = false;
    await remote.losses([batch]);
    expect(remote.posted.at(-1)!.weightsChanged).toBe(true);
    // A job the thread's worker cannot do comes back as an error naming the thread.
    await expect(remote.gradient(5, batch)).rejects.toThrow(/^test thread: /);
    // Once the thread has failed, pending and later jobs are rejected, not left waiting.
    remote.failNext = true;
    await expect(remote.gradient(0, batch)).rejects.toThrow('test thread exited (code 1)');
    remote.failNext = false;
    await expect(remote.losses([batch])).rejects.toThrow('test thread exited (code 1)');
  });
});
