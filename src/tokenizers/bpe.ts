/**
 * Byte-level byte-pair encoding (BPE), the tokenizer family of GPT-2, GPT-4 and Llama 3: training, encoding,
 * decoding, and Hugging Face tokenizer.json files.
 *
 * The idea in one paragraph: start from bytes, so that every text can be written (256 base tokens, nothing
 * is ever "unknown"). Then repeatedly find the pair of adjacent tokens that occurs most often in the training
 * text and make it a new token. Each merge shortens the text a little; after a few thousand merges common
 * words (" the", " Yahweh") are single tokens while rare ones are spelled from pieces. Encoding new text
 * replays the merges in the order they were learned.
 *
 * Token ids in a tokenizer trained here:
 *   0..255   the bytes, id = byte value (token 32 is the space byte, token 10 the newline)
 *   256      <|bos|>, beginning of sequence
 *   257      <|eos|>, end of sequence
 *   258..    merged tokens, in the order they were learned (token 258 is the first merge)
 * Special tokens sit right after the bytes, so their ids do not change with the vocabulary size.
 *
 * Runs in the browser as well as in Node: no Node imports here.
 */
import { parseBoundedJson, type JsonLimits } from '../formats/bounded-json.ts';
import { FormatError } from '../formats/errors.ts';
import { compilePattern, PRETOKENIZE_PATTERN, pretokenize, requireKnownPattern } from './pretokenize.ts';
import type { Tokenizer } from './tokenizer.ts';

export const BOS_TOKEN = '<|bos|>';
export const EOS_TOKEN = '<|eos|>';
export const BOS_ID = 256;
export const EOS_ID = 257;
/** Id of the first merged token; the merge learned n-th (from 0) gets id FIRST_MERGE_ID + n. */
export const FIRST_MERGE_ID = 258;

/** One learned rule: wherever `left` is followed by `right`, write `merged` instead. */
export interface Merge {
  left: number;
  right: number;
  merged: number;
}

/** A merge as training found it: `count` is how often the pair occurred when it was chosen. */
export interface TrainedMerge extends Merge {
  count: number;
}

export interface SpecialToken {
  id: number;
  text: string;
}

export interface BpeTokenizer {
  /** The bytes every token stands for, indexed by id (a special token: the UTF-8 of its text). */
  readonly tokenBytes: readonly Uint8Array[];
  /** Merges in the order they were learned: a lower index (rank) wins when two could apply. */
  readonly merges: readonly Merge[];
  readonly specialTokens: readonly SpecialToken[];
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  /** Pre-tokenizer regex source (see pretokenize.ts). */
  readonly pattern: string;
  /** The token id of each byte value (for our own tokenizers simply byteIds[b] = b). */
  readonly byteIds: Int32Array;
  /** pairKey(left, right) → rank of the merge for that pair. */
  readonly mergeRanks: ReadonlyMap<number, number>;
  /** Pre-token → token ids, so each distinct word is encoded once. */
  readonly cache: Map<string, readonly number[]>;
  /**
   * Llama 3's rule (tiktoken's, llama.cpp's `ignore_merges` for "llama-bpe"): a pre-token that is itself a token
   * is that token, whatever the merges would build. Maps such a pre-token to its id; absent for plain BPE.
   */
  readonly wholeWords?: ReadonlyMap<string, number>;
}

/** Pairs are stored under one number, left·2^21 + right: exact in a double, and ordered by (left, right). */
const PAIR_KEY_BASE = 2 ** 21;
const pairKey = (left: number, right: number) => left * PAIR_KEY_BASE + right;
const pairLeft = (key: number) => Math.floor(key / PAIR_KEY_BASE);
const pairRight = (key: number) => key % PAIR_KEY_BASE;

/** Past this many cached words the cache starts over, so a long text cannot grow it without bound. */
const CACHE_LIMIT = 100_000;

const utf8Encoder = new TextEncoder();
/** Invalid UTF-8 (a token sequence that splits a character) decodes to U+FFFD; a BOM is kept as text. */
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Assemble a tokenizer from its parts, checking that they fit together, and build its lookup tables.
 * Throws RangeError on inconsistent parts (loaders turn file problems into FormatError before this).
 */
export function createTokenizer(parts: {
  tokenBytes: readonly Uint8Array[];
  merges: readonly Merge[];
  specialTokens: readonly SpecialToken[];
  pattern: string;
}): BpeTokenizer {
  const { tokenBytes, merges, specialTokens, pattern } = parts;
  const specialIds = new Set(specialTokens.map((token) => token.id));
  const byteIds = new Int32Array(256).fill(-1);
  tokenBytes.forEach((bytes, id) => {
    if (bytes.length === 1 && !specialIds.has(id) && byteIds[bytes[0]] === -1) byteIds[bytes[0]] = id;
  });
  const missingByte = byteIds.indexOf(-1);
  if (missingByte !== -1) throw new RangeError(`byte 0x${missingByte.toString(16)} has no token`);

  const mergeRanks = new Map<number, number>();
  merges.forEach(({ left, right, merged }, rank) => {
    for (const id of [left, right, merged]) {
      if (!(id >= 0 && id < tokenBytes.length)) {
        throw new RangeError(`merge ${rank} uses unknown token ${id}`);
      }
    }
    const expected = concatBytes([tokenBytes[left], tokenBytes[right]]);
    if (!equalBytes(expected, tokenBytes[merged])) {
      throw new RangeError(`merge ${rank}: token ${merged} is not token ${left} followed by token ${right}`);
    }
    const key = pairKey(left, right);
    if (mergeRanks.has(key)) throw new RangeError(`merge ${rank} repeats merge ${mergeRanks.get(key)}`);
    mergeRanks.set(key, rank);
  });

  return {
    tokenBytes,
    merges,
    specialTokens,
    bosId: specialTokens.find((token) => token.text === BOS_TOKEN)?.id,
    eosId: specialTokens.find((token) => token.text === EOS_TOKEN)?.id,
    pattern,
    byteIds,
    mergeRanks,
    cache: new Map(),
  };
}

/**
 * The same tokenizer with Llama 3's whole-word rule (see `wholeWords`): every ordinary token whose bytes are
 * whole UTF-8 text is looked up before merging.
 */
export function withWholeWords(tokenizer: BpeTokenizer): BpeTokenizer {
  const special = new Set(tokenizer.specialTokens.map((token) => token.id));
  const strict = new TextDecoder('utf-8', { fatal: true });
  const wholeWords = new Map<string, number>();
  tokenizer.tokenBytes.forEach((bytes, id) => {
    if (special.has(id)) return;
    try {
      const text = strict.decode(bytes);
      if (!wholeWords.has(text)) wholeWords.set(text, id);
    } catch {
      // part of a character: never a whole pre-token
    }
  });
  return { ...tokenizer, wholeWords, cache: new Map() };
}

/** The base vocabulary of a tokenizer trained here: 256 bytes, then the special tokens. */
function baseTokenBytes(): Uint8Array[] {
  const tokens = Array.from({ length: 256 }, (_, byte) => Uint8Array.of(byte));
  tokens[BOS_ID] = utf8Encoder.encode(BOS_TOKEN);
  tokens[EOS_ID] = utf8Encoder.encode(EOS_TOKEN);
  return tokens;
}

const SPECIAL_TOKENS: SpecialToken[] = [
  { id: BOS_ID, text: BOS_TOKEN },
  { id: EOS_ID, text: EOS_TOKEN },
];

// ---------------------------------------------------------------------------------------------------------
// Training

export interface TrainOptions {
  /** Size of the final vocabulary, counting the 256 bytes and the 2 special tokens. */
  vocabSize: number;
  /** Called after every merge, e.g. to show training merge by merge. */
  onMerge?: (merge: TrainedMerge, rank: number) => void;
  /** Pre-tokenizer pattern; GPT-4's by default. */
  pattern?: string;
}

export interface TrainedBpe {
  tokenizer: BpeTokenizer;
  /** The merges in the order learned, with the count of each pair when it was chosen. */
  merges: TrainedMerge[];
}

/**
 * The training text, reduced to what BPE needs: each distinct pre-token once, as its current list of
 * token ids, with how often it occurs. "the" occurring 60,000 times is merged once, not 60,000 times.
 */
interface WordTable {
  tokens: number[][];
  frequency: number[];
}

function countWords(text: string, pattern: string): WordTable {
  const frequencies = new Map<string, number>();
  for (const piece of pretokenize(text, pattern)) frequencies.set(piece, (frequencies.get(piece) ?? 0) + 1);
  const table: WordTable = { tokens: [], frequency: [] };
  for (const [piece, frequency] of frequencies) {
    table.tokens.push(Array.from(utf8Encoder.encode(piece)));
    table.frequency.push(frequency);
  }
  return table;
}

/**
 * How often each adjacent pair occurs (weighted by word frequency), and in which words, so that a merge
 * only revisits the words that contain its pair. Overlapping pairs all count, as in GPT-2's and Hugging
 * Face's trainers: "aaa" holds the pair (a, a) twice although only one of them can be merged.
 */
interface PairTable {
  counts: Map<number, number>;
  words: Map<number, Set<number>>;
}

function addPairs(pairs: PairTable, tokens: number[], word: number, weight: number): void {
  for (let i = 0; i + 1 < tokens.length; i++) {
    const key = pairKey(tokens[i], tokens[i + 1]);
    const count = (pairs.counts.get(key) ?? 0) + weight;
    if (count === 0) pairs.counts.delete(key);
    else pairs.counts.set(key, count);
    if (weight > 0) {
      let words = pairs.words.get(key);
      if (!words) pairs.words.set(key, (words = new Set()));
      words.add(word);
    }
  }
}

/** Replace every non-overlapping occurrence of (left, right), scanning left to right, by `merged`. */
function mergePair(tokens: number[], left: number, right: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (i + 1 < tokens.length && tokens[i] === left && tokens[i + 1] === right) {
      out.push(merged);
      i++;
    } else {
      out.push(tokens[i]);
    }
  }
  return out;
}

/**
 * A max-heap of (count, pair) candidates: the most frequent pair on top, ties going to the smaller pair key,
 * i.e. the lower left id, then the lower right id. Counts change as merges happen; instead of updating
 * entries in place we push a fresh entry and skip stale ones when they surface ("lazy deletion").
 */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let child = this.keys.length - 1;
    while (child > 0) {
      const parent = (child - 1) >> 1;
      if (!this.above(child, parent)) break;
      this.swap(child, parent);
      child = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.keys.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let parent = 0;
      while (true) {
        let best = parent;
        for (const child of [2 * parent + 1, 2 * parent + 2]) {
          if (child < this.keys.length && this.above(child, best)) best = child;
        }
        if (best === parent) break;
        this.swap(parent, best);
        parent = best;
      }
    }
    return top;
  }

  /** Does entry a belong above entry b? */
  private above(a: number, b: number): boolean {
    return (
      this.counts[a] > this.counts[b] || (this.counts[a] === this.counts[b] && this.keys[a] < this.keys[b])
    );
  }

  private swap(a: number, b: number): void {
    [this.counts[a], this.counts[b]] = [this.counts[b], this.counts[a]];
    [this.keys[a], this.keys[b]] = [this.keys[b], this.keys[a]];
  }
}

/** Pop the best pair whose count is still current; undefined when no pair is left. */
function popBestPair(
  heap: PairHeap,
  counts: Map<number, number>,
): { count: number; key: number } | undefined {
  while (heap.size > 0) {
    const candidate = heap.pop();
    if (counts.get(candidate.key) === candidate.count) return candidate;
  }
  return undefined;
}

/**
 * Learn merges from `text` until the vocabulary has `vocabSize` tokens (or no adjacent pair is left).
 * Each step merges the most frequent adjacent pair; ties go to the pair with the lower left id, then the
 * lower right id, so the result depends only on the text and the options.
 */
export function trainBpe(text: string, options: TrainOptions): TrainedBpe {
  const pattern = options.pattern ?? PRETOKENIZE_PATTERN;
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < FIRST_MERGE_ID) {
    throw new RangeError(
      `vocabSize must be an integer of at least ${FIRST_MERGE_ID} (bytes + special tokens)`,
    );
  }
  const words = countWords(text, pattern);
  const pairs: PairTable = { counts: new Map(), words: new Map() };
  words.tokens.forEach((tokens, word) => addPairs(pairs, tokens, word, words.frequency[word]));
  const heap = new PairHeap();
  for (const [key, count] of pairs.counts) heap.push(count, key);

  const tokenBytes = baseTokenBytes();
  const merges: TrainedMerge[] = [];
  while (tokenBytes.length < options.vocabSize) {
    const best = popBestPair(heap, pairs.counts);
    if (!best) break;
    const merge: TrainedMerge = {
      left: pairLeft(best.key),
      right: pairRight(best.key),
      merged: tokenBytes.length,
      count: best.count,
    };
    applyMergeToWords(merge, words, pairs, heap);
    tokenBytes.push(concatBytes([tokenBytes[merge.left], tokenBytes[merge.right]]));
    merges.push(merge);
    options.onMerge?.(merge, merges.length - 1);
  }
  const tokenizer = createTokenizer({ tokenBytes, merges, specialTokens: SPECIAL_TOKENS, pattern });
  return { tokenizer, merges };
}

/**
 * Apply one merge to every word that contains its pair, keeping the pair counts exact: take the word's
 * pairs out, merge, put the new pairs in. Only pairs whose count changed go back on the heap.
 */
function applyMergeToWords(merge: Merge, words: WordTable, pairs: PairTable, heap: PairHeap): void {
  const key = pairKey(merge.left, merge.right);
  const affected = [...(pairs.words.get(key) ?? [])];
  pairs.words.delete(key);
  const changed = new Set<number>();
  for (const word of affected) {
    const before = words.tokens[word];
    const after = mergePair(before, merge.left, merge.right, merge.merged);
    if (after.length === before.length) continue; // stale entry: the word lost this pair earlier
    const frequency = words.frequency[word];
    addPairs(pairs, before, word, -frequency);
    addPairs(pairs, after, word, frequency);
    for (let i = 0; i + 1 < before.length; i++) changed.add(pairKey(before[i], before[i + 1]));
    for (let i = 0; i + 1 < after.length; i++) changed.add(pairKey(after[i], after[i + 1]));
    words.tokens[word] = after;
  }
  for (const changedKey of changed) {
    const count = pairs.counts.get(changedKey);
    if (count !== undefined) heap.push(count, changedKey);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Encoding and decoding

export interface EncodeOptions {
  /** Put <|bos|> first. */
  bos?: boolean;
  /** Put <|eos|> last. */
  eos?: boolean;
}

/**
 * Text → token ids: pre-tokenize, then within each piece start from its UTF-8 bytes and keep applying the
 * earliest-learned merge that fits until none does. Special tokens are only added through `options`; the
 * text "<|bos|>" in the input is encoded as ordinary text, so user text can never forge one.
 */
export function encode(tokenizer: BpeTokenizer, text: string, options: EncodeOptions = {}): number[] {
  const ids: number[] = [];
  if (options.bos) ids.push(requireSpecial(tokenizer.bosId, BOS_TOKEN));
  for (const piece of pretokenize(text, tokenizer.pattern)) {
    for (const id of encodePiece(tokenizer, piece)) ids.push(id);
  }
  if (options.eos) ids.push(requireSpecial(tokenizer.eosId, EOS_TOKEN));
  return ids;
}

function requireSpecial(id: number | undefined, text: string): number {
  if (id === undefined) throw new RangeError(`this tokenizer has no ${text} token`);
  return id;
}

/** Encode one pre-token (cached: a text repeats its words, so the answer is shared and read-only). */
export function encodePiece(tokenizer: BpeTokenizer, piece: string): readonly number[] {
  const cached = tokenizer.cache.get(piece);
  if (cached) return cached;
  const whole = tokenizer.wholeWords?.get(piece);
  if (whole !== undefined) return [whole];
  let tokens = Array.from(utf8Encoder.encode(piece), (byte) => tokenizer.byteIds[byte]);
  while (tokens.length > 1) {
    const rank = earliestMergeRank(tokenizer, tokens);
    if (rank === undefined) break;
    const { left, right, merged } = tokenizer.merges[rank];
    tokens = mergePair(tokens, left, right, merged);
  }
  if (tokenizer.cache.size >= CACHE_LIMIT) tokenizer.cache.clear();
  tokenizer.cache.set(piece, tokens);
  return tokens;
}

/** The rank of the earliest-learned merge that applies somewhere in `tokens`, if any. */
function earliestMergeRank(tokenizer: BpeTokenizer, tokens: number[]): number | undefined {
  let best: number | undefined;
  for (let i = 0; i + 1 < tokens.length; i++) {
    const rank = tokenizer.mergeRanks.get(pairKey(tokens[i], tokens[i + 1]));
    if (rank !== undefined && (best === undefined || rank < best)) best = rank;
  }
  return best;
}

/** The bytes token `id` stands for; nothing for a special token, which marks a boundary but is not text. */
export function tokenPiece(tokenizer: BpeTokenizer, id: number): Uint8Array {
  const bytes = tokenizer.tokenBytes[id];
  if (!bytes) {
    throw new RangeError(`token id ${id} is not in the vocabulary (0..${tokenizer.tokenBytes.length - 1})`);
  }
  return isSpecial(tokenizer, id) ? new Uint8Array(0) : bytes;
}

function isSpecial(tokenizer: BpeTokenizer, id: number): boolean {
  return tokenizer.specialTokens.some((token) => token.id === id);
}

/**
 * Token ids → text: the bytes of all tokens, joined, then read as UTF-8 once, so that byte tokens which only
 * together make a character decode to it. Special tokens add nothing, so decode(encode(x, { bos, eos }))
 * is x. Bytes that are not valid UTF-8 (half an emoji) become U+FFFD.
 */
export function decode(tokenizer: BpeTokenizer, ids: readonly number[]): string {
  return utf8Decoder.decode(concatBytes(ids.map((id) => tokenPiece(tokenizer, id))));
}

const hex2 = (byte: number) => byte.toString(16).toUpperCase().padStart(2, '0');
const byteLabels = (bytes: Uint8Array) => Array.from(bytes, (byte) => `<0x${hex2(byte)}>`).join('');
const strictUtf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * A label for token `id` in figures: its text with spaces as they are; a special token by its name
 * ("<|bos|>"); and, so that nothing is invisible, control characters and tokens that are not whole UTF-8
 * characters (a merge can hold two of an emoji's four bytes) as <0xNN> per byte.
 */
export function pieceLabel(tokenizer: BpeTokenizer, id: number): string {
  const special = tokenizer.specialTokens.find((token) => token.id === id);
  if (special) return special.text;
  const bytes = tokenPiece(tokenizer, id);
  let text: string;
  try {
    text = strictUtf8Decoder.decode(bytes);
  } catch {
    return byteLabels(bytes);
  }
  return text.replace(/\p{Cc}/gu, (control) => byteLabels(utf8Encoder.encode(control)));
}

/** A trained BPE tokenizer behind the engine's Tokenizer interface. */
export function bpeTokenizer(tokenizer: BpeTokenizer): Tokenizer {
  return {
    kind: `byte-level BPE tokenizer (${tokenizer.tokenBytes.length} tokens)`,
    family: 'bpe',
    vocabSize: tokenizer.tokenBytes.length,
    bosId: requireSpecial(tokenizer.bosId, BOS_TOKEN),
    eosId: requireSpecial(tokenizer.eosId, EOS_TOKEN),
    encode: (text, options) => encode(tokenizer, text, options),
    // Byte-level BPE needs no context: a token's bytes do not depend on the token before it.
    decodePiece: (_previous, token) => tokenPiece(tokenizer, token),
    decode: (ids) => decode(tokenizer, ids),
    pieceLabel: (token) => pieceLabel(tokenizer, token),
  };
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// ---------------------------------------------------------------------------------------------------------
// Hugging Face tokenizer.json
//
// The layout of the `tokenizers` library (and of Llama 3's file): model.type "BPE" with `vocab` (token
// string → id) and `merges` ("left right", in rank order); a Split pre-tokenizer holding our regex followed
// by ByteLevel; a ByteLevel decoder; the special tokens in `added_tokens`. Token strings use GPT-2's
// byte-to-unicode alphabet: each byte is shown as a printable character (the space byte as "Ġ", newline
// as "Ċ"), so that every token is a plain JSON string and "left right" can be split at its one space.
// There is no post_processor: like our encode(), Hugging Face then adds <|bos|> only when asked. One
// difference remains: Hugging Face matches added tokens in the input text ("<|bos|>" typed by a user
// becomes token 256), where encode() keeps such text ordinary.

/**
 * GPT-2's map from byte to a printable character: printable Latin-1 bytes stand for themselves; the other
 * 68 (controls, space, soft hyphen…) are assigned U+0100, U+0101, … in byte order.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable = (byte: number) =>
    (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, byte) => String.fromCodePoint(printable(byte) ? byte : next++));
})();

const UNICODE_TO_BYTE = new Map(BYTE_TO_UNICODE.map((char, byte) => [char, byte]));

/** A token's bytes in GPT-2's printable alphabet, as tokenizer.json stores them. */
export function byteLevelString(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => BYTE_TO_UNICODE[byte]).join('');
}

function specialIdSet(tokenizer: BpeTokenizer): Set<number> {
  return new Set(tokenizer.specialTokens.map((token) => token.id));
}

/** The tokenizer as a Hugging Face tokenizer.json document (JSON text). */
export function toTokenizerJson(tokenizer: BpeTokenizer): string {
  const specialIds = specialIdSet(tokenizer);
  const tokenString = (id: number) =>
    specialIds.has(id)
      ? utf8Decoder.decode(tokenizer.tokenBytes[id])
      : byteLevelString(tokenizer.tokenBytes[id]);
  // No prototype, so that a token spelled "__proto__" is an ordinary key.
  const vocab: Record<string, number> = Object.create(null);
  for (let id = 0; id < tokenizer.tokenBytes.length; id++) {
    const text = tokenString(id);
    if (text in vocab) throw new RangeError(`tokens ${vocab[text]} and ${id} are both written ${text}`);
    vocab[text] = id;
  }
  const document = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: tokenizer.specialTokens.map((token) => ({
      id: token.id,
      content: token.text,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: tokenizer.pattern }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: tokenizer.merges.map(({ left, right }) => `${tokenString(left)} ${tokenString(right)}`),
    },
  };
  return JSON.stringify(document, null, 2) + '\n';
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (value: unknown): value is { [key: string]: Json } =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Llama 3's tokenizer.json (128,256 tokens) is 9 MB and nests 5 levels; 32 MB is room for any byte-level
 * vocabulary up to MAX_BPE_VOCAB_SIZE, and refusing a bigger file costs no parse.
 */
export const TOKENIZER_JSON_LIMITS: JsonLimits = {
  maxLength: 32 << 20,
  maxDepth: 16,
  what: 'tokenizer.json',
};

/** The largest vocabulary the trainer makes (2^18: more than o200k's 200,019), so its files stay loadable. */
export const MAX_BPE_VOCAB_SIZE = 1 << 18;

/**
 * Read a tokenizer.json written by toTokenizerJson (or any file of the same layout). Everything is
 * checked; a problem is reported as a FormatError naming `file` and the field, e.g.
 * `tokenizer.json: model.merges[12] "Ġ th" refers to unknown token "th"`.
 */
export function fromTokenizerJson(jsonText: string, file = 'tokenizer.json'): BpeTokenizer {
  const problem = (message: string): never => {
    throw new FormatError(file, message);
  };
  const document = parseBoundedJson(jsonText, file, TOKENIZER_JSON_LIMITS);
  if (!isObject(document)) return problem('the top level must be a JSON object');
  const model = document.model;
  if (!isObject(model)) return problem('missing "model" object');
  if (model.type !== 'BPE') problem(`model.type is ${JSON.stringify(model.type)}; only "BPE" is supported`);
  checkUnsupportedModelOptions(model, problem);
  if (document.normalizer != null) problem('a normalizer is not supported (normalizer must be null)');
  const pattern = readPreTokenizerPattern(document.pre_tokenizer, problem);
  if (!isObject(document.decoder) || document.decoder.type !== 'ByteLevel') {
    problem('decoder must be {"type": "ByteLevel", …}');
  }
  const specialTokens = readAddedTokens(document.added_tokens, problem);
  const tokenBytes = readVocab(model.vocab, specialTokens, problem);
  const idOf = new Map<string, number>();
  for (const [text, id] of Object.entries(model.vocab as Record<string, number>)) idOf.set(text, id);
  const merges = readMerges(model.merges, idOf, problem);
  try {
    return createTokenizer({ tokenBytes, merges, specialTokens, pattern });
  } catch (error) {
    return problem((error as Error).message);
  }
}

type Problem = (message: string) => never;

function checkUnsupportedModelOptions(model: { [key: string]: Json }, problem: Problem): void {
  if (model.dropout != null) problem('model.dropout is not supported (must be null)');
  if (model.continuing_subword_prefix) problem('model.continuing_subword_prefix is not supported');
  if (model.end_of_word_suffix) problem('model.end_of_word_suffix is not supported');
  if (model.byte_fallback === true) problem('model.byte_fallback is not supported');
  if (model.ignore_merges === true) problem('model.ignore_merges is not supported');
}

/** Our layout: Sequence[Split(Regex), ByteLevel without its own regex]. Returns the regex source. */
function readPreTokenizerPattern(preTokenizer: Json | undefined, problem: Problem): string {
  const steps =
    isObject(preTokenizer) && preTokenizer.type === 'Sequence' ? preTokenizer.pretokenizers : undefined;
  const [split, byteLevel] = Array.isArray(steps) ? steps : [];
  const regex =
    isObject(split) && split.type === 'Split' && isObject(split.pattern) ? split.pattern.Regex : undefined;
  if (
    !Array.isArray(steps) ||
    steps.length !== 2 ||
    typeof regex !== 'string' ||
    !isObject(split) ||
    split.behavior !== 'Isolated' ||
    split.invert === true ||
    !isObject(byteLevel) ||
    byteLevel.type !== 'ByteLevel' ||
    byteLevel.use_regex !== false ||
    byteLevel.add_prefix_space === true
  ) {
    return problem(
      'pre_tokenizer must be a Sequence of Split {pattern: {Regex}, behavior: "Isolated"} and ' +
        'ByteLevel {use_regex: false, add_prefix_space: false}',
    );
  }
  try {
    requireKnownPattern(regex);
    compilePattern(regex);
  } catch (error) {
    problem((error as Error).message);
  }
  return regex;
}

function readAddedTokens(addedTokens: Json | undefined, problem: Problem): SpecialToken[] {
  if (addedTokens === undefined || addedTokens === null) return [];
  if (!Array.isArray(addedTokens)) return problem('added_tokens must be an array');
  return addedTokens.map((token, index) => {
    if (!isObject(token) || !Number.isInteger(token.id) || typeof token.content !== 'string') {
      return problem(`added_tokens[${index}] needs an integer "id" and a string "content"`);
    }
    return { id: token.id as number, text: token.content };
  });
}

/** model.vocab → bytes of every token by id; ids must be exactly 0..n-1. */
function readVocab(vocab: Json | undefined, specialTokens: SpecialToken[], problem: Problem): Uint8Array[] {
  if (!isObject(vocab)) return problem('missing "model.vocab" object');
  const specialText = new Map(specialTokens.map((token) => [token.id, token.text]));
  const tokenBytes: Uint8Array[] = [];
  for (const [text, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      problem(`model.vocab[${JSON.stringify(text)}] is ${JSON.stringify(id)}, not a token id`);
    }
    const idNumber = id as number;
    if (tokenBytes[idNumber]) problem(`model.vocab gives id ${idNumber} to two tokens`);
    if (specialText.has(idNumber)) {
      if (specialText.get(idNumber) !== text)
        problem(`model.vocab id ${idNumber} is not added token ${text}`);
      tokenBytes[idNumber] = utf8Encoder.encode(text);
    } else {
      tokenBytes[idNumber] = fromByteLevelString(text, () =>
        problem(`model.vocab token ${JSON.stringify(text)} has a character outside the byte-level alphabet`),
      );
    }
  }
  for (const [id, text] of specialText) {
    if (!tokenBytes[id]) tokenBytes[id] = utf8Encoder.encode(text);
  }
  for (let id = 0; id < tokenBytes.length; id++) {
    if (!tokenBytes[id]) problem(`no token has id ${id} (ids must run from 0 without gaps)`);
  }
  return tokenBytes;
}

/** A token written in GPT-2's printable alphabet back to its bytes; `onError` for a character outside it. */
export function fromByteLevelString(text: string, onError: () => never): Uint8Array {
  return Uint8Array.from(Array.from(text), (char) => UNICODE_TO_BYTE.get(char) ?? onError());
}

/** model.merges → Merge list; each entry "left right" (or ["left", "right"]) of known tokens. */
function readMerges(merges: Json | undefined, idOf: Map<string, number>, problem: Problem): Merge[] {
  if (!Array.isArray(merges)) return problem('missing "model.merges" array');
  return merges.map((entry, index) => {
    const parts = typeof entry === 'string' ? entry.split(' ') : entry;
    if (!Array.isArray(parts) || parts.length !== 2 || parts.some((part) => typeof part !== 'string')) {
      return problem(
        `model.merges[${index}] is ${JSON.stringify(entry)}; expected "left right" or [left, right]`,
      );
    }
    const [leftText, rightText] = parts as [string, string];
    const lookup = (text: string) =>
      idOf.get(text) ??
      problem(
        `model.merges[${index}] ${JSON.stringify(entry)} refers to unknown token ${JSON.stringify(text)}`,
      );
    const left = lookup(leftText);
    const right = lookup(rightText);
    const merged = lookup(leftText + rightText);
    return { left, right, merged };
  });
}
