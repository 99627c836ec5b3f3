/**
 * Chapter 12 (generation): what its figures ask the engine worker. The loop is the engine's own
 * (GenerationLoop, which `glassbox generate` runs to its end), held here between the reader's Step presses;
 * the surprise of the reader's text is read from the logits of the Trace of their pass, and that of the
 * shuffled copy from one untraced pass (not a second traced one).
 */
import { sortedDistribution } from '../../../analysis/sampling.ts';
import { shuffledTokens, textSurprise } from '../../../analysis/surprise.ts';
import { forward } from '../../../engine/forward.ts';
import { GenerationLoop, stopTokensFor } from '../../../engine/generate.ts';
import { KVCache } from '../../../engine/kv-cache.ts';
import { headDim } from '../../../engine/model.ts';
import { XorShiftRng } from '../../../engine/rng.ts';
import type { SamplingSettings } from '../../../engine/sampling.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel, traceFor } from '../../lib/worker/state.ts';

/** How many of the most likely tokens each step shows. */
const TOP_SHOWN = 8;

export interface SurpriseRow {
  tokens: number[];
  pieces: string[];
  /** −ln p of tokens[t] for t ≥ 1, in nats (index t − 1). */
  surprise: number[];
  meanNll: number;
  perplexity: number;
}

export interface SurpriseAnswer {
  /** The reader's tokens: the answer belongs to this text. */
  tokens: number[];
  seed: number;
  real: SurpriseRow;
  shuffled: SurpriseRow;
}

export interface LoopStart {
  /** Which loop the steps belong to (a newer start replaces an older loop). */
  id: number;
  tokens: number[];
  /** The prompt's tokens decoded: the text the loop's texts start with. */
  promptText: string;
  settings: SamplingSettings;
  seed: number;
  nLayers: number;
  capacity: number;
  /** Bytes one position takes in the cache: K and V, every layer, nKvHeads × headDim float32 each. */
  bytesPerPosition: number;
  /** Bytes per position per layer. */
  bytesPerRow: number;
  stopTokens: { token: number; piece: string }[];
}

export interface LoopStepAnswer {
  id: number;
  /** 1 for the first step. */
  step: number;
  kind: 'prefill' | 'decode';
  /** How many tokens this step's pass read. */
  read: number;
  /** Rows in each layer's cache after the step (every layer holds the same number). */
  cacheRows: number;
  token: number;
  piece: string;
  position: number;
  /** The chance the sampler gave the sampled token (its renormalised probability). */
  probability: number;
  /** The most likely tokens of this step, after the sampler's filters; `kept` of V survived. */
  top: { token: number; piece: string; probability: number }[];
  kept: number;
  /** Chance of drawing a stop token at this step (the sampler's renormalised probability; 0 if filtered out). */
  stopChance: number;
  /** Why the loop ends here, if it does. */
  stopped: 'stop token' | 'context full' | undefined;
  /** The whole text so far (prompt and sampled tokens, a stop token left out). */
  text: string;
  elapsedMs: number;
}

function surpriseRow(tokens: number[], logits: Float32Array): SurpriseRow {
  const { model, tokenizer } = requireModel();
  const result = textSurprise(tokens, logits, model.config.vocabSize);
  return {
    tokens,
    pieces: tokens.map((token) => tokenizer.pieceLabel(token)),
    surprise: Array.from(result.surprise),
    meanNll: result.meanNll,
    perplexity: result.perplexity,
  };
}

let loop:
  | {
      id: number;
      engine: GenerationLoop;
      settings: SamplingSettings;
      tokens: number[];
      steps: number;
      done: boolean;
    }
  | undefined;
let loops = 0;

export const handlers = {
  /**
   * The surprise of every token of the reader's text (from its Trace's logits) and of a shuffled copy (BOS
   * first, shuffled with `seed`; one untraced pass).
   */
  surprise(tokens: number[], seed: number): SurpriseAnswer {
    const { model } = requireModel();
    const real = surpriseRow([...tokens], traceFor(tokens).logits.data);
    const shuffled = shuffledTokens(tokens, seed);
    const { logits } = forward(model, shuffled, new KVCache(model.config), {
      logits: 'all',
      kernels: selectKernels(current.choice),
    });
    return { tokens: [...tokens], seed, real, shuffled: surpriseRow(shuffled, logits) };
  },

  /** A new loop over `tokens` with these settings and seed; it runs nothing until the first step. */
  loopStart(tokens: number[], settings: SamplingSettings, seed: number): LoopStart {
    const { model, tokenizer } = requireModel();
    const { config } = model;
    const engine = new GenerationLoop(model, tokens, {
      sampling: settings,
      rng: new XorShiftRng(seed),
      kernels: selectKernels(current.choice),
    });
    loop = { id: ++loops, engine, settings, tokens: [...tokens], steps: 0, done: false };
    const bytesPerRow = 2 * config.nKvHeads * headDim(config) * 4;
    return {
      id: loop.id,
      tokens: [...tokens],
      promptText: tokenizer.decode(tokens),
      settings,
      seed,
      nLayers: config.nLayers,
      capacity: config.seqLen,
      bytesPerRow,
      bytesPerPosition: bytesPerRow * config.nLayers,
      stopTokens: stopTokensFor(tokenizer).map((token) => ({
        token,
        piece: tokenizer.pieceLabel(token),
      })),
    };
  },

  /** One turn of loop `id`: a pass over what is unread, and one sampled token. */
  loopStep(id: number): LoopStepAnswer {
    const { tokenizer } = requireModel();
    if (!loop || loop.id !== id) throw new Error('this loop was replaced by a newer one: start again');
    if (loop.done) throw new Error('this loop has ended: start again');
    const started = performance.now();
    const step = loop.engine.step();
    const elapsedMs = performance.now() - started;
    loop.steps++;
    const distribution = sortedDistribution(step.logits, loop.settings);
    const rankOf = (token: number) => distribution.order.indexOf(token);
    const chance = (token: number) => {
      const rank = rankOf(token);
      return rank < distribution.kept ? distribution.renormalised[rank] : 0;
    };
    const stopTokens = stopTokensFor(tokenizer);
    const stopped = stopTokens.includes(step.token)
      ? 'stop token'
      : loop.engine.canStep
        ? undefined
        : 'context full';
    if (stopped === undefined || stopped === 'context full') loop.tokens.push(step.token);
    loop.done = stopped !== undefined;
    const top = Array.from(
      distribution.order.subarray(0, Math.min(TOP_SHOWN, distribution.kept)),
      (token) => ({
        token,
        piece: tokenizer.pieceLabel(token),
        probability: chance(token),
      }),
    );
    return {
      id,
      step: loop.steps,
      kind: step.kind,
      read: step.read.length,
      cacheRows: loop.engine.cache.length,
      token: step.token,
      piece: tokenizer.pieceLabel(step.token),
      position: step.position,
      probability: chance(step.token),
      top,
      kept: distribution.kept,
      stopChance: stopTokens.reduce((sum, token) => sum + chance(token), 0),
      stopped,
      text: tokenizer.decode(loop.tokens),
      elapsedMs,
    };
  },
};
