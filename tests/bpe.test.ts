/**
 * Byte-level BPE (src/tokenizers) and the corpus split (src/corpus/split.ts).
 * Training here uses small texts so the suite stays fast; the real corpus is only read for the split.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  BOS_ID,
  bpeTokenizer,
  decode,
  encode,
  EOS_ID,
  FIRST_MERGE_ID,
  fromTokenizerJson,
  pieceLabel,
  toTokenizerJson,
  trainBpe,
  type TrainedMerge,
} from '../src/tokenizers/bpe.ts';
import { PRETOKENIZE_PATTERN, pretokenize } from '../src/tokenizers/pretokenize.ts';
import { fnv1a32, isValidationChapter, parseChapters, splitCorpus } from '../src/corpus/split.ts';
import { FormatError } from '../src/formats/errors.ts';
import { seededRandom } from './helpers.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const utf8 = new TextEncoder();

/** What UTF-8 can carry of a JS string: every lone surrogate becomes U+FFFD. */
function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

/** Strings mixing ASCII words, digits, whitespace, Latin-1, CJK, emoji, combining marks, controls, BOMs and lone surrogates. */
function randomText(random: () => number, length: number): string {
  const pools: (() => string)[] = [
    () => ' the and of God Yahweh said, “Let’s don’t I’ll'.split(' ')[Math.floor(random() * 12)] ?? 'x',
    () => String.fromCharCode(0x20 + Math.floor(random() * 95)),
    () => ' \n\t\r  \n\n'[Math.floor(random() * 8)],
    () => String.fromCharCode(Math.floor(random() * 10) + 0x30),
    () => String.fromCharCode(0xa0 + Math.floor(random() * 0x60)),
    () => String.fromCharCode(0x4e00 + Math.floor(random() * 0x5000)),
    () => String.fromCodePoint(0x1f300 + Math.floor(random() * 0x300)),
    () => 'e\u0301a\u0308\u0327',
    () => String.fromCharCode(Math.floor(random() * 0x20)),
    () => '\ufeff\u200d\u00ad',
    () => String.fromCharCode(0xd800 + Math.floor(random() * 0x800)),
    () => '👨‍👩‍👧',
  ];
  let text = '';
  while (text.length < length) text += pools[Math.floor(random() * pools.length)]();
  return text;
}

const SAMPLE = [
  'In the beginning, God created the heavens and the earth.',
  'The earth was formless and empty. Darkness was on the surface of the deep.',
  'God said, “Let there be light,” and there was light. Don’t you see? It’s 1234 o’clock!',
  'Psalm 23\nYahweh is my shepherd; I shall lack nothing.\n\n',
].join('\n');

describe('pre-tokenization', () => {
  it('splits words with their leading space, contractions, numbers in threes, punctuation and newlines', () => {
    expect(pretokenize('Hello world')).toEqual(['Hello', ' world']);
    expect(pretokenize("I don't know, it's 12345!")).toEqual([
      'I',
      ' don',
      "'t",
      ' know',
      ',',
      ' it',
      "'s",
      ' ',
      '123',
      '45',
      '!',
    ]);
    expect(pretokenize("WE'LL SEE")).toEqual(['WE', "'LL", ' SEE']);
    // The curly apostrophe is not in the contraction rule, but "’s" still becomes one piece.
    expect(pretokenize('God’s word')).toEqual(['God', '’s', ' word']);
    // Extra spaces stay apart from the word, so " spaces" is the same piece as after one space.
    expect(pretokenize('  two   spaces')).toEqual([' ', ' two', '  ', ' spaces']);
    expect(pretokenize('line one.\n\nline two\n')).toEqual(['line', ' one', '.\n\n', 'line', ' two', '\n']);
    expect(pretokenize('He said, “Go!”')).toEqual(['He', ' said', ',', ' “', 'Go', '!”']);
    expect(pretokenize('')).toEqual([]);
  });

  it('never loses a character', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const text = randomText(random, 60);
      expect(pretokenize(text).join('')).toBe(text);
    }
  });
});

describe('BPE training', () => {
  const merged = (merges: TrainedMerge[], trained: ReturnType<typeof trainBpe>) =>
    merges.map((merge) => [decode(trained.tokenizer, [merge.merged]), merge.count]);

  it('learns the textbook merges of "aaabdaaabac"', () => {
    // (a,a) occurs 4 times, overlapping runs counted; then "ab" and "Za" tie at 2 and the lower pair of ids
    // wins: (97, 98) "ab" before (258, 97); then "aa"+"ab" = "aaab" (2).
    const trained = trainBpe('aaabdaaabac', { vocabSize: FIRST_MERGE_ID + 3 });
    expect(trained.merges).toEqual([
      { left: 97, right: 97, merged: 258, count: 4 },
      { left: 97, right: 98, merged: 259, count: 2 },
      { left: 258, right: 259, merged: 260, count: 2 },
    ]);
    expect(merged(trained.merges, trained)).toEqual([
      ['aa', 4],
      ['ab', 2],
      ['aaab', 2],
    ]);
    expect(encode(trained.tokenizer, 'aaabdaaabac')).toEqual([260, 100, 260, 97, 99]);
  });

  it('learns the word-frequency example by hand (hug 10, pug 5, pun 12, bun 4, hugs 5)', () => {
    // Newlines are pre-tokens of their own, so each word is counted exactly as often as written.
    const words = { hug: 10, pug: 5, pun: 12, bun: 4, hugs: 5 };
    const text = Object.entries(words)
      .flatMap(([word, times]) => Array<string>(times).fill(word))
      .join('\n');
    const trained = trainBpe(text, { vocabSize: FIRST_MERGE_ID + 4 });
    // "ug": hug 10 + pug 5 + hugs 5 = 20; then "un": pun 12 + bun 4 = 16; then "h"+"ug": 10 + 5 = 15;
    // then "p"+"un" = 12 (beats "p"+"ug" = 5 and "hug"+"s" = 5).
    expect(merged(trained.merges, trained)).toEqual([
      ['ug', 20],
      ['un', 16],
      ['hug', 15],
      ['pun', 12],
    ]);
  });

  it('gives the same merges as a slow reference trainer that recounts every pair at every step', () => {
    const random = seededRandom(11);
    const text = SAMPLE.repeat(3) + randomText(random, 3000);
    const fast = trainBpe(text, { vocabSize: 700 });
    expect(fast.merges).toEqual(referenceTrain(text, 700));
  });

  it('is deterministic and reports every merge through onMerge', () => {
    const text = SAMPLE.repeat(5);
    const seen: [TrainedMerge, number][] = [];
    const first = trainBpe(text, { vocabSize: 400, onMerge: (merge, rank) => seen.push([merge, rank]) });
    const second = trainBpe(text, { vocabSize: 400 });
    expect(second.merges).toEqual(first.merges);
    expect(seen.map(([merge]) => merge)).toEqual(first.merges);
    expect(seen.map(([, rank]) => rank)).toEqual(first.merges.map((_, rank) => rank));
    expect(first.merges.map((merge) => merge.merged)).toEqual(
      first.merges.map((_, rank) => FIRST_MERGE_ID + rank),
    );
  });

  it('stops early when no pair is left, and rejects a vocabulary smaller than bytes + specials', () => {
    expect(trainBpe('ab ab', { vocabSize: 1000 }).merges.length).toBe(2); // "ab", then " " + "ab"
    expect(() => trainBpe('x', { vocabSize: 100 })).toThrow(RangeError);
  });

  it('encodes the training text to the same tokens that training ended with', () => {
    const text = SAMPLE.repeat(2);
    const trained = trainBpe(text, { vocabSize: 330 });
    const ids = encode(trained.tokenizer, text);
    // Replaying training's merges on the whole text, piece by piece, must give the encoder's answer.
    let pieces = pretokenize(text).map((piece) => Array.from(utf8.encode(piece)));
    for (const merge of trained.merges) {
      pieces = pieces.map((tokens) => mergeAll(tokens, merge.left, merge.right, merge.merged));
    }
    expect(ids).toEqual(pieces.flat());
  });
});

describe('BPE encode and decode', () => {
  const { tokenizer } = trainBpe(SAMPLE.repeat(4) + randomText(seededRandom(3), 2000), { vocabSize: 600 });

  it('round-trips arbitrary Unicode (lone surrogates become U+FFFD, as UTF-8 cannot hold them)', () => {
    const random = seededRandom(2024);
    for (let i = 0; i < 300; i++) {
      const text = randomText(random, 1 + Math.floor(random() * 80));
      expect(decode(tokenizer, encode(tokenizer, text))).toBe(wellFormed(text));
    }
    expect(decode(tokenizer, encode(tokenizer, 'a\ud800b'))).toBe('a\ufffdb');
    expect(decode(tokenizer, encode(tokenizer, '\ufeffBOM kept'))).toBe('\ufeffBOM kept');
    expect(encode(tokenizer, '')).toEqual([]);
  });

  it('adds <|bos|> and <|eos|> only on request; their text in the input stays ordinary text', () => {
    const ids = encode(tokenizer, 'God said', { bos: true, eos: true });
    expect(ids[0]).toBe(BOS_ID);
    expect(ids[ids.length - 1]).toBe(EOS_ID);
    expect(decode(tokenizer, ids)).toBe('God said'); // special tokens are boundaries, not text
    expect(encode(tokenizer, '<|bos|>')).not.toContain(BOS_ID);
    expect(decode(tokenizer, encode(tokenizer, '<|bos|>'))).toBe('<|bos|>');
  });

  it('labels tokens for figures, with nothing invisible', () => {
    expect(pieceLabel(tokenizer, BOS_ID)).toBe('<|bos|>');
    expect(pieceLabel(tokenizer, 32)).toBe(' ');
    expect(pieceLabel(tokenizer, 10)).toBe('<0x0A>');
    expect(pieceLabel(tokenizer, 0xe2)).toBe('<0xE2>'); // the first byte of “ alone
    const said = encode(tokenizer, ' said');
    expect(said.map((id) => pieceLabel(tokenizer, id)).join('')).toBe(' said');
  });

  it('serves the engine through the shared Tokenizer interface', () => {
    const engineTokenizer = bpeTokenizer(tokenizer);
    expect(engineTokenizer.vocabSize).toBe(600);
    expect(engineTokenizer.bosId).toBe(BOS_ID);
    const ids = engineTokenizer.encode('Let’s go 👋', { bos: true, eos: false });
    expect(ids).toEqual(encode(tokenizer, 'Let’s go 👋', { bos: true }));
    expect(engineTokenizer.decode(ids)).toBe('Let’s go 👋');
    const pieces = ids.map((id, i) => engineTokenizer.decodePiece(ids[i - 1] ?? BOS_ID, id));
    expect(new TextDecoder().decode(Uint8Array.from(pieces.flatMap((piece) => Array.from(piece))))).toBe(
      'Let’s go 👋',
    );
  });

  it('decodes a split character to U+FFFD and rejects unknown ids', () => {
    const euro = Array.from(utf8.encode('€')); // three bytes = three byte tokens (ids = byte values)
    expect(decode(tokenizer, euro.slice(0, 2))).toBe('\ufffd');
    expect(decode(tokenizer, euro)).toBe('€');
    expect(() => decode(tokenizer, [tokenizer.tokenBytes.length])).toThrow(RangeError);
  });
});

describe('tokenizer.json', () => {
  const { tokenizer } = trainBpe(SAMPLE.repeat(4), { vocabSize: 400 });
  const json = toTokenizerJson(tokenizer);

  it('uses the Hugging Face BPE layout with the GPT-2 byte alphabet', () => {
    const document = JSON.parse(json);
    expect(document.model.type).toBe('BPE');
    expect(Object.keys(document.model.vocab)).toHaveLength(tokenizer.tokenBytes.length);
    expect(document.model.vocab['Ġ']).toBe(32); // the space byte
    expect(document.model.vocab['Ċ']).toBe(10); // the newline byte
    expect(document.model.vocab['A']).toBe(65);
    expect(document.model.vocab['<|bos|>']).toBe(BOS_ID);
    expect(document.model.merges).toHaveLength(tokenizer.merges.length);
    expect(document.model.merges[0]).toMatch(/^\S+ \S+$/);
    expect(document.added_tokens.map((token: { content: string }) => token.content)).toEqual([
      '<|bos|>',
      '<|eos|>',
    ]);
    expect(document.pre_tokenizer.pretokenizers[0].pattern.Regex).toBe(PRETOKENIZE_PATTERN);
    expect(document.decoder.type).toBe('ByteLevel');
  });

  it('saves and loads back to the same encoding', () => {
    const loaded = fromTokenizerJson(json);
    expect(toTokenizerJson(loaded)).toBe(json);
    const random = seededRandom(99);
    for (const text of [SAMPLE, 'Yahweh’s word 1234567', randomText(random, 500)]) {
      expect(encode(loaded, text)).toEqual(encode(tokenizer, text));
    }
    // Merges written as [left, right] pairs (the newer `tokenizers` format) load the same way.
    const document = JSON.parse(json);
    document.model.merges = document.model.merges.map((merge: string) => merge.split(' '));
    expect(encode(fromTokenizerJson(JSON.stringify(document)), SAMPLE)).toEqual(encode(tokenizer, SAMPLE));
  });

  // The saved document, edited into broken variants; `any` because the edits reach into raw JSON.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  type Edit = (document: any) => void;
  const brokenFiles: [string, Edit, RegExp][] = [
    ['no model', (d) => delete d.model, /missing "model" object/],
    ['another model type', (d) => (d.model.type = 'WordPiece'), /only "BPE" is supported/],
    ['no vocab', (d) => delete d.model.vocab, /missing "model.vocab"/],
    ['no merges', (d) => delete d.model.merges, /missing "model.merges"/],
    [
      'a merge of an unknown token',
      (d) => (d.model.merges[0] = 'Ġ zzzz'),
      /merges\[0\] "Ġ zzzz" refers to unknown token "zzzz"/,
    ],
    [
      'a merge that is not a pair',
      (d) => (d.model.merges[1] = 'onlyone'),
      /merges\[1\] is "onlyone"; expected "left right"/,
    ],
    ['a repeated merge', (d) => d.model.merges.push(d.model.merges[0]), /repeats merge 0/],
    ['a missing byte token', (d) => delete d.model.vocab['Ā'], /no token has id 0/],
    ['an id that is not a number', (d) => (d.model.vocab['Ġ'] = 'x'), /vocab\["Ġ"\] is "x", not a token id/],
    [
      'a token outside the byte alphabet',
      (d) => (d.model.vocab['€'] = 400),
      /"€" has a character outside the byte-level alphabet/,
    ],
    ['no pre-tokenizer', (d) => (d.pre_tokenizer = null), /pre_tokenizer must be a Sequence/],
    [
      'a regex JavaScript cannot run',
      (d) => (d.pre_tokenizer.pretokenizers[0].pattern.Regex = '(?i:a)'),
      /is not one this program knows to be safe/,
    ],
    ['byte fallback', (d) => (d.model.byte_fallback = true), /byte_fallback is not supported/],
    ['added tokens that are not a list', (d) => (d.added_tokens = {}), /added_tokens must be an array/],
  ];

  function loadError(text: string): FormatError {
    try {
      fromTokenizerJson(text, 'tok.json');
    } catch (error) {
      expect(error).toBeInstanceOf(FormatError);
      expect((error as FormatError).file).toBe('tok.json');
      return error as FormatError;
    }
    throw new Error('expected a FormatError');
  }

  it('rejects text that is not a JSON object', () => {
    expect(loadError('{"model": ').message).toMatch(/^tok\.json: not valid JSON/);
    expect(loadError('[1, 2]').message).toMatch(/^tok\.json: the top level must be a JSON object/);
  });

  it.each(brokenFiles)('rejects a file with %s', (_, edit, message) => {
    const document = JSON.parse(json);
    edit(document);
    expect(loadError(JSON.stringify(document)).message).toMatch(message);
  });
});

describe('corpus split', () => {
  it('hashes with standard FNV-1a-32', () => {
    expect(fnv1a32(utf8.encode(''))).toBe(0x811c9dc5);
    expect(fnv1a32(utf8.encode('a'))).toBe(0xe40c292c);
    expect(fnv1a32(utf8.encode('foobar'))).toBe(0xbf9cf968);
  });

  it('holds out exactly the chapters the rule picks, deterministically, keeping the layout', () => {
    const headings = Array.from({ length: 150 }, (_, i) => `Psalm ${i + 1}`);
    const corpus =
      headings.map((heading) => `${heading}\nverse one of ${heading}.\nverse two.`).join('\n\n') + '\n';
    const split = splitCorpus(corpus);
    expect(splitCorpus(corpus)).toEqual(split);
    const expected = headings.filter((heading) => fnv1a32(utf8.encode(`glassbox-val:${heading}`)) % 100 < 5);
    expect(split.valChapters.map((chapter) => chapter.heading)).toEqual(expected);
    expect(expected).toContain('Psalm 1'); // the rule's first pick in Psalms (also listed in corpus/README.md)
    expect(split.trainChapters.length + split.valChapters.length).toBe(150);
    expect(parseChapters(split.train).concat(parseChapters(split.val)).length).toBe(150);
    expect(split.val.startsWith('Psalm 1\nverse one of Psalm 1.\nverse two.\n\n')).toBe(true);
    expect(split.train.endsWith('verse two.\n')).toBe(true);
  });

  const gzPath = join(repoRoot, 'corpus', 'web.txt.gz');
  const readmePath = join(repoRoot, 'corpus', 'README.md');
  it.skipIf(!existsSync(gzPath))(
    'matches the text hash and validation chapters listed in corpus/README.md',
    () => {
      const bytes = gunzipSync(readFileSync(gzPath));
      const readme = readFileSync(readmePath, 'utf8');
      expect(readme).toContain(createHash('sha256').update(bytes).digest('hex'));
      const listed = /<!-- validation-chapters -->\s*([\s\S]*?)\s*<!-- \/validation-chapters -->/.exec(
        readme,
      )![1];
      const split = splitCorpus(bytes.toString('utf8'));
      expect(split.valChapters.map((chapter) => chapter.heading)).toEqual(listed.split(/,\s*/));
      expect(split.valChapters.every((chapter) => isValidationChapter(chapter.heading))).toBe(true);
    },
  );
});

// ---------------------------------------------------------------------------------------------------------
// A deliberately naive trainer: recount every pair of every word at every step. Slow but obviously right.

function mergeAll(tokens: number[], left: number, right: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === left && tokens[i + 1] === right) {
      out.push(merged);
      i++;
    } else out.push(tokens[i]);
  }
  return out;
}

function referenceTrain(text: string, vocabSize: number): TrainedMerge[] {
  const frequency = new Map<string, number>();
  for (const piece of pretokenize(text)) frequency.set(piece, (frequency.get(piece) ?? 0) + 1);
  let words = [...frequency].map(([piece, count]) => ({ tokens: Array.from(utf8.encode(piece)), count }));
  const merges: TrainedMerge[] = [];
  for (let id = FIRST_MERGE_ID; id < vocabSize; id++) {
    const counts = new Map<string, number>();
    for (const { tokens, count } of words) {
      for (let i = 0; i + 1 < tokens.length; i++) {
        const key = `${tokens[i]},${tokens[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + count);
      }
    }
    let best: [number, number, number] | undefined;
    for (const [key, count] of counts) {
      const [left, right] = key.split(',').map(Number);
      if (
        !best ||
        count > best[2] ||
        (count === best[2] && (left < best[0] || (left === best[0] && right < best[1])))
      ) {
        best = [left, right, count];
      }
    }
    if (!best) break;
    const [left, right, count] = best;
    merges.push({ left, right, merged: id, count });
    words = words.map((word) => ({ ...word, tokens: mergeAll(word.tokens, left, right, id) }));
  }
  return merges;
}
