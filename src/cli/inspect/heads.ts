/**
 * `glassbox inspect heads`: what chapter 8's head figures show. Per (layer, head): the previous-token and
 * first-token scores on the prompt, and the induction score on BOS + a seeded random sequence repeated twice
 * (--seed, --induction-length); which key/value head each query head reads; and the KV-cache bytes for this
 * model and the published configurations (src/analysis/heads.ts).
 */
import {
  headPatternScores,
  inductionInput,
  inductionLengthLimit,
  inductionScores,
  INDUCTION_DEFAULTS,
  kvCacheTable,
  kvGroups,
  specialTokenIds,
  uniformBaseline,
} from '../../analysis/heads.ts';
import { forward } from '../../engine/forward.ts';
import { KVCache } from '../../engine/kv-cache.ts';
import { kvHeadOf, type Model } from '../../engine/model.ts';
import type { KernelSet } from '../../kernels/select.ts';
import { UsageError, wholeNumberOption } from '../args.ts';
import type { InspectView } from '../inspect.ts';

function tracedPass(model: Model, tokens: number[], kernels: KernelSet) {
  return forward(model, tokens, new KVCache(model.config), { kernels, trace: true, logits: 'last' }).trace;
}

export const headsView: InspectView = {
  summary: 'Every head: previous-token, first-token and induction scores; GQA groups; KV-cache bytes',
  options: {
    seed: { type: 'string' },
    'induction-length': { type: 'string' },
  },
  usage: [
    `  --seed N              seed of the induction test's random tokens (default ${INDUCTION_DEFAULTS.seed})`,
    `  --induction-length N  random tokens before the repeat (default ${INDUCTION_DEFAULTS.length}; at most (context − 1) / 2)`,
  ],
  run({ model, tokenizer, tokens, kernels, options }) {
    const { config } = model;
    const seed = wholeNumberOption(options.seed as string | undefined, 'seed', INDUCTION_DEFAULTS.seed, 1);
    const special = specialTokenIds(tokenizer);
    const limit = inductionLengthLimit(config, config.vocabSize - new Set(special).size);
    const fallback = Math.min(INDUCTION_DEFAULTS.length, limit);
    if (limit < 1)
      throw new UsageError(`this model's context of ${config.seqLen} is too short for the induction test`);
    const length = wholeNumberOption(
      options['induction-length'] as string | undefined,
      'induction-length',
      fallback,
      1,
      limit,
    );

    const scores = headPatternScores(tracedPass(model, tokens, kernels));
    const input = inductionInput(config, tokenizer.bosId, special, length, seed);
    const induction = inductionScores(tracedPass(model, input.tokens, kernels), length);
    return {
      nLayers: config.nLayers,
      nHeads: config.nHeads,
      nKvHeads: config.nKvHeads,
      /** What a head spreading its weight evenly would score (previous-token and first-token), or null. */
      baseline: uniformBaseline(1, tokens.length),
      heads: scores.map((score, i) => ({
        layer: score.layer,
        head: score.head,
        kvHead: kvHeadOf(score.head, config.nHeads, config.nKvHeads),
        previousToken: score.previousToken,
        firstToken: score.firstToken,
        induction: induction[i].induction,
      })),
      induction: {
        seed,
        length,
        tokens: input.tokens,
        baseline: uniformBaseline(length + 1, 2 * length + 1),
      },
      gqa: {
        groups: kvGroups(config),
        kvCache: kvCacheTable(config, 'this model'),
      },
    };
  },
};
