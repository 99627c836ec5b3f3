/**
 * `glassbox inspect neurons`: chapter 9's most active feed-forward neurons (src/analysis/neurons.ts) at one
 * position, in one layer or in every layer, each with the tokens its down-projection column promotes and
 * suppresses through the final norm's gain and the classifier (neuronValue says why the gain is included).
 */
import { neuronValue, topNeurons } from '../../analysis/neurons.ts';
import { forward } from '../../engine/forward.ts';
import { KVCache } from '../../engine/kv-cache.ts';
import { indexOption, numberOption, UsageError, wholeNumberOption } from '../args.ts';
import type { InspectView } from '../inspect.ts';

/** How many promoted and suppressed tokens each neuron lists. */
export const VALUE_TOKENS = 5;

/** --position: a position of the prompt (0 = the start token), the last by default. */
function positionOption(value: string | undefined, count: number): number {
  const position = numberOption(value, 'position', count - 1);
  if (!Number.isInteger(position) || position < 0 || position >= count)
    throw new UsageError(
      `--position ${value} does not exist: the prompt has positions 0…${count - 1} (0 is the start token)`,
    );
  return position;
}

export const neuronsView: InspectView = {
  summary: "the most active feed-forward neurons at a position, with the tokens each one's value promotes",
  options: { layer: { type: 'string' }, position: { type: 'string' }, top: { type: 'string' } },
  usage: [
    '  --layer L           one layer (default: every layer)',
    '  --position P        the position to read, 0 = the start token (default: the last)',
    '  --top K             neurons per layer, by |activation| (default 10)',
  ],
  run({ model, tokenizer, tokens, kernels, options }) {
    const { nLayers, hiddenDim } = model.config;
    const layers =
      options.layer === undefined
        ? Array.from({ length: nLayers }, (_, l) => l)
        : [indexOption(options.layer as string, 'layer', nLayers, 0)];
    const position = positionOption(options.position as string | undefined, tokens.length);
    const k = wholeNumberOption(options.top as string | undefined, 'top', 10, 1, hiddenDim);
    const { trace } = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
    const named = (list: { token: number; score: number }[]) =>
      list.map(({ token, score }) => ({ id: token, piece: tokenizer.pieceLabel(token), score }));
    return {
      position,
      top: k,
      layers: layers.map((layer) => ({
        layer,
        neurons: topNeurons(trace, layer, position, k).map(({ neuron, activation }) => {
          const value = neuronValue(model, layer, neuron, VALUE_TOKENS);
          return {
            neuron,
            activation,
            promoted: named(value.promoted),
            suppressed: named(value.suppressed),
          };
        }),
      })),
    };
  },
};
