/**
 * The KV cache: the keys (after RoPE) and values of every position processed so far, per layer.
 *
 * A new token's query must be compared with the keys of all earlier tokens. Those keys never change, so
 * instead of recomputing them for every new token we keep them: decoding then costs one token's work, not
 * the whole prefix's. Layout per layer: [seqLen, nKvHeads·headDim], position-major like llama2.c.
 */
import { headDim, type ModelConfig } from './model.ts';

export class KVCache {
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

  /** Forget everything (positions restart at 0); the memory is reused. */
  reset(): void {
    this.length = 0;
  }
}
