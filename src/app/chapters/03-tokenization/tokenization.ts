/**
 * Tokens as chapter 3's figures show them: which bytes each token covers, which tokens together make one
 * character (a tokenizer may cut an emoji between its bytes), counts per text, and BPE training replayed
 * merge by merge. Pure functions of token ids and bytes; the tokenizers themselves are GPT-4o's o200k_base
 * (gpt-tokenizer, loaded on demand) and the house trainer in src/tokenizers/bpe.ts.
 */
import { FIRST_MERGE_ID, trainBpe, type TrainedMerge } from '../../../tokenizers/bpe.ts';
import { pretokenize } from '../../../tokenizers/pretokenize.ts';
import { hexByte, visibleLabel } from '../02-text-to-bytes/utf8.ts';

const utf8Encoder = new TextEncoder();
/** Lenient: a group of tokens that ends inside a character (only at a cut) shows U+FFFD, never throws. */
const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const strictUtf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------------------------------------
// Texts

/** Texts to compare with the reader's own: other scripts, emoji, code and numbers. */
export const SAMPLES: readonly { name: string; text: string; lang?: string }[] = [
  { name: 'French', text: 'Au commencement, Dieu créa les cieux et la terre.', lang: 'fr' },
  { name: 'Japanese', text: '初めに言葉があった。', lang: 'ja' },
  { name: 'Hindi', text: 'आदि में परमेश्वर ने आकाश और पृथ्वी की सृष्टि की।', lang: 'hi' },
  { name: 'Arabic', text: 'في البدء خلق الله السماوات والأرض.', lang: 'ar' },
  { name: 'Emoji', text: 'ok 👍🏽 👩‍💻 🇪🇺 🎉!' },
  { name: 'Python', text: 'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n' },
  { name: 'Numbers', text: 'In 2024, 1,234,567 people paid $3.14 each: 3876543210.' },
];

/**
 * Genesis 1:1–13, exactly as in corpus/web.txt.gz (the text the house model and its tokenizer were trained
 * on): a short passage to train a tokenizer on in the browser.
 */
export const CORPUS_PASSAGE =
  'In the beginning, God created the heavens and the earth.\nThe earth was formless and empty. Darkness was on the surface of the deep and God’s Spirit was hovering over the surface of the waters.\nGod said, “Let there be light,” and there was light.\nGod saw the light, and saw that it was good. God divided the light from the darkness.\nGod called the light “day”, and the darkness he called “night”. There was evening and there was morning, the first day.\nGod said, “Let there be an expanse in the middle of the waters, and let it divide the waters from the waters.”\nGod made the expanse, and divided the waters which were under the expanse from the waters which were above the expanse; and it was so.\nGod called the expanse “sky”. There was evening and there was morning, a second day.\nGod said, “Let the waters under the sky be gathered together to one place, and let the dry land appear;” and it was so.\nGod called the dry land “earth”, and the gathering together of the waters he called “seas”. God saw that it was good.\nGod said, “Let the earth yield grass, herbs yielding seeds, and fruit trees bearing fruit after their kind, with their seeds in it, on the earth;” and it was so.\nThe earth yielded grass, herbs yielding seed after their kind, and trees bearing fruit, with their seeds in it, after their kind; and God saw that it was good.\nThere was evening and there was morning, a third day.\n';

/** The figures tokenize at most this many characters of a text (a pasted book would only slow the page). */
export const MAX_TEXT_CHARS = 20_000;

/** The first `max` UTF-16 units of `text`, never ending on half of a character outside the BMP. */
export function cutText(text: string, max: number): string {
  const cut = text.slice(0, max);
  return /[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut;
}

// ---------------------------------------------------------------------------------------------------------
// GPT-4o's tokenizer

export interface O200k {
  /** Text → token ids, exactly as GPT-4o's tokenizer would split it. */
  encode(text: string): number[];
  /** The bytes token `id` stands for (not always whole UTF-8 characters). */
  bytesOf(id: number): Uint8Array;
  /** How many ordinary (byte-sequence) tokens it has; its few special tokens come after them. */
  tokenCount: number;
}

let o200k: Promise<O200k> | undefined;

/**
 * Loads o200k_base from gpt-tokenizer, once. Its table of ~200,000 tokens is about 2.4 MB of script, so it
 * is imported only when a figure asks for it (the bundler serves it from this site, as its own file).
 */
export function loadO200k(): Promise<O200k> {
  o200k ??= Promise.all([
    import('gpt-tokenizer/encoding/o200k_base'),
    import('gpt-tokenizer/bpeRanks/o200k_base'),
  ]).then(
    ([encoding, ranks]) => {
      // ranks.default[id] is the token's text, or its bytes when they are not whole UTF-8 characters.
      const table = ranks.default;
      return {
        // Text that looks like a special token ("<|endoftext|>") stays ordinary text, as a user's text should.
        encode: (text: string) => encoding.encode(text, { disallowedSpecial: new Set() }),
        bytesOf(id: number) {
          const entry = table[id];
          if (entry === undefined) throw new RangeError(`o200k_base has no ordinary token ${id}`);
          return typeof entry === 'string' ? utf8Encoder.encode(entry) : Uint8Array.from(entry);
        },
        tokenCount: table.length,
      };
    },
    (error: unknown) => {
      o200k = undefined; // let a later figure try again
      throw error;
    },
  );
  return o200k;
}

// ---------------------------------------------------------------------------------------------------------
// Spans: bytes of each token, grouped into whole characters

export interface TokenView {
  id: number;
  bytes: Uint8Array;
  /** Its bytes in the UTF-8 of the whole text: [start, end). */
  start: number;
  end: number;
  /** The token's own text when its bytes are whole UTF-8 characters; undefined when it holds part of one. */
  text: string | undefined;
  /** Index of the group (in `groups`) it belongs to. */
  group: number;
}

/**
 * Consecutive tokens whose bytes together are whole characters: one token, usually; several when a
 * character's bytes are split between tokens (then no token of the group can be shown as text on its own).
 */
export interface TokenGroup {
  /** Its tokens: first ≤ t < end. */
  first: number;
  end: number;
  text: string;
}

export interface TokenizedText {
  tokens: TokenView[];
  groups: TokenGroup[];
  byteCount: number;
}

/** A UTF-8 continuation byte (10xxxxxx): never the first byte of a character. */
const isContinuation = (byte: number) => (byte & 0xc0) === 0x80;

/**
 * Lays tokens end to end over the bytes they stand for and groups them so that every group is whole
 * characters: a group ends after a token whose next byte starts a new character. `bytesOf` gets the token's
 * position too, for tokenizers whose pieces depend on it (llama2.c drops the space of its first piece).
 */
export function tokenSpans(
  ids: readonly number[],
  bytesOf: (id: number, index: number) => Uint8Array,
): TokenizedText {
  const tokens: TokenView[] = [];
  let offset = 0;
  for (const [index, id] of ids.entries()) {
    const bytes = bytesOf(id, index);
    let text: string | undefined;
    try {
      text = strictUtf8Decoder.decode(bytes);
    } catch {
      text = undefined;
    }
    tokens.push({ id, bytes, start: offset, end: offset + bytes.length, text, group: -1 });
    offset += bytes.length;
  }
  const groups: TokenGroup[] = [];
  let first = 0;
  for (let t = 0; t < tokens.length; t++) {
    const next = tokens[t + 1];
    const boundary = next === undefined || next.bytes.length === 0 || !isContinuation(next.bytes[0]);
    if (!boundary) continue;
    const members = tokens.slice(first, t + 1);
    const joined = new Uint8Array(members.reduce((sum, token) => sum + token.bytes.length, 0));
    members.forEach((token) => joined.set(token.bytes, token.start - members[0].start));
    members.forEach((token) => (token.group = groups.length));
    groups.push({ first, end: t + 1, text: utf8Decoder.decode(joined) });
    first = t + 1;
  }
  return { tokens, groups, byteCount: offset };
}

/** Does any token of this group hold only part of a character? */
export function isSplit(tokenized: TokenizedText, group: TokenGroup): boolean {
  return group.end - group.first > 1 && tokenized.tokens[group.first].text === undefined;
}

export interface TextStats {
  /** User-perceived characters (grapheme clusters). */
  characters: number;
  bytes: number;
  /** Words as Unicode's word-boundary rules find them (Intl.Segmenter; dictionary-based for Japanese). */
  words: number;
}

const graphemeSegmenter = new Intl.Segmenter('en', { granularity: 'grapheme' });
const wordSegmenter = new Intl.Segmenter('en', { granularity: 'word' });

export function textStats(text: string): TextStats {
  let characters = 0;
  for (const _ of graphemeSegmenter.segment(text)) characters++;
  let words = 0;
  for (const segment of wordSegmenter.segment(text)) if (segment.isWordLike) words++;
  return { characters, bytes: utf8Encoder.encode(text).length, words };
}

// ---------------------------------------------------------------------------------------------------------
// BPE training, merge by merge

/** Training texts are cut to this many characters, so training in the page takes milliseconds. */
export const MAX_TRAIN_CHARS = 2000;
/** At most this many merges are learned (the house tokenizer learned 4,096 − 258 = 3,838). */
export const MAX_MERGES = 300;

/**
 * A tokenizer trained on one text, with the text's tokens after every merge, precomputed compactly so that a
 * slider over the merges redraws at once: merges only ever remove boundaries between tokens, so one number
 * per byte (the merge that removed the boundary in front of it) encodes all the states.
 */
export interface MergeTimeline {
  /** The training text (cut to MAX_TRAIN_CHARS). */
  text: string;
  byteCount: number;
  /** The merges in the order learned, while a pair still occurred at least twice. */
  merges: TrainedMerge[];
  /** Bytes of every token of the trained vocabulary, by id. */
  tokenBytes: readonly Uint8Array[];
  /** removedAt[i]: after how many merges the boundary in front of byte i is gone (NEVER if it stays). */
  removedAt: Int32Array;
  /** The id of the token covering bytes [start, end) once it exists (a byte's own token from the start),
   * keyed by start · (byteCount + 1) + end. */
  spanIds: Map<number, number>;
  /** tokenCounts[k]: tokens in the text after k merges (k = 0: one per byte). */
  tokenCounts: Int32Array;
}

export const NEVER = 2 ** 31 - 1;

interface Piece {
  id: number;
  start: number;
  end: number;
}

/**
 * Trains the house BPE trainer on `text` (cut to MAX_TRAIN_CHARS) for up to MAX_MERGES merges, keeps the
 * merges whose pair occurred at least twice (after the first pair seen only once, the rest are arbitrary),
 * and replays them on the text: each merge, in order, replaces every (left, right) by its new token, left
 * to right, inside each pre-token, which is what encoding with the first k merges gives.
 */
export function trainTimeline(text: string): MergeTimeline {
  const cut = cutText(text, MAX_TRAIN_CHARS);
  const trained = trainBpe(cut, { vocabSize: FIRST_MERGE_ID + MAX_MERGES });
  const firstSingle = trained.merges.findIndex((merge) => merge.count < 2);
  const merges = firstSingle === -1 ? trained.merges : trained.merges.slice(0, firstSingle);
  const { tokenizer } = trained;

  const words: Piece[][] = [];
  let offset = 0;
  for (const piece of pretokenize(cut, tokenizer.pattern)) {
    const bytes = utf8Encoder.encode(piece);
    words.push(
      Array.from(bytes, (byte, i) => ({
        id: tokenizer.byteIds[byte],
        start: offset + i,
        end: offset + i + 1,
      })),
    );
    offset += bytes.length;
  }
  const byteCount = offset;
  const removedAt = new Int32Array(byteCount + 1).fill(NEVER);
  const spanIds = new Map<number, number>();
  const key = (start: number, end: number) => start * (byteCount + 1) + end;
  for (const piece of words.flat()) spanIds.set(key(piece.start, piece.end), piece.id);
  const tokenCounts = new Int32Array(merges.length + 1);
  tokenCounts[0] = byteCount;
  merges.forEach(({ left, right, merged }, m) => {
    let replaced = 0;
    for (let w = 0; w < words.length; w++) {
      const word = words[w];
      if (word.length < 2) continue;
      const out: Piece[] = [];
      for (let i = 0; i < word.length; i++) {
        const a = word[i];
        const b = word[i + 1];
        if (b !== undefined && a.id === left && b.id === right) {
          out.push({ id: merged, start: a.start, end: b.end });
          removedAt[b.start] = m + 1;
          spanIds.set(key(a.start, b.end), merged);
          replaced++;
          i++;
        } else {
          out.push(a);
        }
      }
      if (out.length !== word.length) words[w] = out;
    }
    tokenCounts[m + 1] = tokenCounts[m] - replaced;
  });
  return { text: cut, byteCount, merges, tokenBytes: tokenizer.tokenBytes, removedAt, spanIds, tokenCounts };
}

/** The text's token ids after the first `k` merges. */
export function tokensAfter(timeline: MergeTimeline, k: number): number[] {
  const { byteCount, removedAt, spanIds } = timeline;
  const ids: number[] = [];
  let start = 0;
  for (let end = 1; end <= byteCount; end++) {
    if (end < byteCount && removedAt[end] <= k) continue; // this boundary is gone: the token goes on
    ids.push(spanIds.get(start * (byteCount + 1) + end)!);
    start = end;
  }
  return ids;
}

/**
 * A token's text as a chip shows it: every character visible, so a token that is only a space (␣), a line
 * break (⏎), a zero-width joiner (ZWJ) or a combining accent (◌́) still has something to see.
 */
export function chipLabel(text: string): string {
  return Array.from(text, (char) => visibleLabel(char.codePointAt(0)!)).join('');
}

/** The text of a token of the trained vocabulary, or its bytes in hex where it is part of a character. */
export function tokenLabel(bytes: Uint8Array): string {
  try {
    return strictUtf8Decoder.decode(bytes);
  } catch {
    return Array.from(bytes, hexByte).join(' ');
  }
}

/**
 * A token of the trained vocabulary as a chip shows it: its text with every character visible (chipLabel),
 * or, for part of a character, its bytes in hex with plain spaces between them (they are not text: no ␣).
 */
export function tokenChipLabel(bytes: Uint8Array): string {
  try {
    return chipLabel(strictUtf8Decoder.decode(bytes));
  } catch {
    return Array.from(bytes, hexByte).join(' ');
  }
}
