/**
 * Chapter 15 (inference engineering): measurements of the loaded model on the reader's device, in the engine
 * worker with the page's kernels. Nothing here runs per keystroke: each handler runs when the reader presses
 * a figure's Measure (or Generate) button, reports its progress through `onProgress` (which answers false to
 * stop), repeats every timing and returns the median and the spread. The passes are the engine's own:
 * forward (prefill, decode, no cache), ContinuousBatcher (batching), PagedKVCache with forwardBatch (the block
 * tables), speculativeGenerate against generateTokens (the draft). Their FLOPs and bytes come from
 * src/analysis/inference.ts, from the model's shapes.
 */
import {
  batchDecodeCost,
  curvePlan,
  generationPasses,
  passCost,
  summarize,
  totalCost,
  type PassCost,
  type Summary,
} from '../../../analysis/inference.ts';
import { ContinuousBatcher } from '../../../engine/batching.ts';
import { forward, forwardBatch } from '../../../engine/forward.ts';
import { generateTokens } from '../../../engine/generate.ts';
import { KVCache } from '../../../engine/kv-cache.ts';
import type { Model } from '../../../engine/model.ts';
import { BlockPool, PagedKVCache } from '../../../engine/paged-kv-cache.ts';
import { XorShiftRng } from '../../../engine/rng.ts';
import { sampleToken } from '../../../engine/sampling.ts';
import { speculativeGenerate, type SpeculativeStats } from '../../../engine/speculative.ts';
import { modelFromFiles } from '../../../formats/bundle.ts';
import { describeKernels, selectKernels, type KernelSet } from '../../../kernels/select.ts';
import { current, requireModel } from '../../lib/worker/state.ts';
import { filled } from '../../../../scripts/bench-common.ts';

/** Asked between timed runs (never inside one): how far the measurement is; false stops it. */
export type Progress = (done: number, total: number) => boolean | Promise<boolean>;

/** A sample runs its work repeatedly for at least this long, so a clock step (5–100 µs) is a small error. */
const SAMPLE_MS = 12;
/** Samples per timing: the figures show their median and their range. */
const SAMPLES = 7;

const GREEDY = { temperature: 0 };

function kernels(): KernelSet {
  return selectKernels(current.choice);
}

/** Milliseconds per call of `work`, one sample: as many calls as fit in SAMPLE_MS (at least one). */
function sampleMs(work: () => void, minMs = SAMPLE_MS): number {
  let calls = 0;
  const start = performance.now();
  for (;;) {
    work();
    calls++;
    const elapsed = performance.now() - start;
    if (elapsed >= minMs) return elapsed / calls;
  }
}

/** A stop the reader asked for: the handler ends and returns null. */
class Stopped extends Error {}

/** `count` samples of `work` (after one untimed call, which packs the weights and warms the code up). */
async function timed(
  work: () => void,
  progress: { tick: () => Promise<void> },
  count = SAMPLES,
  minMs = SAMPLE_MS,
): Promise<Summary> {
  work();
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    samples.push(sampleMs(work, minMs));
    await progress.tick();
  }
  return summarize(samples);
}

/** Counts finished steps out of `total` and asks the page whether to go on. */
function counter(onProgress: Progress, total: number) {
  let done = 0;
  return {
    total,
    async tick() {
      done++;
      if (!(await onProgress(Math.min(done, total), total))) throw new Stopped();
    },
  };
}

/** Runs a measurement; a stop gives null. */
async function stoppable<T>(run: () => Promise<T>): Promise<T | null> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof Stopped) return null;
    throw error;
  }
}

export interface Environment {
  /** describeKernels of the kernels every measurement runs on. */
  kernels: string;
  crossOriginIsolated: boolean;
  cores: number;
  /** Bytes a real KVCache of the loaded model allocates per position (byteSize / capacity). */
  cacheBytesPerPosition: number;
  /** Bytes of the model's weights as float32 (what one pass reads once). */
  weightBytes: number;
}

export interface PrefillDecodeAnswer {
  tokens: number[];
  /** ms for one pass over all M tokens; ms for M one-token passes (positions 0 … M−1). */
  prefillMs: Summary;
  decodeMs: Summary;
  prefillCost: PassCost;
  /** The M decode passes together. */
  decodeCost: { flops: number; bytes: number; intensity: number };
  /** Logits of the last position by both routes agree (largest difference). */
  largestDifference: number;
}

export interface CurveAnswer {
  tokens: number[];
  /** Tokens generated (greedy), the same both ways. */
  generated: number[];
  text: string;
  sameTokens: boolean;
  /** Per generated token: the position its pass ended at, and ms with and without the cache (medians). */
  steps: { position: number; cachedMs: number; uncachedMs: number }[];
  cachedTotal: Summary;
  uncachedTotal: Summary;
  cachedCost: { flops: number; bytes: number; intensity: number };
  uncachedCost: { flops: number; bytes: number; intensity: number };
}

export interface BatchRow {
  batch: number;
  /** ms per decode step of the whole batch. */
  stepMs: Summary;
  /** Tokens per second: batch / step time (median). */
  tokensPerSecond: number;
  cost: PassCost;
}

export interface BatchAnswer {
  tokens: number[];
  steps: number;
  rows: BatchRow[];
}

export interface PagedSnapshot {
  id: number;
  tokens: number[];
  blockSize: number;
  numBlocks: number;
  step: number;
  /** Per continuation: its block table (logical block i → pool block), positions held, its text after the prompt. */
  sequences: { table: number[]; length: number; generated: number[]; pieces: string[] }[];
  blocksInUse: number;
  /** Pool blocks both continuations hold. */
  shared: number[];
  /** Copy-on-write this step: logical block i of a continuation moved from one pool block to another. */
  copies: { sequence: number; index: number; from: number; to: number }[];
  done: boolean;
}

export interface SpeculativeAnswer {
  tokens: number[];
  draftTokens: number;
  count: number;
  plainText: string;
  speculativeText: string;
  plainGenerated: number[];
  speculativeGenerated: number[];
  identical: boolean;
  stats: SpeculativeStats;
  plainMs: Summary;
  speculativeMs: Summary;
  /** One target decode step, one target pass over k + 1 tokens, one draft decode step (ms). */
  targetStepMs: Summary;
  targetCheckMs: Summary;
  draftStepMs: Summary;
}

export interface DeviceAnswer {
  /** GFLOP/s of one large product x·wᵀ [M×K]·[K×N] through the page's kernels. */
  peak: { gflops: Summary; shape: [number, number, number] };
  /** GB/s of a matrix×vector product over a matrix larger than the processor's caches. */
  bandwidth: { gbs: Summary; bytes: number; shape: [number, number] };
}

/** The draft model, loaded once from the site when the loaded model is the house model. */
let draft: { model: Model; forModel: Model } | undefined;

/** The context a measurement's text may use: cut so that generation has room after it. */
function promptOf(tokens: readonly number[], room: number): number[] {
  const { model } = requireModel();
  return tokens.slice(0, Math.max(1, model.config.seqLen - room));
}

/** Greedy generation of `count` tokens, with the cache (prefill then decode) or without (the prefix again). */
function generateGreedy(model: Model, prompt: number[], count: number, cached: boolean, times?: number[]) {
  const k = kernels();
  const text = [...prompt];
  const cache = new KVCache(model.config);
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    let logits: Float32Array;
    if (cached) {
      logits = forward(model, text.slice(cache.length), cache, { kernels: k, logits: 'last' }).logits;
    } else {
      cache.reset();
      logits = forward(model, text, cache, { kernels: k, logits: 'last' }).logits;
    }
    text.push(sampleToken(logits, GREEDY, new XorShiftRng(1)));
    times?.push(performance.now() - start);
  }
  return text.slice(prompt.length);
}

let paged:
  | {
      id: number;
      tokens: number[];
      pool: BlockPool;
      caches: PagedKVCache[];
      generated: number[][];
      pending: number[];
      step: number;
      done: boolean;
    }
  | undefined;
let pagedRuns = 0;

function pagedSnapshot(copies: PagedSnapshot['copies']): PagedSnapshot {
  const { tokenizer } = requireModel();
  const run = paged!;
  const tables = run.caches.map((cache) => [...cache.blockTable]);
  const [a, b] = tables;
  return {
    id: run.id,
    tokens: run.tokens,
    blockSize: run.pool.blockSize,
    numBlocks: run.pool.numBlocks,
    step: run.step,
    sequences: run.caches.map((cache, i) => ({
      table: tables[i],
      length: cache.length,
      generated: [...run.generated[i]],
      pieces: run.generated[i].map((token) => tokenizer.pieceLabel(token)),
    })),
    blocksInUse: run.pool.blocksInUse,
    shared: a.filter((block) => b.includes(block)),
    copies,
    done: run.done,
  };
}

/** The two most likely tokens of a row of logits (lowest id first on a tie, as greedy sampling picks). */
function topTwo(logits: Float32Array): [number, number] {
  let first = 0;
  let second = -1;
  for (let i = 1; i < logits.length; i++) {
    if (logits[i] > logits[first]) {
      second = first;
      first = i;
    } else if (second < 0 || logits[i] > logits[second]) second = i;
  }
  return [first, second];
}

export const handlers = {
  environment(): Environment {
    const { model } = requireModel();
    const cache = new KVCache(model.config);
    return {
      kernels: describeKernels(kernels()),
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      cores: typeof navigator === 'object' ? (navigator.hardwareConcurrency ?? 1) : 1,
      cacheBytesPerPosition: cache.byteSize / cache.capacity,
      weightBytes: passCost(model.config, 1, 0).weightBytes,
    };
  },

  /** One prefill of the reader's M tokens against M one-token decode steps over the same tokens. */
  prefillDecode(tokens: number[], onProgress: Progress): Promise<PrefillDecodeAnswer | null> {
    return stoppable(async () => {
      const { model } = requireModel();
      const text = tokens.slice(0, model.config.seqLen);
      const k = kernels();
      const progress = counter(onProgress, 2 * SAMPLES);
      let prefillLogits: Float32Array = new Float32Array(0);
      let decodeLogits: Float32Array = new Float32Array(0);
      const prefill = () => {
        prefillLogits = forward(model, text, new KVCache(model.config), {
          kernels: k,
          logits: 'last',
        }).logits;
      };
      const decode = () => {
        const cache = new KVCache(model.config);
        for (const token of text)
          decodeLogits = forward(model, [token], cache, { kernels: k, logits: 'last' }).logits;
      };
      const prefillMs = await timed(prefill, progress);
      const decodeMs = await timed(decode, progress);
      let largestDifference = 0;
      for (let i = 0; i < prefillLogits.length; i++)
        largestDifference = Math.max(largestDifference, Math.abs(prefillLogits[i] - decodeLogits[i]));
      return {
        tokens: [...tokens],
        prefillMs,
        decodeMs,
        prefillCost: passCost(model.config, text.length, 0),
        decodeCost: totalCost(text.map((_, position) => passCost(model.config, 1, position))),
        largestDifference,
      };
    });
  },

  /**
   * Greedy generation after the reader's text, with and without the KV cache, timing every token; repeated
   * `rounds` times, each token's median kept.
   */
  cacheCurve(tokens: number[], onProgress: Progress, rounds = 3): Promise<CurveAnswer | null> {
    return stoppable(async () => {
      const { model, tokenizer } = requireModel();
      const plan = curvePlan(model.config, tokens.length);
      const prompt = tokens.slice(0, plan.promptLength);
      const count = plan.count;
      const progress = counter(onProgress, 2 * rounds + 1);
      generateGreedy(model, prompt, Math.min(count, 4), true); // warm-up: packs the weights
      const cachedRuns: number[][] = [];
      const uncachedRuns: number[][] = [];
      let cachedTokens: number[] = [];
      let uncachedTokens: number[] = [];
      await progress.tick();
      for (let round = 0; round < rounds; round++) {
        const withCache: number[] = [];
        cachedTokens = generateGreedy(model, prompt, count, true, withCache);
        cachedRuns.push(withCache);
        await progress.tick();
        const without: number[] = [];
        uncachedTokens = generateGreedy(model, prompt, count, false, without);
        uncachedRuns.push(without);
        await progress.tick();
      }
      const median = (runs: number[][], i: number) => summarize(runs.map((run) => run[i])).median;
      const sum = (run: number[]) => run.reduce((a, b) => a + b, 0);
      return {
        tokens: [...tokens],
        generated: cachedTokens,
        text: tokenizer.decode([...prompt, ...cachedTokens]),
        sameTokens: cachedTokens.join() === uncachedTokens.join(),
        steps: cachedTokens.map((_, i) => ({
          position: prompt.length + i,
          cachedMs: median(cachedRuns, i),
          uncachedMs: median(uncachedRuns, i),
        })),
        cachedTotal: summarize(cachedRuns.map(sum)),
        uncachedTotal: summarize(uncachedRuns.map(sum)),
        cachedCost: totalCost(generationPasses(model.config, prompt.length, count, true)),
        uncachedCost: totalCost(generationPasses(model.config, prompt.length, count, false)),
      };
    });
  },

  /**
   * Batch sizes 1 … maxBatch: that many requests of the reader's text in the engine's ContinuousBatcher, the
   * first step (every prompt's prefill) untimed, then `steps` decode steps of the whole batch, each timed.
   */
  batching(tokens: number[], onProgress: Progress, maxBatch = 8, steps = 12): Promise<BatchAnswer | null> {
    return stoppable(async () => {
      const { model } = requireModel();
      const prompt = promptOf(tokens, steps + 1);
      const decodeSteps = Math.min(steps, model.config.seqLen - prompt.length);
      const progress = counter(onProgress, 4 * maxBatch);
      const rows: BatchRow[] = [];
      const run = (batch: number, times?: number[]) => {
        const batcher = new ContinuousBatcher(model, { kernels: kernels(), maxBatch: batch });
        for (let id = 0; id < batch; id++)
          batcher.submit({
            id,
            promptTokens: prompt,
            steps: prompt.length + decodeSteps,
            sampling: { temperature: 0.8 },
            rng: new XorShiftRng(id + 1),
          });
        batcher.step(); // the prefill of every prompt
        for (let s = 0; s < decodeSteps; s++) {
          const start = performance.now();
          const step = batcher.step();
          const elapsed = performance.now() - start;
          if (step.sequences === batch) times?.push(elapsed);
        }
      };
      // Rounds go over every batch size in turn, so a burst of other work on the machine spreads over all
      // sizes rather than spoiling one.
      const sizes = Array.from({ length: maxBatch }, (_, i) => i + 1);
      const times = sizes.map(() => [] as number[]);
      for (let round = 0; round < 4; round++) {
        for (const batch of sizes) {
          run(batch, round === 0 ? undefined : times[batch - 1]); // round 0 warms up
          await progress.tick();
        }
      }
      for (const batch of sizes) {
        const stepMs = summarize(times[batch - 1]);
        rows.push({
          batch,
          stepMs,
          tokensPerSecond: (batch * 1000) / stepMs.median,
          cost: batchDecodeCost(model.config, batch, prompt.length + decodeSteps / 2),
        });
      }
      return { tokens: [...tokens], steps: decodeSteps, rows };
    });
  },

  /**
   * A paged cache for two continuations of the reader's text: the prompt is prefilled once into a block
   * table, forked (both continuations hold the same blocks), and then the first continuation takes the most
   * likely token, the second the runner-up; after that both continue greedily, one forwardBatch per step.
   */
  pagedStart(tokens: number[], blockSize: number): PagedSnapshot {
    const { model } = requireModel();
    const prompt = tokens.slice(0, model.config.seqLen);
    const numBlocks = 2 * Math.ceil(model.config.seqLen / blockSize);
    const pool = new BlockPool(model.config, blockSize, numBlocks);
    const first = new PagedKVCache(pool);
    const { logits } = forward(model, prompt, first, { kernels: kernels(), logits: 'last' });
    const second = first.fork();
    const [best, runnerUp] = topTwo(logits);
    paged = {
      id: ++pagedRuns,
      tokens: [...tokens],
      pool,
      caches: [first, second],
      generated: [[best], [runnerUp]],
      pending: [best, runnerUp],
      step: 0,
      done: prompt.length >= model.config.seqLen,
    };
    return pagedSnapshot([]);
  },

  /** One decode step of both continuations (one batched pass); reports the copies copy-on-write made. */
  pagedStep(id: number): PagedSnapshot {
    const { model } = requireModel();
    if (!paged || paged.id !== id) throw new Error('this run was replaced by a newer one: start again');
    if (paged.done) return pagedSnapshot([]);
    const before = paged.caches.map((cache) => [...cache.blockTable]);
    const logits = forwardBatch(
      model,
      paged.caches.map((cache, i) => ({ tokens: [paged!.pending[i]], cache })),
      { kernels: kernels(), logits: 'last' },
    );
    paged.step++;
    const copies: PagedSnapshot['copies'] = [];
    paged.caches.forEach((cache, sequence) => {
      cache.blockTable.forEach((block, index) => {
        const was = before[sequence][index];
        if (was !== undefined && was !== block) copies.push({ sequence, index, from: was, to: block });
      });
    });
    paged.pending = logits.map((row) => sampleToken(row, GREEDY, new XorShiftRng(1)));
    paged.pending.forEach((token, i) => paged!.generated[i].push(token));
    paged.done = paged.caches[0].length >= model.config.seqLen;
    return pagedSnapshot(copies);
  },

  /** Whether a draft model is at hand for the loaded model (the house model's, from the site). */
  async loadDraft(baseUrl: string): Promise<{ available: boolean; reason?: string; parameters?: number }> {
    const { model, info } = requireModel();
    if (info.id !== 'house')
      return {
        available: false,
        reason: `${info.label} has no draft model here: the course ships one only for the house model`,
      };
    if (draft?.forModel !== model) {
      const names = ['config.json', 'model.safetensors', 'tokenizer.json'];
      const files = await Promise.all(
        names.map(async (name) => {
          const response = await fetch(`${baseUrl}${name}`);
          if (!response.ok) throw new Error(`${baseUrl}${name}: HTTP ${response.status}`);
          return { name, bytes: new Uint8Array(await response.arrayBuffer()) };
        }),
      );
      const loaded = modelFromFiles(files).model;
      if (loaded.config.vocabSize !== model.config.vocabSize)
        return { available: false, reason: 'the draft does not share the loaded model’s vocabulary' };
      draft = { model: loaded, forModel: model };
    }
    const parameters = passCost(draft.model.config, 1, 0).weightBytes / 4;
    return { available: true, parameters };
  },

  /**
   * Greedy generation of `count` tokens after the reader's text by the target alone (generateTokens) and by
   * speculative decoding with the draft guessing `draftTokens` per round; both timed, texts compared.
   */
  speculative(
    tokens: number[],
    draftTokens: number,
    onProgress: Progress,
    count = 48,
  ): Promise<SpeculativeAnswer | null> {
    return stoppable(async () => {
      const { model, tokenizer } = requireModel();
      if (!draft || draft.forModel !== model) throw new Error('the draft model is not loaded');
      const draftModel = draft.model;
      const prompt = promptOf(tokens, count);
      const steps = Math.min(model.config.seqLen, prompt.length - 1 + count);
      const k = kernels();
      // No stop tokens: a measurement of speed writes all `count` tokens, even past the end of a chapter.
      const stopTokens: number[] = [];
      const progress = counter(onProgress, 3 * 5 + 3);
      let plain: number[] = [];
      let spec: number[] = [];
      let stats: SpeculativeStats = { proposed: 0, accepted: 0, targetPasses: 0, draftPasses: 0 };
      const runPlain = () => {
        plain = [];
        for (const step of generateTokens(model, prompt, {
          steps,
          sampling: GREEDY,
          rng: new XorShiftRng(1),
          stopTokens,
          kernels: k,
        }))
          if (!step.fromPrompt) plain.push(step.token);
      };
      const runSpeculative = () => {
        spec = [];
        const generator = speculativeGenerate(model, prompt, {
          steps,
          sampling: GREEDY,
          rng: new XorShiftRng(1),
          stopTokens,
          kernels: k,
          draft: draftModel,
          draftTokens,
        });
        for (let next = generator.next(); ; next = generator.next()) {
          if (next.done) {
            stats = next.value;
            break;
          }
          if (!next.value.fromPrompt) spec.push(next.value.token);
        }
      };
      const plainMs = await timed(runPlain, progress, 5, 0);
      const speculativeMs = await timed(runSpeculative, progress, 5, 0);
      // The three passes speculation trades between, at the middle of the generated text.
      const at = Math.min(model.config.seqLen - draftTokens - 1, prompt.length + (count >> 1));
      const context = [...prompt, ...plain].slice(0, at);
      const cacheAt = (m: Model) => {
        const cache = new KVCache(m.config);
        forward(m, context, cache, { kernels: k, logits: 'last' });
        return cache;
      };
      const targetCache = cacheAt(model);
      const draftCache = cacheAt(draftModel);
      const probe = (m: Model, cache: KVCache, rows: number) => () => {
        cache.length = context.length;
        forward(
          m,
          Array.from({ length: rows }, () => context[context.length - 1]),
          cache,
          { kernels: k },
        );
      };
      const targetStepMs = await timed(probe(model, targetCache, 1), progress, 5);
      const targetCheckMs = await timed(probe(model, targetCache, draftTokens + 1), progress, 5);
      const draftStepMs = await timed(probe(draftModel, draftCache, 1), progress, 5);
      return {
        tokens: [...tokens],
        draftTokens,
        count: plain.length,
        plainText: tokenizer.decode([...prompt, ...plain]),
        speculativeText: tokenizer.decode([...prompt, ...spec]),
        plainGenerated: plain,
        speculativeGenerated: spec,
        identical: plain.join() === spec.join(),
        stats,
        plainMs,
        speculativeMs,
        targetStepMs,
        targetCheckMs,
        draftStepMs,
      };
    });
  },

  /**
   * The device's two roofs, through the page's kernels: GFLOP/s of one large product, and GB/s of a
   * matrix×vector product over a 64 MiB matrix (larger than the caches of most processors), which reads every
   * weight once for two operations.
   */
  device(onProgress: Progress): Promise<DeviceAnswer | null> {
    return stoppable(async () => {
      const k = kernels();
      const progress = counter(onProgress, 2 * 5);
      const [M, K, N] = [128, 512, 2048];
      const x = filled(M * K, 1);
      const w = filled(N * K, 2);
      const out = new Float32Array(M * N);
      const productMs = await timed(() => k.matmulTransposedB(out, x, w, M, K, N), progress, 5, 30);
      const [rows, columns] = [4096, 4096];
      const big = filled(rows * columns, 3);
      const vector = filled(columns, 4);
      const result = new Float32Array(rows);
      try {
        const streamMs = await timed(
          () => k.matmulTransposedB(result, vector, big, 1, columns, rows),
          progress,
          5,
          30,
        );
        const bytes = big.byteLength;
        const per = (ms: Summary, scale: number): Summary => ({
          median: scale / ms.median,
          min: scale / ms.max,
          max: scale / ms.min,
          count: ms.count,
        });
        return {
          peak: { gflops: per(productMs, (2 * M * K * N) / 1e6), shape: [M, K, N] },
          bandwidth: { gbs: per(streamMs, bytes / 1e6), bytes, shape: [rows, columns] },
        };
      } finally {
        k.invalidate(big); // 64 MiB of packed copy: give it back
        k.invalidate(w);
      }
    });
  },
};
