/**
 * The llama2.c tokenizer: how stories260K (and every model exported with Karpathy's llama2.c) turns text
 * into token ids and back.
 *
 * It is SentencePiece's BPE as llama2.c's run.c re-implements it, and this file follows run.c step by step
 * so that it produces exactly the ids run.c feeds the model:
 *
 *   encode  [BOS] + " " (the "dummy prefix") + one token per UTF-8 character, or one per byte when the
 *           character is not in the vocabulary ("byte fallback"); then, again and again, merge the adjacent
 *           pair whose joined piece is in the vocabulary with the best score, until no pair can merge
 *   decode  each token's piece; a "<0xNN>" piece is the raw byte NN; a space right after BOS is dropped
 *
 * The file (tokenizer.bin, tok512.bin) is little-endian:
 *
 *   int32 max_token_length
 *   vocab_size × { float32 score, int32 len, len bytes: the piece }
 *
 * vocab_size is not in the file: it belongs to the model (its config.vocabSize).
 *
 * Pieces are bytes, not text: "<0xE4>" stands for a third of a Chinese character. So every lookup keys a
 * piece by its raw bytes, written as a "binary string" (one char per byte, U+0000–U+00FF), never by
 * decoded text.
 *
 * Runs in the browser and in Node: bytes in, no file system.
 */
import { FormatError } from '../formats/errors.ts';
import type { Tokenizer } from './tokenizer.ts';

/** SentencePiece's fixed ids, which run.c hard-codes. */
export const UNK_ID = 0;
const BOS_ID = 1;
const EOS_ID = 2;
/** Byte b is token b + 3: the 256 byte tokens come right after the three special tokens. */
const FIRST_BYTE_ID = 3;
const BYTE_TOKEN_COUNT = 256;
const MIN_VOCAB_SIZE = FIRST_BYTE_ID + BYTE_TOKEN_COUNT;

/** Longer pieces than this are not a tokenizer we know (Llama 2's longest is 27 bytes); refuse the file. */
const MAX_TOKEN_LENGTH_LIMIT = 1024;
/** Every entry is at least a float32 score, an int32 length and one byte of piece. */
const MIN_ENTRY_BYTES = 9;

/**
 * run.c starts its search for the best merge at best_score = -1e10 and only accepts a strictly greater
 * score, so a piece scored -1e10 or lower can never be made by merging.
 */
const NO_MERGE_SCORE = -1e10;

const SPACE = 0x20;

const utf8Encoder = new TextEncoder();
/** TextDecoder drops a leading U+FEFF (byte-order mark) unless told not to; a text may start with one. */
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });
/** For labels: throws on bytes that are not whole UTF-8 characters, instead of writing U+FFFD. */
const strictUtf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface Llama2cTokenizer {
  /** The number of pieces; token ids are 0 … vocabSize − 1. */
  readonly vocabSize: number;
  /** The header's promise: no piece is longer than this many bytes. */
  readonly maxTokenLength: number;
  /** pieces[id]: the raw bytes of token id, e.g. " the", "<0xE4>" or "\n<s>\n". Do not modify. */
  readonly pieces: readonly Uint8Array[];
  /** scores[id]: the merge priority of piece id (higher merges first; SentencePiece uses −(merge rank)). */
  readonly scores: Float32Array;
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  /** The id of the piece " ", which encode puts in front of every non-empty text. */
  readonly dummyPrefixId: number;
  /** pieceKeys[id]: pieces[id] as a binary string, the key of idByPiece. */
  readonly pieceKeys: readonly string[];
  /** A piece's binary string → its id (the lowest id, should a piece appear twice). */
  readonly idByPiece: ReadonlyMap<string, number>;
}

export interface EncodeOptions {
  /** Put BOS (id 1) first, as run.c does for every prompt. */
  bos: boolean;
  /** Put EOS (id 2) last. */
  eos: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Reading the file

/**
 * Reads and checks a llama2.c tokenizer file. `vocabSize` is the model's vocab_size: when given, the file
 * must hold exactly that many entries; when not, entries are read until the file ends.
 *
 * Every problem throws a FormatError naming the entry and byte offset; nothing is allocated in proportion to
 * a header value before the file is known to be that large.
 */
export function parseLlama2cTokenizer(bytes: Uint8Array, file: string, vocabSize?: number): Llama2cTokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const maxTokenLength = readMaxTokenLength(view, file);
  if (vocabSize !== undefined) checkVocabSizeFits(vocabSize, bytes.length, file);

  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let offset = 4;
  while (vocabSize === undefined ? offset < bytes.length : pieces.length < vocabSize) {
    const entry = readEntry(bytes, view, offset, pieces.length, maxTokenLength, file);
    pieces.push(entry.piece);
    scores.push(entry.score);
    offset = entry.end;
  }
  if (offset < bytes.length) {
    throw new FormatError(
      file,
      `${bytes.length - offset} bytes left over at byte ${offset}, after the ${vocabSize} entries of the model's ` +
        `vocab_size; is this the tokenizer of this model?`,
    );
  }

  return llama2cTokenizerFromPieces(pieces, Float32Array.from(scores), maxTokenLength, file);
}

/**
 * A tokenizer from its pieces and scores, however they were stored (a tokenizer.bin, or a GGUF file's
 * metadata): checks the ids run.c hard-codes and builds the lookup tables.
 */
export function llama2cTokenizerFromPieces(
  pieces: Uint8Array[],
  scores: Float32Array,
  maxTokenLength: number,
  file: string,
): Llama2cTokenizer {
  const pieceKeys = pieces.map(binaryString);
  const idByPiece = new Map<string, number>();
  pieceKeys.forEach((key, id) => {
    if (!idByPiece.has(key)) idByPiece.set(key, id);
  });
  checkSpecialPieces(pieces, pieceKeys, file);
  const dummyPrefixId = idByPiece.get(' ');
  if (dummyPrefixId === undefined) {
    throw new FormatError(file, `no piece is a single space " ", which encode puts in front of every text`);
  }

  return {
    vocabSize: pieces.length,
    maxTokenLength,
    pieces,
    scores,
    unkId: UNK_ID,
    bosId: BOS_ID,
    eosId: EOS_ID,
    dummyPrefixId,
    pieceKeys,
    idByPiece,
  };
}

function readMaxTokenLength(view: DataView, file: string): number {
  if (view.byteLength < 4) {
    throw new FormatError(
      file,
      `the file is ${view.byteLength} bytes; it must start with an int32 max_token_length`,
    );
  }
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength < 1 || maxTokenLength > MAX_TOKEN_LENGTH_LIMIT) {
    throw new FormatError(
      file,
      `header says max_token_length = ${maxTokenLength} (byte 0); it must be 1..${MAX_TOKEN_LENGTH_LIMIT}`,
    );
  }
  return maxTokenLength;
}

/** The model's vocab_size must be plausible, and the file large enough for that many entries. */
function checkVocabSizeFits(vocabSize: number, fileBytes: number, file: string): void {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE) {
    throw new FormatError(
      file,
      `the model's vocab_size is ${vocabSize}; a llama2.c vocabulary has at least ${MIN_VOCAB_SIZE} pieces ` +
        `(<unk>, <s>, </s> and the 256 byte tokens)`,
    );
  }
  const leastBytes = 4 + vocabSize * MIN_ENTRY_BYTES;
  if (fileBytes < leastBytes) {
    throw new FormatError(
      file,
      `the model's vocab_size is ${vocabSize}, which needs at least ${leastBytes} bytes; the file has ${fileBytes}`,
    );
  }
}

interface Entry {
  score: number;
  piece: Uint8Array;
  /** The byte offset just past this entry. */
  end: number;
}

function readEntry(
  bytes: Uint8Array,
  view: DataView,
  offset: number,
  index: number,
  maxTokenLength: number,
  file: string,
): Entry {
  const where = `entry ${index} (byte ${offset})`;
  if (offset + 8 > bytes.length) {
    throw new FormatError(
      file,
      `${where}: the file ends ${bytes.length - offset} bytes into it; an entry starts with a float32 score ` +
        `and an int32 length`,
    );
  }
  const score = view.getFloat32(offset, true);
  if (!Number.isFinite(score)) {
    throw new FormatError(file, `${where}: score is ${score}; scores must be finite`);
  }
  const length = view.getInt32(offset + 4, true);
  if (length < 1 || length > maxTokenLength) {
    throw new FormatError(
      file,
      `${where}: piece length is ${length}; it must be 1..${maxTokenLength} (the header's max_token_length)`,
    );
  }
  const start = offset + 8;
  const end = start + length;
  if (end > bytes.length) {
    throw new FormatError(
      file,
      `${where}: its ${length}-byte piece runs past the end of the file (${bytes.length} bytes)`,
    );
  }
  const piece = new Uint8Array(bytes.subarray(start, end)); // a copy (Buffer's slice would be a view)
  // run.c keeps pieces as C strings, which end at the first NUL: such a piece would not be what it says.
  const nul = piece.indexOf(0);
  if (nul !== -1) {
    throw new FormatError(
      file,
      `${where}: piece has a NUL byte at byte ${start + nul}; pieces are C strings`,
    );
  }
  return { score, piece, end };
}

/**
 * run.c relies on ids 0–2 being <unk>, <s>, </s> and on byte b being token b + 3; a file laid out otherwise
 * would encode to the wrong ids without any error, so it is refused here.
 */
function checkSpecialPieces(pieces: readonly Uint8Array[], pieceKeys: readonly string[], file: string): void {
  if (pieceKeys.length < MIN_VOCAB_SIZE) {
    throw new FormatError(
      file,
      `the vocabulary has ${pieceKeys.length} pieces; a llama2.c vocabulary has at least ${MIN_VOCAB_SIZE} ` +
        `(<unk>, <s>, </s> and the 256 byte tokens)`,
    );
  }
  // llama2.c's tokenizer.py writes BOS and EOS as "\n<s>\n" and "\n</s>\n"; accept them with or without newlines.
  const expectPiece = (id: number, expected: string, actual: string) => {
    if (actual !== expected) {
      const found = JSON.stringify(utf8Decoder.decode(pieces[id]));
      throw new FormatError(file, `entry ${id} is ${found}; llama2.c expects ${expected} there`);
    }
  };
  expectPiece(UNK_ID, '<unk>', pieceKeys[UNK_ID]);
  expectPiece(BOS_ID, '<s>', pieceKeys[BOS_ID].trim());
  expectPiece(EOS_ID, '</s>', pieceKeys[EOS_ID].trim());
  for (let byte = 0; byte < BYTE_TOKEN_COUNT; byte++) {
    expectPiece(FIRST_BYTE_ID + byte, byteTokenPiece(byte), pieceKeys[FIRST_BYTE_ID + byte]);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Text to ids (run.c `encode`)

/**
 * Text to token ids, exactly as run.c's `encode`. A string is encoded as UTF-8 first (a lone surrogate
 * becomes U+FFFD); bytes are taken as they are, valid UTF-8 or not.
 *
 * One difference that run.c cannot have: its text is a C string, which ends at the first NUL, while here a
 * NUL is a byte like any other (it becomes the byte token <0x00>).
 */
export function encode(tok: Llama2cTokenizer, text: string | Uint8Array, options: EncodeOptions): number[] {
  const bytes = typeof text === 'string' ? utf8Encoder.encode(text) : text;
  const tokens: number[] = [];
  if (options.bos) tokens.push(tok.bosId);
  // SentencePiece's add_dummy_prefix: " " in front, so a text's first word is tokenized like every other
  // word (" Once", not "Once"). Empty text gets nothing.
  if (bytes.length > 0) tokens.push(tok.dummyPrefixId);
  for (let start = 0; start < bytes.length;) {
    const end = characterEnd(bytes, start);
    tokens.push(...characterTokens(tok, bytes.subarray(start, end)));
    start = end;
  }
  const merged = mergeBestPairs(tok, tokens);
  if (options.eos) merged.push(tok.eosId);
  return merged;
}

/** UTF-8 continuation bytes look like 10xxxxxx; every other byte starts a character. */
const isContinuationByte = (byte: number) => (byte & 0xc0) === 0x80;

/**
 * Where the character starting at `start` ends, by run.c's rule: one byte, then the continuation bytes that
 * follow it, 4 bytes at most. The rule does not check that the bytes are valid UTF-8: a stray continuation
 * byte starts a "character" of its own, and an "a" followed by one is a 2-byte "character" (which no piece
 * matches, so both bytes fall back to byte tokens).
 */
function characterEnd(bytes: Uint8Array, start: number): number {
  let end = start + 1;
  while (end < bytes.length && isContinuationByte(bytes[end]) && end - start < 4) end++;
  return end;
}

/** The character's own piece if the vocabulary has it; otherwise one byte token per byte. */
function characterTokens(tok: Llama2cTokenizer, character: Uint8Array): number[] {
  const id = tok.idByPiece.get(binaryString(character));
  return id !== undefined ? [id] : Array.from(character, (byte) => FIRST_BYTE_ID + byte);
}

/** A merge that is possible now: the adjacent tokens at list nodes `left` and `right` can become `mergedId`. */
interface MergeCandidate {
  score: number;
  left: number;
  right: number;
  /** The ids at the two nodes when the candidate was found; if either changed since, it is out of date. */
  leftId: number;
  rightId: number;
  mergedId: number;
}

/**
 * BPE merging, with run.c's result: repeatedly join the adjacent pair whose joined piece (the two pieces'
 * bytes, one after the other) is in the vocabulary with the highest score; on a tie, the leftmost pair (run.c
 * keeps the first best it meets, its comparison being a strict `>`). Every token takes part, BOS included.
 *
 * run.c finds each merge by rescanning the whole sequence: O(n²), minutes for a 100 kB text. Here the
 * possible merges wait in a priority queue ordered exactly as run.c would choose them, and the tokens form a
 * linked list (node i starts as tokens[i]; a merge keeps the left node and unlinks the right one), so each
 * merge costs O(log n). A merge changes two neighbouring pairs; the queue's entries for the old pairs stay
 * behind and are skipped when they come up.
 */
function mergeBestPairs(tok: Llama2cTokenizer, tokens: readonly number[]): number[] {
  const count = tokens.length;
  const ids = Int32Array.from(tokens); // ids[node]: its token now; −1 once merged into its left neighbour
  const next = Int32Array.from(tokens, (_, node) => node + 1); // `count` means "no next node"
  const previous = Int32Array.from(tokens, (_, node) => node - 1); // −1 means "no previous node"
  const queue = new MergeQueue();

  const considerPairAt = (left: number) => {
    if (left < 0 || next[left] >= count) return;
    const right = next[left];
    const mergedId = tok.idByPiece.get(tok.pieceKeys[ids[left]] + tok.pieceKeys[ids[right]]);
    if (mergedId === undefined || !(tok.scores[mergedId] > NO_MERGE_SCORE)) return;
    queue.push({
      score: tok.scores[mergedId],
      left,
      right,
      leftId: ids[left],
      rightId: ids[right],
      mergedId,
    });
  };

  for (let node = 0; node + 1 < count; node++) considerPairAt(node);
  while (queue.size > 0) {
    const merge = queue.pop();
    const stillAdjacent = next[merge.left] === merge.right;
    if (!stillAdjacent || ids[merge.left] !== merge.leftId || ids[merge.right] !== merge.rightId) continue;

    ids[merge.left] = merge.mergedId;
    ids[merge.right] = -1;
    next[merge.left] = next[merge.right];
    if (next[merge.right] < count) previous[next[merge.right]] = merge.left;
    considerPairAt(previous[merge.left]);
    considerPairAt(merge.left);
  }

  const merged: number[] = [];
  for (let node = 0; node < count; node = next[node]) merged.push(ids[node]);
  return merged;
}

/** run.c's choice: the higher score; on a tie, the pair further left. */
const mergesBefore = (a: MergeCandidate, b: MergeCandidate) =>
  a.score > b.score || (a.score === b.score && a.left < b.left);

/** A binary heap of merge candidates whose top is the merge run.c would make next. */
class MergeQueue {
  private readonly heap: MergeCandidate[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(candidate: MergeCandidate): void {
    const heap = this.heap;
    // Move parents down until the candidate's place is found, then put it there.
    let child = heap.length;
    heap.push(candidate);
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!mergesBefore(candidate, heap[parent])) break;
      heap[child] = heap[parent];
      child = parent;
    }
    heap[child] = candidate;
  }

  pop(): MergeCandidate {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length === 0) return top;
    // Move the better child up into the hole at the root until `last` fits there.
    let hole = 0;
    while (true) {
      let child = 2 * hole + 1;
      if (child >= heap.length) break;
      if (child + 1 < heap.length && mergesBefore(heap[child + 1], heap[child])) child++;
      if (!mergesBefore(heap[child], last)) break;
      heap[hole] = heap[child];
      hole = child;
    }
    heap[hole] = last;
    return top;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Ids to text (run.c `decode`)

/**
 * The bytes of `token` when it follows `previousToken`, as run.c's `decode`: the piece, without its leading
 * space right after BOS (SentencePiece removes the dummy prefix again), and a byte token "<0xNN>" as the
 * single byte NN. Special tokens are returned as their pieces ("\n<s>\n"). Returns a fresh array.
 *
 * run.c recognises byte tokens with sscanf("<0x%02hhX>"), which would also accept e.g. "<0x4" or "<0x4f";
 * here only the exact form "<0xNN>" (upper- or lower-case hex) counts. Real vocabularies have no other
 * piece starting with "<0x".
 */
export function decodePiece(tok: Llama2cTokenizer, previousToken: number, token: number): Uint8Array {
  let piece = pieceOf(tok, token);
  if (previousToken === tok.bosId && piece[0] === SPACE) piece = piece.subarray(1);
  const byte = byteTokenValue(piece);
  return byte === undefined ? new Uint8Array(piece) : Uint8Array.of(byte);
}

/**
 * Token ids to text: the decodePiece bytes of every id, joined, then read as UTF-8 once, so byte tokens
 * that only together make a character decode to it. BOS and EOS add nothing; invalid UTF-8 becomes U+FFFD.
 *
 * `previousToken` is the token before ids[0]. It defaults to BOS, i.e. `ids` are the start of a text, with or
 * without their BOS: the first piece loses its leading space, which is the dummy prefix encode added. So
 * decode(tok, encode(tok, text, { bos, eos })) === text for every string without lone surrogates, whether
 * bos is true or false. To decode a continuation, pass the token that came before it.
 */
export function decode(
  tok: Llama2cTokenizer,
  ids: readonly number[],
  previousToken: number = tok.bosId,
): string {
  const parts: Uint8Array[] = [];
  let previous = previousToken;
  for (const id of ids) {
    if (id !== tok.bosId && id !== tok.eosId) parts.push(decodePiece(tok, previous, id));
    previous = id;
  }
  return utf8Decoder.decode(concatBytes(parts));
}

/**
 * Text as generation goes: push each new token, get back the text it completes. A character split across
 * byte tokens (an emoji is four) appears once its last byte arrives, never as U+FFFD halves.
 *
 * (run.c prints each piece through safe_printf, which skips a one-byte piece unless it is printable ASCII or
 * whitespace: every byte token from 0x80 up, so every character the vocabulary spells in bytes, never
 * reaches its output. Here they do.)
 */
export class StreamingDecoder {
  private readonly tok: Llama2cTokenizer;
  private previousToken: number;
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

  /** `previousToken`: the token before the first one pushed; BOS (the default) when starting a text. */
  constructor(tok: Llama2cTokenizer, previousToken: number = tok.bosId) {
    this.tok = tok;
    this.previousToken = previousToken;
  }

  /** The text that `token` completes ("" while a character is still missing bytes, or for BOS and EOS). */
  push(token: number): string {
    const previous = this.previousToken;
    this.previousToken = token;
    if (token === this.tok.bosId || token === this.tok.eosId) return '';
    return this.utf8.decode(decodePiece(this.tok, previous, token), { stream: true });
  }

  /** Call when generation ends: the bytes of an unfinished character come out as U+FFFD. */
  finish(): string {
    return this.utf8.decode();
  }
}

/**
 * A label for token `id` in figures: the piece as text, spaces kept as they are; "<s>" and "</s>" for BOS and
 * EOS; byte tokens as their piece ("<0xE4>"); and, so nothing is invisible, control characters and pieces
 * that are not whole UTF-8 characters as <0xNN> per byte.
 */
export function pieceLabel(tok: Llama2cTokenizer, id: number): string {
  if (id === tok.bosId) return '<s>';
  if (id === tok.eosId) return '</s>';
  const piece = pieceOf(tok, id);
  let text: string;
  try {
    text = strictUtf8Decoder.decode(piece);
  } catch {
    return byteLabels(piece);
  }
  return text.replace(/\p{Cc}/gu, (control) => byteLabels(utf8Encoder.encode(control)));
}

/** The llama2.c tokenizer behind the engine's Tokenizer interface. */
export function llama2cTokenizer(tok: Llama2cTokenizer): Tokenizer {
  return {
    kind: `llama2.c tokenizer (${tok.vocabSize} pieces)`,
    family: 'llama2c',
    vocabSize: tok.vocabSize,
    bosId: tok.bosId,
    eosId: tok.eosId,
    encode: (text, options) => encode(tok, text, options),
    decodePiece: (previous, token) => decodePiece(tok, previous, token),
    decode: (ids) => decode(tok, ids),
    pieceLabel: (token) => pieceLabel(tok, token),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

function pieceOf(tok: Llama2cTokenizer, id: number): Uint8Array {
  if (!Number.isInteger(id) || id < 0 || id >= tok.vocabSize) {
    throw new RangeError(`token id ${id} is not in the vocabulary (0..${tok.vocabSize - 1})`);
  }
  return tok.pieces[id];
}

/** Bytes as a string of the same length with one char per byte (0–255): a Map key that is exact. */
function binaryString(bytes: Uint8Array): string {
  let key = '';
  for (const byte of bytes) key += String.fromCharCode(byte);
  return key;
}

const hex2 = (byte: number) => byte.toString(16).toUpperCase().padStart(2, '0');

/** SentencePiece's name for byte token `byte`, e.g. "<0x0A>". */
const byteTokenPiece = (byte: number) => `<0x${hex2(byte)}>`;

const byteLabels = (bytes: Uint8Array) => Array.from(bytes, byteTokenPiece).join('');

/** NN if the piece is exactly "<0xNN>", else undefined. */
function byteTokenValue(piece: Uint8Array): number | undefined {
  if (piece.length !== 6) return undefined;
  const match = /^<0x([0-9A-Fa-f]{2})>$/.exec(binaryString(piece));
  return match ? parseInt(match[1], 16) : undefined;
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}
