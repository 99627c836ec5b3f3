/**
 * What the engine and the CLI need from any tokenizer (llama2.c's SentencePiece-style vocabulary, or the
 * byte-level BPE of our own model): text to ids, and ids back to bytes one piece at a time.
 */
export interface Tokenizer {
  /** A short description for messages, e.g. "llama2.c tokenizer (512 pieces)". */
  readonly kind: string;
  /** Which file format and conventions it follows (the CLI prints llama2.c output llama2.c's way). */
  readonly family: 'llama2c' | 'bpe';
  readonly vocabSize: number;
  /** Begin-of-sequence id; llama2.c's `run` also stops generating when it is sampled. */
  readonly bosId: number;
  readonly eosId: number;
  encode(text: string, options: { bos: boolean; eos: boolean }): number[];
  /** The bytes token `token` stands for when it follows `previous` (pieces may be partial UTF-8). */
  decodePiece(previous: number, token: number): Uint8Array;
  /** All ids back to text (special tokens dropped; invalid UTF-8 becomes U+FFFD). */
  decode(ids: readonly number[]): string;
  /** A readable label for one token, for figures and traces. */
  pieceLabel(token: number): string;
}
