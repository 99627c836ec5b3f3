/**
 * Training batches: B windows of T+1 consecutive tokens cut from one long token array. Each window gives
 * T inputs and, shifted by one, the T targets — the token that actually came next at every position.
 *
 * Windows start at random offsets. Batch number k is drawn by a generator seeded from (seed, k) alone, so
 * the sampler's whole state is { seed, batchesDrawn }: saving those two numbers and restoring them later
 * continues with exactly the batches an uninterrupted run would have seen.
 */
import { mulberry32 } from '../init.ts';

export interface Batch {
  batchSize: number;
  seqLen: number;
  /** [batchSize·seqLen] token ids, sequence after sequence. */
  inputs: Int32Array;
  /** [batchSize·seqLen]: targets[i] is the token that follows inputs[i] in the text. */
  targets: Int32Array;
}

/** The window starting at `offset`, as sequence `index` of `batch`. */
function copyWindow(batch: Batch, index: number, tokens: ArrayLike<number>, offset: number): void {
  const T = batch.seqLen;
  for (let t = 0; t < T; t++) {
    batch.inputs[index * T + t] = tokens[offset + t];
    batch.targets[index * T + t] = tokens[offset + t + 1];
  }
}

function emptyBatch(batchSize: number, seqLen: number): Batch {
  return {
    batchSize,
    seqLen,
    inputs: new Int32Array(batchSize * seqLen),
    targets: new Int32Array(batchSize * seqLen),
  };
}

export interface SamplerState {
  seed: number;
  batchesDrawn: number;
}

/**
 * A 32-bit seed for batch `index`: the murmur3 finalizer of seed and index, which spreads neighbouring
 * indices over unrelated seeds (mulberry32 streams from nearby seeds would start alike).
 */
function batchSeed(seed: number, index: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class BatchSampler {
  private readonly tokens: ArrayLike<number>;
  readonly batchSize: number;
  readonly seqLen: number;
  private seed: number;
  private batchesDrawn = 0;

  constructor(tokens: ArrayLike<number>, batchSize: number, seqLen: number, seed: number) {
    if (!(Number.isInteger(batchSize) && batchSize > 0 && Number.isInteger(seqLen) && seqLen > 0)) {
      throw new Error(`BatchSampler: batch size and sequence length must be positive integers`);
    }
    if (tokens.length < seqLen + 1) {
      throw new Error(`BatchSampler: ${tokens.length} tokens cannot fill one window of ${seqLen} + 1 tokens`);
    }
    this.tokens = tokens;
    this.batchSize = batchSize;
    this.seqLen = seqLen;
    this.seed = seed >>> 0;
  }

  /** The next batch: B windows at uniformly random offsets 0 … tokens.length − T − 1. */
  next(): Batch {
    const random = mulberry32(batchSeed(this.seed, this.batchesDrawn));
    this.batchesDrawn++;
    const batch = emptyBatch(this.batchSize, this.seqLen);
    const offsets = this.tokens.length - this.seqLen;
    for (let b = 0; b < this.batchSize; b++) {
      copyWindow(batch, b, this.tokens, Math.floor(random() * offsets));
    }
    return batch;
  }

  /** Everything needed to continue this exact sequence of batches later. */
  getState(): SamplerState {
    return { seed: this.seed, batchesDrawn: this.batchesDrawn };
  }

  setState(state: SamplerState): void {
    if (!(Number.isInteger(state.batchesDrawn) && state.batchesDrawn >= 0)) {
      throw new Error(`BatchSampler: batchesDrawn must be a non-negative integer, got ${state.batchesDrawn}`);
    }
    this.seed = state.seed >>> 0;
    this.batchesDrawn = state.batchesDrawn;
  }
}

/**
 * Every non-overlapping window of T+1 tokens, in order, grouped B at a time (the last batch may hold
 * fewer): a fixed set for measuring validation loss the same way every time.
 */
export function sequentialBatches(tokens: ArrayLike<number>, batchSize: number, seqLen: number): Batch[] {
  const windows = Math.floor((tokens.length - 1) / seqLen);
  const batches: Batch[] = [];
  for (let first = 0; first < windows; first += batchSize) {
    const batch = emptyBatch(Math.min(batchSize, windows - first), seqLen);
    for (let b = 0; b < batch.batchSize; b++) copyWindow(batch, b, tokens, (first + b) * seqLen);
    batches.push(batch);
  }
  return batches;
}
