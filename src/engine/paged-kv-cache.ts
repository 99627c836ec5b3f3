/**
 * A paged KV cache, vLLM's idea: instead of reserving a whole context's worth of memory per sequence, keys and
 * values live in fixed-size blocks of `blockSize` positions taken from one shared pool as a sequence grows,
 * and each sequence keeps a block table (its i-th block of positions is pool block table[i]). Memory then
 * follows the tokens actually held, a finished sequence returns its blocks at once, and sequences that start
 * with the same prompt share that prompt's blocks (a block is copied only when one of them writes into it:
 * copy-on-write).
 *
 * Attention reads a sequence's positions in order. vLLM's kernels follow the block table inside the attention
 * loop; ours read one contiguous span, so `read` gathers the blocks into one (the WebAssembly attention copies
 * its keys and values into its own memory anyway, so there the gather replaces a copy it already made).
 */
import { headDim, type ModelConfig } from './model.ts';
import type { KVStore } from './kv-cache.ts';

/** The shared blocks: for every layer, keys and values of numBlocks × blockSize positions. */
export class BlockPool {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  readonly kvDim: number;
  /**
   * Where `read` gathers one sequence's layer for attention: one span per layer shared by every sequence of
   * the pool (a pass reads a sequence's layer and attends over it before reading the next), so paging does not
   * bring back a whole context's memory per sequence.
   */
  readonly gathered: { keys: Float32Array; values: Float32Array }[];
  /** How many sequences' block tables hold each block (0 = free). */
  private readonly references: Uint32Array;
  private readonly free: number[];

  constructor(
    readonly config: ModelConfig,
    readonly blockSize: number,
    readonly numBlocks: number,
  ) {
    if (!Number.isInteger(blockSize) || blockSize < 1)
      throw new Error(`BlockPool: the block size must be a whole number ≥ 1, got ${blockSize}`);
    if (!Number.isInteger(numBlocks) || numBlocks < 1)
      throw new Error(`BlockPool: the number of blocks must be a whole number ≥ 1, got ${numBlocks}`);
    this.kvDim = config.nKvHeads * headDim(config);
    const perLayer = numBlocks * blockSize * this.kvDim;
    this.keys = Array.from({ length: config.nLayers }, () => new Float32Array(perLayer));
    this.values = Array.from({ length: config.nLayers }, () => new Float32Array(perLayer));
    const span = config.seqLen * this.kvDim;
    this.gathered = this.keys.map(() => ({ keys: new Float32Array(span), values: new Float32Array(span) }));
    this.references = new Uint32Array(numBlocks);
    // Lowest-numbered blocks first, so tests and figures see a predictable layout.
    this.free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  }

  /** Blocks in use (held by at least one sequence). */
  get blocksInUse(): number {
    return this.numBlocks - this.free.length;
  }

  allocate(): number {
    const block = this.free.pop();
    if (block === undefined)
      throw new Error(
        `BlockPool: all ${this.numBlocks} blocks of ${this.blockSize} positions are in use; free a sequence or make the pool larger`,
      );
    this.references[block] = 1;
    return block;
  }

  /** One more sequence holds `block`. */
  retain(block: number): void {
    this.references[block]++;
  }

  /** One sequence lets go of `block`; the last one returns it to the pool. */
  release(block: number): void {
    if (--this.references[block] === 0) this.free.push(block);
  }

  isShared(block: number): boolean {
    return this.references[block] > 1;
  }

  /** Where position `offset` of `block` starts in a layer's array. */
  rowStart(block: number, offset: number): number {
    return (block * this.blockSize + offset) * this.kvDim;
  }
}

/** One sequence's cache: a block table into a BlockPool. */
export class PagedKVCache implements KVStore {
  readonly capacity: number;
  /** table[i] is the pool block that holds positions i·blockSize … (i+1)·blockSize − 1. */
  private table: number[] = [];
  private filled = 0;

  constructor(private readonly pool: BlockPool) {
    this.capacity = pool.config.seqLen;
  }

  /** The pool blocks this sequence holds, in order (for figures and tests). */
  get blockTable(): readonly number[] {
    return this.table;
  }

  get length(): number {
    return this.filled;
  }

  /** Cutting a sequence back returns the blocks it no longer needs. */
  set length(positions: number) {
    if (!Number.isInteger(positions) || positions < 0 || positions > this.capacity)
      throw new Error(`PagedKVCache: length ${positions} is outside 0…${this.capacity}`);
    const blocksNeeded = Math.ceil(positions / this.pool.blockSize);
    while (this.table.length > blocksNeeded) this.pool.release(this.table.pop()!);
    this.filled = positions;
  }

  /** A second sequence that starts with this one's positions, sharing its blocks until either writes. */
  fork(): PagedKVCache {
    const copy = new PagedKVCache(this.pool);
    for (const block of this.table) this.pool.retain(block);
    copy.table = [...this.table];
    copy.filled = this.filled;
    return copy;
  }

  /** Returns every block to the pool; the cache is empty afterwards. */
  free(): void {
    this.length = 0;
  }

  write(layer: number, startPos: number, keys: Float32Array, values: Float32Array): void {
    const { pool } = this;
    const rows = keys.length / pool.kvDim;
    for (let row = 0; row < rows; row++) {
      const position = startPos + row;
      const block = this.writableBlock(Math.floor(position / pool.blockSize));
      const at = pool.rowStart(block, position % pool.blockSize);
      const from = row * pool.kvDim;
      pool.keys[layer].set(keys.subarray(from, from + pool.kvDim), at);
      pool.values[layer].set(values.subarray(from, from + pool.kvDim), at);
    }
  }

  read(layer: number, positions: number): { keys: Float32Array; values: Float32Array } {
    const { pool } = this;
    const out = pool.gathered[layer];
    for (let start = 0; start < positions; start += pool.blockSize) {
      const count = Math.min(pool.blockSize, positions - start);
      const from = pool.rowStart(this.table[start / pool.blockSize], 0);
      const span = count * pool.kvDim;
      out.keys.set(pool.keys[layer].subarray(from, from + span), start * pool.kvDim);
      out.values.set(pool.values[layer].subarray(from, from + span), start * pool.kvDim);
    }
    const end = positions * pool.kvDim;
    return { keys: out.keys.subarray(0, end), values: out.values.subarray(0, end) };
  }

  /**
   * The pool block for table entry `index`, ready to be written: a new block past the end of the table, or a
   * private copy of a block another sequence still shares (copy-on-write, every layer at once).
   */
  private writableBlock(index: number): number {
    const { pool } = this;
    if (index === this.table.length) this.table.push(pool.allocate());
    const block = this.table[index];
    if (!pool.isShared(block)) return block;
    const copy = pool.allocate();
    const span = pool.blockSize * pool.kvDim;
    for (let l = 0; l < pool.keys.length; l++) {
      pool.keys[l].copyWithin(
        pool.rowStart(copy, 0),
        pool.rowStart(block, 0),
        pool.rowStart(block, 0) + span,
      );
      pool.values[l].copyWithin(
        pool.rowStart(copy, 0),
        pool.rowStart(block, 0),
        pool.rowStart(block, 0) + span,
      );
    }
    pool.release(block);
    this.table[index] = copy;
    return copy;
  }
}
