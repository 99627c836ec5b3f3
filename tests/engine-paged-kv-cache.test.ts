/**
 * The paged KV cache (src/engine/paged-kv-cache.ts) against the contiguous one: the same logits for any block
 * size, prompts shared between sequences until one writes (copy-on-write), blocks returned when a sequence
 * is cut back or freed, and one clear message when the pool runs out.
 */
import { describe, expect, it } from 'vitest';
import { forward, forwardBatch } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache, type KVStore } from '../src/engine/kv-cache.ts';
import { BlockPool, PagedKVCache } from '../src/engine/paged-kv-cache.ts';
import { referenceKernels, type MatrixKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { smallConfig } from './helpers.ts';

const config = smallConfig({ seqLen: 40 });
const model = randomModel(config, 9, 0.3);
const prompt = [1, 22, 5, 17, 40, 3, 3, 28, 11, 9];

/** A prompt in one pass, then `decodeSteps` one-token passes (feeding back token (7·i) mod V): every logit row. */
function run(cache: KVStore, kernels: MatrixKernels, tokens = prompt, decodeSteps = 12): Float32Array[] {
  const rows = [forward(model, tokens, cache, { kernels }).logits];
  for (let i = 0; i < decodeSteps; i++)
    rows.push(forward(model, [(7 * i) % config.vocabSize], cache, { kernels }).logits);
  return rows;
}

describe.each<[string, MatrixKernels]>([
  ['readable TypeScript', referenceKernels],
  ['WebAssembly', selectKernels('wasm')],
])('a paged cache with the %s kernels', (_, kernels) => {
  it.each([1, 3, 16])(
    'gives exactly the contiguous cache’s logits with blocks of %i positions',
    (blockSize) => {
      const pool = new BlockPool(config, blockSize, Math.ceil(config.seqLen / blockSize));
      const paged = new PagedKVCache(pool);
      expect(run(paged, kernels)).toEqual(run(new KVCache(config), kernels));
      expect(paged.blockTable.length).toBe(Math.ceil((prompt.length + 12) / blockSize));
    },
  );

  it('in one batched pass, sequences drawing on one pool each get their own logits', () => {
    const pool = new BlockPool(config, 4, 30);
    const sequences = [prompt, [1, 2, 3], prompt.slice(0, 7).reverse()];
    const batched = forwardBatch(
      model,
      sequences.map((tokens) => ({ tokens, cache: new PagedKVCache(pool) })),
      { kernels },
    );
    sequences.forEach((tokens, i) => {
      expect(batched[i]).toEqual(
        forwardBatch(model, [{ tokens, cache: new KVCache(config) }], { kernels })[0],
      );
    });
  });
});

describe('sharing a prompt between sequences', () => {
  const kernels = referenceKernels;

  it('a fork shares every block until it writes; then only the written block is copied', () => {
    const pool = new BlockPool(config, 4, 20);
    const first = new PagedKVCache(pool);
    forward(model, prompt, first, { kernels }); // 10 positions: blocks of 4, 4 and 2
    expect(pool.blocksInUse).toBe(3);
    const second = first.fork();
    expect(pool.blocksInUse).toBe(3);
    expect(second.blockTable).toEqual(first.blockTable);

    const firstNext = forward(model, [30], first, { kernels }).logits;
    const secondNext = forward(model, [31], second, { kernels }).logits;
    // The two full blocks are still shared; the third (written by both) now exists twice.
    expect(pool.blocksInUse).toBe(4);
    expect(second.blockTable.slice(0, 2)).toEqual(first.blockTable.slice(0, 2));
    expect(second.blockTable[2]).not.toBe(first.blockTable[2]);
    // And each continues exactly as if it had run alone.
    expect(firstNext).toEqual(
      run(new KVCache(config), kernels, [...prompt, 30], 0)[0].subarray(10 * config.vocabSize),
    );
    expect(secondNext).toEqual(
      run(new KVCache(config), kernels, [...prompt, 31], 0)[0].subarray(10 * config.vocabSize),
    );
  });

  it('cutting a sequence back or freeing it returns its blocks; an empty pool says so', () => {
    const pool = new BlockPool(config, 4, 4);
    const cache = new PagedKVCache(pool);
    forward(model, prompt, cache, { kernels });
    cache.length = 5; // positions 0…4: two blocks
    expect(pool.blocksInUse).toBe(2);
    expect(cache.blockTable.length).toBe(2);
    // Cutting back and running again recomputes the same numbers as a fresh cache.
    const again = forward(model, prompt.slice(5), cache, { kernels }).logits;
    const fresh = forward(model, prompt, new KVCache(config), { kernels }).logits;
    expect(again).toEqual(fresh.subarray(5 * config.vocabSize));
    cache.free();
    expect(pool.blocksInUse).toBe(0);

    const tooLong = Array.from({ length: 17 }, (_, i) => i % config.vocabSize);
    expect(() => forward(model, tooLong, new PagedKVCache(pool), { kernels })).toThrow(
      /all 4 blocks of 4 positions are in use; free a sequence or make the pool larger/,
    );
  });
});
