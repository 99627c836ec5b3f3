/**
 * Causal self-attention with grouped-query heads — where each token looks back at the tokens before it.
 *
 * For every query position t and head h:
 *   scores[s]  = q_t,h · k_s,g / √headDim      for every earlier-or-same position s ≤ t (the causal mask)
 *   weights    = softmax(scores)               how much token t attends to each s; sums to 1
 *   output_t,h = Σ_s weights[s] · v_s,g        a weighted average of the values
 * where g = ⌊h · nKvHeads / nHeads⌋ is the key/value head this query head shares (GQA: several query heads
 * read the same keys and values, which shrinks the KV cache by nHeads/nKvHeads).
 */
import { kvHeadOf } from './model.ts';
import { softmax } from './ops.ts';

export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/** Where to record scores and weights ([nHeads, T, S] each, S = startPos + T) when tracing. */
export interface AttentionRecord {
  scores: Float32Array;
  weights: Float32Array;
}

/**
 * Attention for T new queries at positions startPos … startPos+T−1 over all cached keys/values up to each
 * query's own position. `keys`/`values` are one layer of the KV cache ([positions, nKvHeads·headDim]) and
 * must already hold the new tokens' keys and values. Writes out[T, nHeads·headDim].
 */
export function causalSelfAttention(
  out: Float32Array,
  queries: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  startPos: number,
  T: number,
  shape: AttentionShape,
  record?: AttentionRecord,
): void {
  const { nHeads, nKvHeads, headDim } = shape;
  const qDim = nHeads * headDim;
  const kvDim = nKvHeads * headDim;
  const totalPositions = startPos + T;
  const scale = 1 / Math.sqrt(headDim);
  const rowWeights = new Float32Array(totalPositions);

  for (let t = 0; t < T; t++) {
    const pos = startPos + t;
    const visible = pos + 1; // positions 0 … pos: the causal mask hides everything after pos
    for (let h = 0; h < nHeads; h++) {
      const kvHead = kvHeadOf(h, nHeads, nKvHeads);
      const qOffset = t * qDim + h * headDim;

      for (let s = 0; s < visible; s++) {
        const kOffset = s * kvDim + kvHead * headDim;
        let dot = 0;
        for (let i = 0; i < headDim; i++) dot += queries[qOffset + i] * keys[kOffset + i];
        rowWeights[s] = dot * scale;
      }
      if (record) {
        const row = (h * T + t) * totalPositions;
        record.scores.set(rowWeights.subarray(0, visible), row);
        record.scores.fill(-Infinity, row + visible, row + totalPositions);
      }

      softmax(rowWeights, visible);
      if (record) {
        const row = (h * T + t) * totalPositions;
        record.weights.set(rowWeights.subarray(0, visible), row);
        record.weights.fill(0, row + visible, row + totalPositions);
      }

      const outOffset = t * qDim + h * headDim;
      out.fill(0, outOffset, outOffset + headDim);
      for (let s = 0; s < visible; s++) {
        const weight = rowWeights[s];
        const vOffset = s * kvDim + kvHead * headDim;
        for (let i = 0; i < headDim; i++) out[outOffset + i] += weight * values[vOffset + i];
      }
    }
  }
}
