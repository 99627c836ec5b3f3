/**
 * Chapter 1's numbers, read from the Trace of the reader's text: the last token's vector at each stage of
 * the residual stream, and the most likely next tokens. Plain functions of a Trace and a tokenizer.
 */
import type { Trace } from '../../../engine/trace.ts';
import type { Tokenizer } from '../../../tokenizers/tokenizer.ts';

/** How many of the most likely next tokens the bar chart shows. */
export const TOP_COUNT = 10;

export interface TopToken {
  token: number;
  /** The token as the reader should see it (pieceLabel). */
  piece: string;
  /** The text it adds when appended to the reader's text; '' when it is not whole characters (a byte of a
   * longer character) or a special token. */
  text: string;
  logit: number;
  probability: number;
}

/** One tensor of the Trace, as a figure needs it: its name and shape, and its last row (the last token). */
export interface TraceRow {
  /** The Trace's name for it, e.g. "layers[2].residualAfterFfn". */
  name: string;
  shape: number[];
  /** The row of the last position: what the model has made of the last token at this stage. */
  lastRow: Float32Array;
}

/** The last token's vector at each stage of the residual stream, with the Trace's names and shapes. */
export function residualStream(trace: Trace): TraceRow[] {
  const lastRow = (name: string, tensor: { data: Float32Array; shape: readonly number[] }): TraceRow => {
    const width = tensor.shape[tensor.shape.length - 1];
    return { name, shape: [...tensor.shape], lastRow: tensor.data.slice(tensor.data.length - width) };
  };
  return [
    lastRow('embeddings', trace.embeddings),
    ...trace.layers.map((layer, l) => lastRow(`layers[${l}].residualAfterFfn`, layer.residualAfterFfn)),
    lastRow('finalNorm', trace.finalNorm),
  ];
}

/** The TOP_COUNT highest logits, most likely first (ties keep vocabulary order). */
export function topTokens(
  logits: Float32Array,
  probabilities: Float32Array,
  tokenizer: Tokenizer,
): TopToken[] {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  return order.slice(0, TOP_COUNT).map((token) => ({
    token,
    piece: tokenizer.pieceLabel(token),
    text: appendableText(tokenizer, token),
    logit: logits[token],
    probability: probabilities[token],
  }));
}

function appendableText(tokenizer: Tokenizer, token: number): string {
  const text = tokenizer.decode([token]);
  return text.includes('\uFFFD') ? '' : text;
}
