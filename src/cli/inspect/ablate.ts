/**
 * `glassbox inspect ablate`: chapter 8's ablation map. For every (layer, head), the change in log p of each
 * actual next token of the prompt when that head is ablated (--mode zero | mean), and its mean over the
 * positions 0 … T−2 (src/analysis/heads.ts).
 */
import { ablationMap, type AblationMode } from '../../analysis/heads.ts';
import { forward } from '../../engine/forward.ts';
import { KVCache } from '../../engine/kv-cache.ts';
import { UsageError } from '../args.ts';
import type { InspectView } from '../inspect.ts';

const MODES: readonly AblationMode[] = ['zero', 'mean'];

export const ablateView: InspectView = {
  summary: 'The ablation map: change in log p(next token) with each head silenced, per head and position',
  options: { mode: { type: 'string' } },
  usage: [
    "  --mode zero|mean      zero the head's output (default), or replace it by its mean over the prompt",
  ],
  run({ model, tokens, kernels, options }) {
    const mode = (options.mode ?? 'zero') as AblationMode;
    if (!MODES.includes(mode)) throw new UsageError(`--mode must be zero or mean, got "${options.mode}"`);
    if (tokens.length < 2)
      throw new UsageError(
        'the ablation map needs a prompt of at least one token after BOS (one prediction to score)',
      );
    const clean = forward(model, tokens, new KVCache(model.config), {
      kernels,
      trace: true,
      logits: 'last',
    }).trace;
    const map = ablationMap(model, clean, kernels, mode);
    const positions = tokens.length - 1;
    return {
      mode,
      nLayers: map.nLayers,
      nHeads: map.nHeads,
      /** Predictions scored: position t predicts token t + 1, for t = 0 … T−2. */
      positions,
      /** log p(actual next token) at each of those positions, without ablation. */
      clean: Array.from(map.clean),
      heads: Array.from({ length: map.nLayers * map.nHeads }, (_, cell) => ({
        layer: Math.floor(cell / map.nHeads),
        head: cell % map.nHeads,
        delta: map.delta[cell],
        perPosition: Array.from(map.perPosition.subarray(cell * positions, (cell + 1) * positions)),
      })),
    };
  },
};
