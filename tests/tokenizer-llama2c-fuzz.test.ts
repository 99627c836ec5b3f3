/**
 * Fuzzing the llama2.c tokenizer reader with thousands of broken copies of tok512.bin: truncated at every
 * byte, bytes flipped, lengths, scores and max_token_length overwritten with extreme values, pieces damaged,
 * wrong vocab sizes, garbage. Each copy must either load (and then encode and decode without throwing) or be
 * refused with a FormatError; never a RangeError, a hang or a huge allocation. All inputs are seeded.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/formats/errors.ts';
import {
  StreamingDecoder,
  decode,
  decodePiece,
  encode,
  parseLlama2cTokenizer,
  pieceLabel,
} from '../src/tokenizers/llama2c.ts';
import type { Llama2cTokenizer } from '../src/tokenizers/llama2c.ts';
import { fromTokenizerJson, toTokenizerJson, trainBpe } from '../src/tokenizers/bpe.ts';
import { KNOWN_PATTERNS, PRETOKENIZE_PATTERN, pretokenize } from '../src/tokenizers/pretokenize.ts';
import { TOK512, describeShared } from './shared.ts';
import { seededRandom } from './helpers.ts';

interface Variant {
  name: string;
  bytes: Uint8Array;
  vocabSize?: number;
  /** The pieces are an untouched prefix of tok512's, so text must survive encode → decode. */
  intactPieces?: boolean;
}

const TEXTS = [
  '',
  'Once upon a time',
  'Hello, world! 你好 😀👨‍👩‍👧',
  '  two  spaces\n\ttab',
  '\0\u0085\ufeff<0x41>',
];

const EXTREME_INT32 = [0, -1, 1, 2, 5, 6, 7, 8, 255, 1024, 1025, 0xffff, 0x7fffffff, -0x80000000];
const EXTREME_FLOAT32 = [NaN, Infinity, -Infinity, -0, 0, 3.4e38, -3.4e38, 1e-45, -1e10, -9.99e9, 1e10];
const ODD_VOCAB_SIZES = [
  0,
  -1,
  1,
  258,
  259,
  400,
  411,
  511,
  513,
  1e6,
  2 ** 31 - 1,
  2 ** 53,
  NaN,
  Infinity,
  1.5,
];

/** Where each entry of the original file starts (the score), plus the end of the file. */
function entryOffsets(file: Uint8Array): number[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const offsets: number[] = [];
  for (let offset = 4; offset < file.length; offset += 8 + view.getInt32(offset + 4, true))
    offsets.push(offset);
  offsets.push(file.length);
  return offsets;
}

const withInt32 = (file: Uint8Array, offset: number, value: number) => {
  const copy = file.slice();
  new DataView(copy.buffer).setInt32(offset, value, true);
  return copy;
};
const withFloat32 = (file: Uint8Array, offset: number, value: number) => {
  const copy = file.slice();
  new DataView(copy.buffer).setFloat32(offset, value, true);
  return copy;
};

function* truncations(file: Uint8Array): Generator<Variant> {
  for (let length = 0; length <= file.length; length++) {
    yield { name: `first ${length} bytes`, bytes: file.subarray(0, length), intactPieces: true };
  }
  for (const end of entryOffsets(file)) {
    yield { name: `first ${end} bytes, vocab_size 512`, bytes: file.subarray(0, end), vocabSize: 512 };
  }
}

function* fieldOverwrites(file: Uint8Array, random: () => number): Generator<Variant> {
  const entries = entryOffsets(file).slice(0, -1);
  const someEntries = [0, 1, 2, 3, 258, 259, 410, entries.length - 1];
  for (let i = 0; i < 12; i++) someEntries.push(Math.floor(random() * entries.length));
  for (const value of EXTREME_INT32) {
    yield { name: `max_token_length ${value}`, bytes: withInt32(file, 0, value) };
    for (const entry of someEntries) {
      yield { name: `entry ${entry} length ${value}`, bytes: withInt32(file, entries[entry] + 4, value) };
    }
  }
  for (const value of EXTREME_FLOAT32) {
    for (const entry of someEntries) {
      yield { name: `entry ${entry} score ${value}`, bytes: withFloat32(file, entries[entry], value) };
    }
  }
  for (const value of [0x00, 0x20, 0x3c, 0x80, 0xc3, 0xff]) {
    for (const entry of someEntries) {
      const copy = file.slice();
      copy[entries[entry] + 8] = value;
      yield { name: `entry ${entry} first piece byte 0x${value.toString(16)}`, bytes: copy };
    }
  }
}

function* byteFlips(file: Uint8Array, random: () => number, count: number): Generator<Variant> {
  for (let i = 0; i < count; i++) {
    const copy = file.slice();
    const flips = 1 + Math.floor(random() * 8);
    for (let j = 0; j < flips; j++) {
      const at = Math.floor(random() * copy.length);
      copy[at] = random() < 0.5 ? copy[at] ^ (1 << Math.floor(random() * 8)) : Math.floor(random() * 256);
    }
    yield { name: `byte flips #${i}`, bytes: copy, vocabSize: random() < 0.5 ? 512 : undefined };
  }
}

/** Flips inside the merge pieces and scores only (ids 259 and up), which mostly load: damaged vocabularies. */
function* mergePieceFlips(file: Uint8Array, random: () => number, count: number): Generator<Variant> {
  const entries = entryOffsets(file);
  const firstMergeEntry = 259;
  for (let i = 0; i < count; i++) {
    const copy = file.slice();
    for (let j = 1 + Math.floor(random() * 4); j > 0; j--) {
      const entry = firstMergeEntry + Math.floor(random() * (entries.length - 1 - firstMergeEntry));
      const pieceStart = entries[entry] + 8;
      const field = random() < 0.8 ? 'piece' : 'score';
      if (field === 'piece') {
        const at = pieceStart + Math.floor(random() * (entries[entry + 1] - pieceStart));
        copy[at] = Math.floor(random() * 256);
      } else {
        copy[entries[entry] + Math.floor(random() * 4)] = Math.floor(random() * 256);
      }
    }
    yield { name: `merge piece flips #${i}`, bytes: copy, vocabSize: 512 };
  }
}

function* oddShapes(file: Uint8Array, random: () => number): Generator<Variant> {
  for (const vocabSize of ODD_VOCAB_SIZES) yield { name: `vocab_size ${vocabSize}`, bytes: file, vocabSize };
  const entries = entryOffsets(file);
  const padded = new Uint8Array(file.length + 13);
  padded.set(file);
  yield { name: '13 bytes appended', bytes: padded };
  yield { name: '13 bytes appended, vocab_size 512', bytes: padded, vocabSize: 512 };
  // the whole file again after itself: the second header reads as an entry
  const twice = new Uint8Array(file.length * 2);
  twice.set(file);
  twice.set(file, file.length);
  yield { name: 'file twice', bytes: twice };
  // an entry cut out of the middle: lengths and pieces no longer line up with the ids
  for (const entry of [1, 3, 200, 300, 410]) {
    const cut = new Uint8Array([...file.subarray(0, entries[entry]), ...file.subarray(entries[entry + 1])]);
    yield { name: `entry ${entry} removed`, bytes: cut };
  }
  for (let i = 0; i < 100; i++) {
    const length = Math.floor(random() * 64);
    yield { name: `garbage #${i}`, bytes: Uint8Array.from({ length }, () => Math.floor(random() * 256)) };
  }
  const header = (maxTokenLength: number) => withInt32(new Uint8Array(4), 0, maxTokenLength);
  yield { name: 'header only', bytes: header(7) };
  yield {
    name: 'huge garbage',
    bytes: Uint8Array.from({ length: 200_000 }, () => Math.floor(random() * 256)),
  };
  const manyOneBytePieces = new Uint8Array(4 + 9 * 20_000);
  new DataView(manyOneBytePieces.buffer).setInt32(0, 1, true);
  for (let i = 0; i < 20_000; i++) {
    new DataView(manyOneBytePieces.buffer).setInt32(4 + 9 * i + 4, 1, true);
    manyOneBytePieces[4 + 9 * i + 8] = 0x61;
  }
  yield { name: '20,000 one-byte pieces', bytes: manyOneBytePieces };
}

/** Uses a tokenizer that loaded the way a page would: nothing may throw. */
function exercise(tok: Llama2cTokenizer, intactPieces: boolean): void {
  for (const text of TEXTS) {
    for (const bos of [true, false]) {
      const ids = encode(tok, text, { bos, eos: !bos });
      expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
      const decoded = decode(tok, ids);
      if (intactPieces) expect(decoded).toBe(text);
      const stream = new StreamingDecoder(tok);
      expect(ids.map((id) => stream.push(id)).join('') + stream.finish()).toBe(decoded);
    }
  }
  for (let id = 0; id < tok.vocabSize; id++) {
    pieceLabel(tok, id);
    decodePiece(tok, tok.bosId, id);
  }
}

interface Tally {
  variants: number;
  loaded: number;
  refused: number;
  slowestMs: number;
  slowest: string;
  /** Variants that threw something other than a FormatError, with what they threw. */
  crashes: string[];
}

function fuzz(variants: Iterable<Variant>): Tally {
  const tally: Tally = { variants: 0, loaded: 0, refused: 0, slowestMs: 0, slowest: '', crashes: [] };
  for (const variant of variants) {
    tally.variants++;
    const start = performance.now();
    try {
      const tok = parseLlama2cTokenizer(variant.bytes, 'fuzzed.bin', variant.vocabSize);
      tally.loaded++;
      exercise(tok, variant.intactPieces ?? false);
    } catch (error) {
      if (error instanceof FormatError && error.message.startsWith('fuzzed.bin: ')) tally.refused++;
      else tally.crashes.push(`${variant.name}: ${String(error)}`);
    }
    const milliseconds = performance.now() - start;
    if (milliseconds > tally.slowestMs) [tally.slowestMs, tally.slowest] = [milliseconds, variant.name];
  }
  return tally;
}

function report(family: string, tally: Tally): void {
  console.log(
    `${family}: ${tally.variants} variants, ${tally.loaded} loaded, ${tally.refused} refused; ` +
      `slowest ${tally.slowestMs.toFixed(1)} ms (${tally.slowest})`,
  );
  expect(tally.crashes.slice(0, 10)).toEqual([]);
  expect(tally.loaded + tally.refused).toBe(tally.variants);
  expect(tally.slowestMs).toBeLessThan(1000); // a safety net against hangs, not a benchmark
}

describeShared(
  'llama2.c tokenizer: fuzzed copies of tok512.bin load or are refused with a FormatError',
  () => {
    const file = () => new Uint8Array(readFileSync(TOK512));

    it('truncated at every byte', () => {
      const tally = fuzz(truncations(file()));
      report('truncations', tally);
      expect(tally.variants).toBeGreaterThan(6000);
      // a cut at an entry boundary past " " (id 410) is a smaller, valid vocabulary
      expect(tally.loaded).toBeGreaterThan(90);
    });

    it('with lengths, scores, max_token_length and piece bytes overwritten by extreme values', () => {
      const tally = fuzz(fieldOverwrites(file(), seededRandom(11)));
      report('field overwrites', tally);
      expect(tally.variants).toBeGreaterThan(500);
      expect(tally.loaded).toBeGreaterThan(0);
    });

    it('with random bytes flipped', () => {
      const tally = fuzz(byteFlips(file(), seededRandom(12), 1500));
      report('byte flips', tally);
      expect(tally.loaded).toBeGreaterThan(0);
      expect(tally.refused).toBeGreaterThan(0);
    });

    it('with the merge pieces and their scores damaged', () => {
      const tally = fuzz(mergePieceFlips(file(), seededRandom(14), 500));
      report('merge piece flips', tally);
      expect(tally.loaded).toBeGreaterThan(250);
    });

    it('with wrong vocab sizes, extra bytes, missing entries and garbage', () => {
      const tally = fuzz(oddShapes(file(), seededRandom(13)));
      report('odd shapes', tally);
      expect(tally.refused).toBeGreaterThan(100);
    });
  },
);

describe('fuzz: pre-tokenizer patterns in tokenizer.json can never hang the program', () => {
  const trained = trainBpe('the cat and the hat, 12345 times.\n'.repeat(20), { vocabSize: 270 });
  const withPattern = (pattern: string) => {
    const document = JSON.parse(toTokenizerJson(trained.tokenizer));
    document.pre_tokenizer.pretokenizers[0].pattern.Regex = pattern;
    return JSON.stringify(document);
  };
  // Catastrophic backtracking (the case first), ReDoS classics, and near-misses of real patterns.
  const pathological = [
    '(a|a)+$',
    '(a+)+$',
    '(\\s*)*x',
    '(.*a){20}',
    '([a-z]+)*=',
    '(\\p{L}|\\p{Ll})+!',
    PRETOKENIZE_PATTERN + '|(a|a)+$',
    PRETOKENIZE_PATTERN.replace('\\p{L}+', '(\\p{L}+)+'),
  ];
  for (const pattern of pathological) {
    it(`${JSON.stringify(pattern.slice(0, 40))} is refused at load, naming the file, at once`, () => {
      const start = performance.now();
      expect(() => fromTokenizerJson(withPattern(pattern), 'evil.json')).toThrow(FormatError);
      expect(() => fromTokenizerJson(withPattern(pattern), 'evil.json')).toThrow(
        /^evil\.json: pre_tokenizer regex .* is not one this program knows to be safe/,
      );
      expect(performance.now() - start).toBeLessThan(200);
    });
  }

  const adversarial = [
    'a'.repeat(50_000) + '!',
    ' '.repeat(50_000) + 'x',
    ' \n'.repeat(25_000) + 'x',
    "'".repeat(50_000) + 's',
    '1'.repeat(50_000) + 'a',
    'Aa'.repeat(25_000) + "'",
    '中'.repeat(50_000) + '\n',
    '!'.repeat(50_000) + '\r',
  ];
  for (const [pattern, name] of KNOWN_PATTERNS) {
    it(`${name}: loads, and splits 50,000-character adversarial texts quickly and losslessly`, () => {
      const tokenizer = fromTokenizerJson(withPattern(pattern), 'known.json');
      for (const text of adversarial) {
        const start = performance.now();
        const pieces = pretokenize(text, tokenizer.pattern);
        expect(pieces.join('')).toBe(text);
        expect(performance.now() - start, `${name} on ${JSON.stringify(text.slice(0, 4))}…`).toBeLessThan(
          500,
        );
      }
    });
  }
});
