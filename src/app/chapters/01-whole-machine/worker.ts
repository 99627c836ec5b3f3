/** Chapter 1 (the whole machine): what its figures ask the engine worker. */
import * as Comlink from 'comlink';
import { temperatureSoftmax } from '../../../engine/sampling.ts';
import { requireModel, traceFor } from '../../lib/worker/state.ts';
import { residualStream, topTokens, type TopToken, type TraceRow } from './summary.ts';

/** The reader's text through the whole machine: what chapter 1's figures show. */
export interface MachineSummary {
  /** The ids the model read, BOS first: the answer belongs to this text. */
  tokens: number[];
  /** The residual stream at each stage, from the Trace: embeddings, each layer's output, the final norm. */
  stream: TraceRow[];
  /** The shape of the Trace's logits, [T, vocabSize]. */
  logitsShape: number[];
  /** logits[-1]: one score per vocabulary entry for the position after the last token. */
  lastLogits: Float32Array;
  /** softmax(logits[-1]) at temperature 1. */
  probabilities: Float32Array;
  /** The most likely next tokens, most likely first. */
  top: TopToken[];
}

export const handlers = {
  /** Chapter 1's numbers for a pass over `tokens` (BOS first), from the Trace the reading already ran. */
  summary(tokens: number[]): MachineSummary {
    const { model, tokenizer } = requireModel();
    const trace = traceFor(tokens);
    const { vocabSize } = model.config;
    const lastLogits = trace.logits.data.slice(trace.logits.data.length - vocabSize);
    const probabilities = temperatureSoftmax(lastLogits, 1);
    const stream = residualStream(trace);
    const answer: MachineSummary = {
      tokens: [...tokens],
      stream,
      logitsShape: [...trace.logits.shape],
      lastLogits,
      probabilities,
      top: topTokens(lastLogits, probabilities, tokenizer),
    };
    return Comlink.transfer(answer, [
      lastLogits.buffer,
      probabilities.buffer,
      ...stream.map((row) => row.lastRow.buffer as ArrayBuffer),
    ]);
  },
};
