/** Chapter 3 (tokenization): what its figures ask the engine worker. */
import * as Comlink from 'comlink';
import { requireModel } from '../../lib/worker/state.ts';

/** A text as the loaded model's own tokenizer reads it (without the BOS token the model puts first). */
export interface ModelTokens {
  /** The text that was encoded, so the page can tell an answer for an older text. */
  text: string;
  ids: number[];
  /** The bytes of every token, one after another; token i is bytes[offsets[i]..offsets[i + 1]). */
  bytes: Uint8Array;
  offsets: Int32Array;
  /** e.g. "byte-level BPE tokenizer (4096 tokens)". */
  kind: string;
  family: 'llama2c' | 'bpe';
  vocabSize: number;
  /** The id of the BOS token the model reads before the text. */
  bosId: number;
}

export const handlers = {
  /**
   * `text` through the loaded model's tokenizer, with each token's bytes. A llama2.c tokenizer adds a
   * space before the text (its "dummy prefix"); decoding each piece after BOS drops it again, as llama2.c
   * does, so the bytes of the tokens are the bytes of the text for both kinds of tokenizer. The figures
   * send texts already cut to MAX_TEXT_CHARS (figures/tokenization.ts), so this stays quick.
   */
  modelTokens(text: string): ModelTokens {
    const { tokenizer } = requireModel();
    const withBos = tokenizer.encode(text, { bos: true, eos: false });
    const ids = withBos.slice(1);
    const pieces = ids.map((id, i) => tokenizer.decodePiece(withBos[i], id));
    const offsets = new Int32Array(ids.length + 1);
    pieces.forEach((piece, i) => (offsets[i + 1] = offsets[i] + piece.length));
    const bytes = new Uint8Array(offsets[ids.length]);
    pieces.forEach((piece, i) => bytes.set(piece, offsets[i]));
    const answer: ModelTokens = {
      text,
      ids,
      bytes,
      offsets,
      kind: tokenizer.kind,
      family: tokenizer.family,
      vocabSize: tokenizer.vocabSize,
      bosId: tokenizer.bosId,
    };
    return Comlink.transfer(answer, [bytes.buffer, offsets.buffer]);
  },
};
