/**
 * `glassbox inspect lens`: the logit lens of chapter 10 (src/analysis/lens.ts's logitLens), for every layer
 * boundary (the embedding, then after each layer) × position, the top K tokens and their probabilities.
 * The last row is the model's own next-token distribution.
 */
import { firstSettledRow, logitLens } from '../../analysis/lens.ts';
import { forward } from '../../engine/forward.ts';
import { KVCache } from '../../engine/kv-cache.ts';
import { wholeNumberOption } from '../args.ts';
import type { InspectView } from '../inspect.ts';

export const lensView: InspectView = {
  summary: 'the logit lens: each layer boundary × position read by the final norm and the classifier',
  options: { top: { type: 'string' } },
  usage: ['  --top K             tokens per cell (default 5)'],
  run({ model, tokenizer, tokens, kernels, options }) {
    const k = wholeNumberOption(options.top as string | undefined, 'top', 5, 1, model.config.vocabSize);
    const { trace } = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
    const lens = logitLens(model, trace, kernels, k);
    const T = tokens.length;
    const cell = (r: number, t: number) => {
      const at = (r * T + t) * lens.k;
      const ids = Array.from(lens.ids.subarray(at, at + lens.k));
      return {
        ids,
        pieces: ids.map((id) => tokenizer.pieceLabel(id)),
        probabilities: Array.from(lens.probabilities.subarray(at, at + lens.k)),
      };
    };
    return {
      top: lens.k,
      rows: lens.names.map((name, r) => ({
        boundary: r,
        name,
        label: r === 0 ? 'embedding' : `after layer ${r - 1}`,
        cells: Array.from({ length: T }, (_, t) => cell(r, t)),
      })),
      settledRow: Array.from({ length: T }, (_, t) => firstSettledRow(lens, t)),
    };
  },
};
