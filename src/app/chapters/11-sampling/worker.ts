/**
 * Chapter 11 (logits, softmax, sampling): what its figures ask the engine worker. The last row of logits comes
 * from the Trace of the reader's pass (no extra pass); the sorting and filtering happen on the page, with the
 * engine's sampler, so a slider redraws without a round trip. The twenty continuations run the engine's own
 * loop (GenerationLoop, as `glassbox generate` does) in the worker; a newer request cancels an older one.
 */
import * as Comlink from 'comlink';
import { tokenSurpriseAt } from '../../../analysis/surprise.ts';
import { GenerationLoop, stopTokensFor } from '../../../engine/generate.ts';
import { XorShiftRng } from '../../../engine/rng.ts';
import type { SamplingSettings } from '../../../engine/sampling.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel, traceFor } from '../../lib/worker/state.ts';

export interface LastLogits {
  /** The tokens of the pass (BOS first): the answer belongs to this text. */
  tokens: number[];
  /** logits[-1]: one score per vocabulary entry for the position after the last token. */
  logits: Float32Array;
}

export interface Continuation {
  seed: number;
  /** The sampled tokens, stop token excluded. */
  tokens: number[];
  /** The text they add to the reader's. */
  text: string;
  /** The mean of −ln p (at temperature 1) of the sampled tokens: how surprised the model is by its own draw. */
  meanSurprise: number;
  /** Why it ended: a stop token was sampled, the context filled up, or it reached the length asked for. */
  ended: 'stop token' | 'context full' | 'length';
}

export interface Continuations {
  tokens: number[];
  settings: SamplingSettings;
  /** The first seed: continuation i used seed + i. */
  seed: number;
  newTokens: number;
  sampled: Continuation[];
  /** The same loop at temperature 0 (greedy): every seed gives this one. */
  greedy: Continuation;
  /** Milliseconds the worker took for all of them. */
  elapsedMs: number;
}

/** Lets messages waiting for the worker (a keystroke's pass) run before the next continuation starts. */
function yieldToMessages(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(undefined);
  });
}

/** The newest continuations request; an older one still running stops at its next continuation. */
let newestContinuations = 0;

/**
 * One continuation: the engine's loop (the same steps as generateTokens with `steps` = prompt − 1 + newTokens,
 * which `glassbox generate --steps` counts), ended by a stop token, the context's end, or the length.
 */
function continuation(
  promptTokens: number[],
  settings: SamplingSettings,
  seed: number,
  newTokens: number,
): Continuation {
  const { model, tokenizer } = requireModel();
  const stopTokens = stopTokensFor(tokenizer);
  const loop = new GenerationLoop(model, promptTokens, {
    sampling: settings,
    rng: new XorShiftRng(seed),
    kernels: selectKernels(current.choice),
  });
  const tokens: number[] = [];
  let surprise = 0;
  let ended: Continuation['ended'] = 'length';
  while (tokens.length < newTokens) {
    if (!loop.canStep) {
      ended = 'context full';
      break;
    }
    const step = loop.step();
    if (stopTokens.includes(step.token)) {
      ended = 'stop token';
      break;
    }
    tokens.push(step.token);
    surprise += tokenSurpriseAt(step.logits, step.token);
  }
  const before = tokenizer.decode(promptTokens);
  const whole = tokenizer.decode([...promptTokens, ...tokens]);
  const text = whole.startsWith(before) ? whole.slice(before.length) : tokenizer.decode(tokens);
  return { seed, tokens, text, meanSurprise: tokens.length > 0 ? surprise / tokens.length : NaN, ended };
}

export const handlers = {
  /** The last row of logits of the reader's pass over `tokens` (BOS first), from its Trace. */
  lastLogits(tokens: number[]): LastLogits {
    const { model } = requireModel();
    const { vocabSize } = model.config;
    const all = traceFor(tokens).logits.data;
    const logits = all.slice(all.length - vocabSize);
    return Comlink.transfer({ tokens: [...tokens], logits }, [logits.buffer]);
  },

  /** Every token of the vocabulary as the figures write it (pieceLabel), by id. */
  vocabulary(): string[] {
    const { model, tokenizer } = requireModel();
    return Array.from({ length: model.config.vocabSize }, (_, id) => tokenizer.pieceLabel(id));
  },

  /**
   * `count` continuations of `tokens`, seeds seed … seed + count − 1, each up to `newTokens` tokens, and the
   * greedy one. Rejects with "cancelled" when a newer request (or cancelContinuations) came in meanwhile.
   */
  async continuations(
    tokens: number[],
    settings: SamplingSettings,
    seed: number,
    count: number,
    newTokens: number,
  ): Promise<Continuations> {
    const request = ++newestContinuations;
    const started = performance.now();
    const sampled: Continuation[] = [];
    for (let i = 0; i < count; i++) {
      await yieldToMessages();
      if (request !== newestContinuations) throw new Error('cancelled');
      sampled.push(continuation(tokens, settings, seed + i, newTokens));
    }
    const greedy = continuation(tokens, { temperature: 0 }, seed, newTokens);
    return {
      tokens: [...tokens],
      settings,
      seed,
      newTokens,
      sampled,
      greedy,
      elapsedMs: performance.now() - started,
    };
  },

  /** Stops the continuations being drawn, if any. */
  cancelContinuations(): void {
    newestContinuations++;
  },
};
