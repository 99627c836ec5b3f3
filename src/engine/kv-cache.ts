/**
 * The KV cache: the keys (after RoPE) and values of every position processed so far, per layer.
 *
 * A new token's query must be compared with the keys of all earlier tokens. Those keys never change, so
 * instead of recomputing them for every new token we keep them: decoding then costs one token's work, not
 * the whole prefix's. Layout per layer: [seqLen, nKvHeads·headDim], position-major like llama2.c.
 *
 * The forward pass uses a cache only through KVStore (write new rows, read all rows so far), so a cache may
 * keep its rows elsewhere: paged-kv-cache.ts keeps them in fixed-size blocks shared between sequences.
 */
import { headDim, type ModelConfig } from './model.ts';

/** What the forward pass needs from a cache. */
export interface KVStore {
  /** Positions filled: the next token goes at this position. Setting it lower forgets the positions after it. */
  length: number;
  /** The most positions it can hold (the model's context). */
  readonly capacity: number;
  /** Stores `rows` new keys and values of layer l ([rows, kvDim] each) at positions startPos … startPos+rows−1. */
  write(layer: number, startPos: number, keys: Float32Array, values: Float32Array): void;
  /** Layer l's keys and values of positions 0 … positions−1, as [positions, kvDim] arrays, for attention. */
  read(layer: number, positions: number): { keys: Float32Array; values: Float32Array };
}

export class KVCache implements KVStore {
  readonly keys: Float32Array[];
  readonly values: Float32Array[];
  readonly kvDim: number;
  readonly capacity: number;
  /** Number of positions filled: the next token goes at this position. */
  length = 0;

  constructor(config: ModelConfig) {
    this.kvDim = config.nKvHeads * headDim(config);
    this.capacity = config.seqLen;
    const perLayer = this.capacity * this.kvDim;
    this.keys = Array.from({ length: config.nLayers }, () => new Float32Array(perLayer));
    this.values = Array.from({ length: config.nLayers }, () => new Float32Array(perLayer));
  }

  /** Bytes held by the cache when full: 2 (K and V) × layers × positions × kvDim × 4 bytes. */
  get byteSize(): number {
    return 2 * this.keys.length * this.capacity * this.kvDim * 4;
  }

  write(layer: number, startPos: number, keys: Float32Array, values: Float32Array): void {
    this.keys[layer].set(keys, startPos * this.kvDim);
    this.values[layer].set(values, startPos * this.kvDim);
  }

  /** Views, not copies: the rows are already contiguous. */
  read(layer: number, positions: number): { keys: Float32Array; values: Float32Array } {
    const end = positions * this.kvDim;
    return { keys: this.keys[layer].subarray(0, end), values: this.values[layer].subarray(0, end) };
  }

  /** Forget everything (positions restart at 0); the memory is reused. */
  reset(): void {
    this.length = 0;
  }
}
