/**
 * The llama2.c tokenizer against llama2.c itself: the ids run.c produced for tok512, the vocabulary it
 * decoded, a line-by-line transcription of run.c's `encode` (the quadratic loop) on many texts, and
 * hand-built vocabularies that pin down each rule of run.c (ties, the -1e10 floor, UTF-8 grouping).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { FormatError } from '../src/formats/errors.ts';
import {
  StreamingDecoder,
  llama2cTokenizer,
  decode,
  decodePiece,
  encode,
  parseLlama2cTokenizer,
  pieceLabel,
} from '../src/tokenizers/llama2c.ts';
import type { Llama2cTokenizer } from '../src/tokenizers/llama2c.ts';
import { ORACLE, TOK512, describeShared, readOracleJson } from './shared.ts';
import { seededRandom } from './helpers.ts';

const utf8 = (text: string) => new TextEncoder().encode(text);
const fromHex = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');
const BYTE = (byte: number) => byte + 3;

/**
 * run.c's `encode`, transcribed statement by statement (including its O(n²) merge loop and its float32
 * best_score = -1e10 start), over the raw pieces and scores. The fast encoder must agree with it exactly.
 */
function encodeLikeRunC(tok: Llama2cTokenizer, bytes: Uint8Array, bos: boolean, eos: boolean): number[] {
  const vocab = tok.pieces.map(latin1);
  const sortedVocab = new Map<string, number>();
  vocab.forEach((piece, id) => {
    if (!sortedVocab.has(piece)) sortedVocab.set(piece, id);
  });
  const strLookup = (str: string) => sortedVocab.get(str) ?? -1;

  const tokens: number[] = [];
  if (bos) tokens.push(1);
  if (bytes.length > 0) tokens.push(strLookup(' '));
  let strBuffer = '';
  for (let c = 0; c < bytes.length; c++) {
    if ((bytes[c] & 0xc0) !== 0x80) strBuffer = '';
    strBuffer += String.fromCharCode(bytes[c]);
    if (c + 1 < bytes.length && (bytes[c + 1] & 0xc0) === 0x80 && strBuffer.length < 4) continue;
    const id = strLookup(strBuffer);
    if (id !== -1) tokens.push(id);
    else for (let i = 0; i < strBuffer.length; i++) tokens.push(strBuffer.charCodeAt(i) + 3);
    strBuffer = '';
  }
  while (true) {
    let bestScore = Math.fround(-1e10);
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = strLookup(vocab[tokens[i]] + vocab[tokens[i + 1]]);
      if (id !== -1 && tok.scores[id] > bestScore) {
        bestScore = tok.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens[bestIdx] = bestId;
    tokens.splice(bestIdx + 1, 1);
  }
  if (eos) tokens.push(2);
  return tokens;
}

/** Code point ranges to draw random text from: a bit of every script and trap we could think of. */
const CODE_POINT_RANGES: [number, number][] = [
  [0x20, 0x7e], // printable ASCII
  [0x20, 0x20], // spaces, often, so there are runs of them
  [0x00, 0x1f], // control characters, NUL included
  [0x7f, 0xff], // DEL, C1 controls, Latin-1
  [0x100, 0x24f], // Latin Extended
  [0x300, 0x36f], // combining marks
  [0x590, 0x6ff], // Hebrew, Arabic (right to left)
  [0x200b, 0x200f], // zero-width space, ZWNJ, ZWJ, LRM, RLM
  [0x3040, 0x30ff], // Hiragana, Katakana
  [0x4e00, 0x9fff], // CJK ideographs
  [0xac00, 0xd7a3], // Hangul
  [0xe000, 0xf8ff], // private use
  [0xfe00, 0xfe0f], // variation selectors
  [0xfeff, 0xffff], // BOM, specials, non-characters
  [0x1f1e6, 0x1f1ff], // regional indicators (flags come in pairs)
  [0x1f300, 0x1faff], // emoji
  [0x10000, 0x10ffff], // anything astral
];

function randomText(random: () => number, length: number): string {
  let text = '';
  for (let i = 0; i < length; i++) {
    const [low, high] = CODE_POINT_RANGES[Math.floor(random() * CODE_POINT_RANGES.length)];
    text += String.fromCodePoint(low + Math.floor(random() * (high - low + 1)));
  }
  return text;
}

/** Texts that have broken tokenizers before. None has a lone surrogate (UTF-8 cannot carry one). */
const TRICKY_TEXTS = [
  '',
  ' ',
  '  ',
  '   ',
  'a',
  ' a',
  'a ',
  '  two leading spaces',
  'trailing spaces   ',
  'many    spaces   between',
  '\n',
  '\n\nnewlines\nand\r\nCRLF\n',
  '\t tab',
  '\0',
  'NUL\0in the middle',
  '\u0001\u0002\u001f\u007f control',
  'Once upon a time',
  'Hello, world! 你好',
  '日本語のテキスト',
  '한국어',
  'שלום עולם',
  'مرحبا بالعالم',
  'e\u0301 combining, n\u0303, a\u0300\u0301\u0302',
  '😀',
  '👨‍👩‍👧‍👦 family (ZWJ)',
  '🏳️‍🌈 flag, 🇺🇦🇯🇵 regional indicators',
  '👍🏽 skin tone',
  '\ufeffstarts with a byte-order mark',
  '\u00a0nbsp and \u200a hair space',
  'é ñ “quotes” — dash …',
  '<0x41> looks like a byte token',
  '<s> and </s> and <unk> as text',
  'x'.repeat(3000),
  'supercalifragilisticexpialidocious'.repeat(40),
  '\u{10ffff}\u{10000}\uffff\ufffe',
];

describeShared('llama2.c tokenizer: tok512 against llama2.c', () => {
  let tokFile: Uint8Array;
  let tok: Llama2cTokenizer;
  beforeAll(() => {
    tokFile = new Uint8Array(readFileSync(TOK512));
    tok = parseLlama2cTokenizer(tokFile, 'tok512.bin', 512);
  });

  it('reads the same vocabulary whether or not vocab_size is given', () => {
    const free = parseLlama2cTokenizer(tokFile, 'tok512.bin');
    expect(free.vocabSize).toBe(512);
    expect(free.pieces).toEqual(tok.pieces);
    expect(free.scores).toEqual(tok.scores);
    expect([tok.unkId, tok.bosId, tok.eosId]).toEqual([0, 1, 2]);
    expect(latin1(tok.pieces[tok.dummyPrefixId])).toBe(' ');
  });

  it('has every piece and score of the decoded vocabulary', () => {
    const oracle = readOracleJson<{
      max_token_length: number;
      vocab: { id: number; piece: string; score: number }[];
    }>('tok512.vocab.json');
    expect(tok.maxTokenLength).toBe(oracle.max_token_length);
    expect(oracle.vocab).toHaveLength(tok.vocabSize);
    for (const { id, piece, score } of oracle.vocab) {
      expect(tok.pieces[id], `piece ${id}`).toEqual(utf8(piece));
      expect(tok.scores[id], `score ${id}`).toBe(Math.fround(score));
    }
  });

  it("encodes every test vector exactly as llama2.c's run (BOS, no EOS)", () => {
    const lines = readFileSync(join(ORACLE, 'tokenizer_tests_tok512.jsonl'), 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const { text_hex, ids } = JSON.parse(line) as { text_hex: string; ids: number[] };
      const bytes = fromHex(text_hex);
      expect(encode(tok, bytes, { bos: true, eos: false }), text_hex).toEqual(ids);
      expect(encode(tok, new TextDecoder().decode(bytes), { bos: true, eos: false }), text_hex).toEqual(ids);
      expect(decode(tok, ids)).toBe(new TextDecoder().decode(bytes));
    }
  });

  it('agrees with the transcription of run.c on tricky and on seeded random texts', () => {
    const random = seededRandom(2024);
    const texts = [...TRICKY_TEXTS.filter((text) => text.length < 500)];
    for (let i = 0; i < 300; i++) texts.push(randomText(random, 1 + Math.floor(random() * 40)));
    for (let i = 0; i < 100; i++) {
      // English-like text, where most merges happen
      const words = Array.from({ length: 1 + Math.floor(random() * 30) }, () =>
        new TextDecoder().decode(tok.pieces[259 + Math.floor(random() * 253)]),
      );
      texts.push(words.join(random() < 0.5 ? '' : ' '));
    }
    for (const text of texts) {
      for (const bos of [true, false]) {
        const eos = !bos;
        expect(encode(tok, text, { bos, eos }), JSON.stringify(text)).toEqual(
          encodeLikeRunC(tok, utf8(text), bos, eos),
        );
      }
    }
  });

  it('agrees with run.c on invalid UTF-8 and random bytes', () => {
    const random = seededRandom(7);
    const cases = [
      [0x80],
      [0x61, 0x80], // "a" + a stray continuation byte: one 2-byte group, so "a" falls back to a byte token
      [0xc3, 0xa9], // "é", a piece of tok512
      [0xc3, 0xa9, 0xa9], // "é" + a stray continuation byte: the 3-byte group is not a piece
      [0xe4, 0xbd],
      [0x80, 0x80, 0x80, 0x80, 0x80, 0x80],
      [0xf8, 0x88, 0x80, 0x80, 0x80],
      [0xff, 0xfe, 0x20, 0x74],
    ].map((bytes) => Uint8Array.from(bytes));
    for (let i = 0; i < 200; i++) {
      cases.push(Uint8Array.from({ length: Math.floor(random() * 24) }, () => Math.floor(random() * 256)));
    }
    for (const bytes of cases) {
      expect(encode(tok, bytes, { bos: true, eos: false }), latin1(bytes)).toEqual(
        encodeLikeRunC(tok, bytes, true, false),
      );
    }
    const space = tok.dummyPrefixId;
    const e = tok.idByPiece.get(latin1(utf8('é')))!;
    expect(encode(tok, Uint8Array.of(0x61, 0x80), { bos: false, eos: false })).toEqual([
      space,
      BYTE(0x61),
      BYTE(0x80),
    ]);
    expect(encode(tok, Uint8Array.of(0xc3, 0xa9, 0x61), { bos: false, eos: false })).toEqual([
      space,
      e,
      tok.idByPiece.get('a'),
    ]);
    expect(encode(tok, Uint8Array.of(0xc3, 0xa9, 0xa9), { bos: false, eos: false })).toEqual([
      space,
      BYTE(0xc3),
      BYTE(0xa9),
      BYTE(0xa9),
    ]);
  });

  it('agrees with run.c on a 2 kB story (hundreds of merges)', () => {
    const story = readFileSync(join(ORACLE, 'runc', 'greedy_noprompt_n256.txt'), 'utf8');
    const text = (story + story + story + story).slice(0, 2000);
    expect(encode(tok, text, { bos: true, eos: true })).toEqual(encodeLikeRunC(tok, utf8(text), true, true));
  });

  it('adds the dummy prefix only to non-empty text, BOS first and EOS last', () => {
    const space = tok.dummyPrefixId;
    expect(encode(tok, '', { bos: false, eos: false })).toEqual([]);
    expect(encode(tok, '', { bos: true, eos: true })).toEqual([1, 2]);
    // " Once" is one piece: the dummy prefix merged into the first word
    expect(encode(tok, 'Once', { bos: true, eos: true })).toEqual([1, tok.idByPiece.get(' Once'), 2]);
    // A text that already starts with a space still gets the dummy prefix: two spaces in front
    expect(encode(tok, ' Once', { bos: false, eos: false })).toEqual([space, tok.idByPiece.get(' Once')]);
    // NUL is an ordinary byte here (run.c's C strings would end at it)
    expect(encode(tok, '\0', { bos: false, eos: false })).toEqual([space, BYTE(0)]);
  });

  it('decodes each piece as run.c does', () => {
    const once = tok.idByPiece.get(' Once')!;
    expect(decodePiece(tok, 1, once)).toEqual(utf8('Once')); // the space after BOS is dropped
    expect(decodePiece(tok, 2, once)).toEqual(utf8(' Once')); // ... but after anything else it stays
    expect(decodePiece(tok, 1, tok.dummyPrefixId)).toEqual(new Uint8Array(0));
    expect(decodePiece(tok, 400, BYTE(0xe4))).toEqual(Uint8Array.of(0xe4)); // a byte token is its byte
    expect(decodePiece(tok, 1, BYTE(0x20))).toEqual(Uint8Array.of(0x20)); // "<0x20>" has no leading space
    expect(decodePiece(tok, 400, BYTE(0))).toEqual(Uint8Array.of(0));
    expect(decodePiece(tok, 400, 1)).toEqual(utf8('\n<s>\n'));
    expect(decodePiece(tok, 400, 0)).toEqual(utf8('<unk>'));
    // the result is a copy: changing it does not change the vocabulary
    decodePiece(tok, 400, once).fill(0);
    expect(tok.pieces[once]).toEqual(utf8(' Once'));
    expect(() => decodePiece(tok, 1, 512)).toThrow(RangeError);
    expect(() => decodePiece(tok, 1, -1)).toThrow(RangeError);
  });

  it('decodes ids to text: BOS and EOS add nothing, byte tokens join into characters, bad UTF-8 is U+FFFD', () => {
    const nihao = [BYTE(0xe4), BYTE(0xbd), BYTE(0xa0), BYTE(0xe5), BYTE(0xa5), BYTE(0xbd)];
    expect(decode(tok, [1, tok.dummyPrefixId, ...nihao, 2])).toBe('你好');
    expect(decode(tok, [BYTE(0xe4), BYTE(0xbd)])).toBe('\ufffd');
    expect(decode(tok, [BYTE(0xe4), BYTE(0x41)])).toBe('\ufffdA');
    expect(decode(tok, [BYTE(0xff)])).toBe('\ufffd');
    const once = tok.idByPiece.get(' Once')!;
    expect(decode(tok, [once])).toBe('Once'); // the start of a text, BOS or not
    expect(decode(tok, [once], 2)).toBe(' Once'); // a continuation
    // BOS in the middle drops the next space again; after EOS the space stays
    expect(decode(tok, [once, 1, once, 2, once])).toBe('OnceOnce Once');
    expect(decode(tok, [])).toBe('');
  });

  it('round-trips tricky and seeded random Unicode text, with and without BOS and EOS', () => {
    const random = seededRandom(99);
    const texts = [...TRICKY_TEXTS];
    for (let i = 0; i < 500; i++) texts.push(randomText(random, Math.floor(random() * 60)));
    for (const text of texts) {
      for (const [bos, eos] of [
        [true, false],
        [false, false],
        [true, true],
        [false, true],
      ]) {
        const ids = encode(tok, text, { bos, eos });
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
        expect(decode(tok, ids), JSON.stringify(text)).toBe(text);
      }
    }
  });

  it('streams text as generation goes: a character appears when its last byte token arrives', () => {
    const stream = new StreamingDecoder(tok);
    const grin = [...utf8('😀')].map(BYTE);
    expect(stream.push(1)).toBe('');
    expect(stream.push(tok.idByPiece.get(' Once')!)).toBe('Once');
    expect(stream.push(tok.dummyPrefixId)).toBe(' ');
    expect(grin.map((id) => stream.push(id))).toEqual(['', '', '', '😀']);
    expect(stream.push(BYTE(0xe4))).toBe('');
    expect(stream.push(2)).toBe('');
    expect(stream.finish()).toBe('\ufffd'); // generation ended in the middle of a character
  });

  it('streams the same text as decode, token by token', () => {
    const random = seededRandom(5);
    for (let i = 0; i < 100; i++) {
      const text = randomText(random, 30);
      const ids = encode(tok, text, { bos: true, eos: i % 2 === 0 });
      const stream = new StreamingDecoder(tok, 1);
      expect(ids.map((id) => stream.push(id)).join('') + stream.finish()).toBe(text);
    }
    const continuation = new StreamingDecoder(tok, 400);
    expect(continuation.push(tok.idByPiece.get(' Once')!)).toBe(' Once');
  });

  it('labels pieces for figures', () => {
    expect(pieceLabel(tok, 0)).toBe('<unk>');
    expect(pieceLabel(tok, 1)).toBe('<s>');
    expect(pieceLabel(tok, 2)).toBe('</s>');
    expect(pieceLabel(tok, BYTE(0xe4))).toBe('<0xE4>');
    expect(pieceLabel(tok, BYTE(0x0a))).toBe('<0x0A>');
    expect(pieceLabel(tok, tok.idByPiece.get(' Once')!)).toBe(' Once');
    expect(pieceLabel(tok, tok.dummyPrefixId)).toBe(' ');
    expect(pieceLabel(tok, tok.idByPiece.get(latin1(utf8('é')))!)).toBe('é');
  });

  it('serves the engine through the Tokenizer interface', () => {
    const tokenizer = llama2cTokenizer(tok);
    expect(tokenizer.kind).toBe('llama2.c tokenizer (512 pieces)');
    expect([tokenizer.vocabSize, tokenizer.bosId, tokenizer.eosId]).toEqual([512, 1, 2]);
    const ids = tokenizer.encode('Once upon a time', { bos: true, eos: false });
    expect(ids).toEqual([1, 403, 407, 261, 378]);
    expect(tokenizer.decode(ids)).toBe('Once upon a time');
    expect(tokenizer.decodePiece(1, 403)).toEqual(utf8('Once'));
    expect(tokenizer.pieceLabel(403)).toBe(' Once');
  });

  it('encodes 100 kB of text in well under a second (run.c would take minutes)', () => {
    const story = readFileSync(join(ORACLE, 'runc', 'sample_t1_p0.9_s133742_n256.txt'), 'utf8');
    const english = story.repeat(Math.ceil(100_000 / story.length)).slice(0, 100_000);
    const mixed = randomText(seededRandom(1), 40_000);
    for (const [name, text] of [
      ['English', english],
      ['mixed Unicode', mixed],
    ]) {
      const bytes = utf8(text).length;
      const start = performance.now();
      const ids = encode(tok, text, { bos: true, eos: false });
      const milliseconds = performance.now() - start;
      console.log(`encode: ${name}, ${bytes} bytes → ${ids.length} tokens in ${milliseconds.toFixed(0)} ms`);
      expect(decode(tok, ids)).toBe(text);
      expect(milliseconds).toBeLessThan(5000); // a safety net only; expect ~100 ms
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Hand-built vocabularies: one rule of run.c each

interface PieceSpec {
  piece: string | Uint8Array;
  score: number;
}

/** The pieces every llama2.c vocabulary starts with: <unk>, <s>, </s>, <0x00> … <0xFF>. */
const STANDARD_PIECES: PieceSpec[] = [
  { piece: '<unk>', score: 0 },
  { piece: '\n<s>\n', score: 0 },
  { piece: '\n</s>\n', score: 0 },
  ...Array.from({ length: 256 }, (_, byte) => ({
    piece: `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`,
    score: 0,
  })),
];

/** A tokenizer file in llama2.c's format: max_token_length, then score, length and bytes of each piece. */
function tokenizerFile(pieces: PieceSpec[], maxTokenLength = 16): Uint8Array {
  const encoded = pieces.map(({ piece }) => (typeof piece === 'string' ? utf8(piece) : piece));
  const bytes = new Uint8Array(4 + encoded.reduce((total, piece) => total + 8 + piece.length, 0));
  const view = new DataView(bytes.buffer);
  view.setInt32(0, maxTokenLength, true);
  let offset = 4;
  encoded.forEach((piece, i) => {
    view.setFloat32(offset, pieces[i].score, true);
    view.setInt32(offset + 4, piece.length, true);
    bytes.set(piece, offset + 8);
    offset += 8 + piece.length;
  });
  return bytes;
}

/** A tokenizer of the standard pieces, " ", and `extra`; returns it and a piece → id lookup. */
function handBuilt(extra: PieceSpec[]) {
  const pieces = [...STANDARD_PIECES, { piece: ' ', score: -100 }, ...extra];
  const tok = parseLlama2cTokenizer(tokenizerFile(pieces), 'hand-built.bin', pieces.length);
  const id = (piece: string) => {
    const found = tok.idByPiece.get(latin1(utf8(piece)));
    if (found === undefined) throw new Error(`no piece ${JSON.stringify(piece)}`);
    return found;
  };
  return { tok, id };
}

describe('llama2.c tokenizer: the rules of run.c, on hand-built vocabularies', () => {
  it('merges the best-scoring pair first, wherever it is', () => {
    const { tok, id } = handBuilt([
      { piece: 'a', score: -50 },
      { piece: 'b', score: -50 },
      { piece: 'c', score: -50 },
      { piece: 'ab', score: -5 },
      { piece: 'bc', score: -1 },
    ]);
    expect(encode(tok, 'abc', { bos: false, eos: false })).toEqual([id(' '), id('a'), id('bc')]);
  });

  it('on a tie, merges the leftmost pair (run.c keeps the first best)', () => {
    const { tok, id } = handBuilt([
      { piece: 'a', score: -50 },
      { piece: 'aa', score: -1 },
    ]);
    expect(encode(tok, 'aaa', { bos: false, eos: false })).toEqual([id(' '), id('aa'), id('a')]);
    expect(encode(tok, 'aaaaa', { bos: false, eos: false })).toEqual([id(' '), id('aa'), id('aa'), id('a')]);
    const tok2 = handBuilt([
      { piece: 'a', score: -50 },
      { piece: 'b', score: -50 },
      { piece: 'ab', score: -3 },
      { piece: 'ba', score: -3 },
    ]);
    expect(encode(tok2.tok, 'bab', { bos: false, eos: false })).toEqual([
      tok2.id(' '),
      tok2.id('ba'),
      tok2.id('b'),
    ]);
    expect(encode(tok2.tok, 'aba', { bos: false, eos: false })).toEqual([
      tok2.id(' '),
      tok2.id('ab'),
      tok2.id('a'),
    ]);
  });

  it('never makes a piece scored -1e10 or lower (run.c starts from best_score = -1e10 with a strict >)', () => {
    const { tok, id } = handBuilt([
      { piece: 'b', score: -50 },
      { piece: 'c', score: -50 },
      { piece: 'bb', score: -1e10 },
      { piece: 'cc', score: -9.99e9 },
    ]);
    expect(encode(tok, 'bb', { bos: false, eos: false })).toEqual([id(' '), id('b'), id('b')]);
    expect(encode(tok, 'cc', { bos: false, eos: false })).toEqual([id(' '), id('cc')]);
  });

  it('lets BOS take part in merges, as run.c does', () => {
    const { tok, id } = handBuilt([
      { piece: 'x', score: -50 },
      { piece: '\n<s>\n ', score: -1 },
    ]);
    expect(encode(tok, 'x', { bos: true, eos: true })).toEqual([id('\n<s>\n '), id('x'), 2]);
    expect(encode(tok, 'x', { bos: false, eos: false })).toEqual([id(' '), id('x')]);
  });

  it('groups a character as one byte and at most 3 continuation bytes', () => {
    const grin = utf8('😀'); // F0 9F 98 80
    const { tok, id } = handBuilt([{ piece: '😀', score: -50 }]);
    const encodeBytes = (bytes: number[]) => encode(tok, Uint8Array.from(bytes), { bos: false, eos: false });
    expect(encodeBytes([...grin])).toEqual([id(' '), id('😀')]);
    // a fifth continuation byte starts a group of its own, so the first four still make 😀
    expect(encodeBytes([...grin, 0x80])).toEqual([id(' '), id('😀'), BYTE(0x80)]);
    // a missing byte: the group is not a piece, so each byte is a byte token
    expect(encodeBytes([...grin.subarray(0, 3), 0x41])).toEqual([
      id(' '),
      BYTE(0xf0),
      BYTE(0x9f),
      BYTE(0x98),
      BYTE(0x41),
    ]);
    // a lead byte claims whatever continuation bytes follow, valid or not
    expect(encodeBytes([0x41, ...grin.subarray(1)])).toEqual([
      id(' '),
      BYTE(0x41),
      BYTE(0x9f),
      BYTE(0x98),
      BYTE(0x80),
    ]);
  });

  it('labels control characters and partial characters byte by byte', () => {
    const { tok, id } = handBuilt([
      { piece: 'a\tb', score: -50 },
      { piece: Uint8Array.of(0x61, 0xe4), score: -50 },
      { piece: '\u0085', score: -50 },
    ]);
    expect(pieceLabel(tok, id('a\tb'))).toBe('a<0x09>b');
    expect(pieceLabel(tok, tok.idByPiece.get('a\u00e4')!)).toBe('<0x61><0xE4>');
    expect(pieceLabel(tok, id('\u0085'))).toBe('<0xC2><0x85>');
  });

  it('copies the pieces out of the file, even from a Node Buffer (whose slice is a view)', () => {
    const file = Buffer.from(tokenizerFile([...STANDARD_PIECES, { piece: ' ', score: -1 }]));
    const tok = parseLlama2cTokenizer(file, 'buffer.bin');
    file.fill(0x7a);
    expect(tok.pieces[259]).toEqual(utf8(' '));
    decodePiece(tok, 2, 259).fill(0x7a);
    expect(tok.pieces[259]).toEqual(utf8(' '));
  });

  it('reads from a view into a larger buffer', () => {
    const file = tokenizerFile([...STANDARD_PIECES, { piece: ' ', score: -1 }]);
    const padded = new Uint8Array(file.length + 10);
    padded.set(file, 7);
    const tok = parseLlama2cTokenizer(padded.subarray(7, 7 + file.length), 'view.bin');
    expect(tok.vocabSize).toBe(260);
    expect(encode(tok, 'hi', { bos: true, eos: false })).toEqual([1, 259, BYTE(0x68), BYTE(0x69)]);
  });
});

describe('llama2.c tokenizer: bad files say what is wrong', () => {
  const good = [...STANDARD_PIECES, { piece: ' ', score: -1 }];
  const goodFile = tokenizerFile(good);
  const withInt32 = (bytes: Uint8Array, offset: number, value: number) => {
    const copy = bytes.slice();
    new DataView(copy.buffer).setInt32(offset, value, true);
    return copy;
  };
  const withFloat32 = (bytes: Uint8Array, offset: number, value: number) => {
    const copy = bytes.slice();
    new DataView(copy.buffer).setFloat32(offset, value, true);
    return copy;
  };
  const fails = (bytes: Uint8Array, message: RegExp, vocabSize?: number) => {
    let error: unknown;
    try {
      parseLlama2cTokenizer(bytes, 'bad.bin', vocabSize);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(FormatError);
    expect((error as Error).message).toMatch(/^bad\.bin: /);
    expect((error as Error).message).toMatch(message);
  };
  const entryOffset = (index: number) =>
    4 + good.slice(0, index).reduce((total, { piece }) => total + 8 + utf8(piece as string).length, 0);

  it('accepts the good file', () => {
    expect(parseLlama2cTokenizer(goodFile, 'good.bin', good.length).vocabSize).toBe(260);
  });

  it('refuses a bad header', () => {
    fails(new Uint8Array(0), /0 bytes; it must start with an int32 max_token_length/);
    fails(Uint8Array.of(7, 0, 0), /3 bytes/);
    fails(withInt32(goodFile, 0, 0), /max_token_length = 0 \(byte 0\); it must be 1\.\.1024/);
    fails(withInt32(goodFile, 0, -1), /max_token_length = -1/);
    fails(withInt32(goodFile, 0, 0x7fffffff), /max_token_length = 2147483647/);
    fails(withInt32(goodFile, 0, 5), /entry 2 \(byte 30\): piece length is 6; it must be 1\.\.5/);
  });

  it('refuses a vocab_size that does not match the file', () => {
    fails(goodFile, /vocab_size is 0;/, 0);
    fails(goodFile, /vocab_size is 258;/, 258);
    fails(goodFile, /vocab_size is 2\.5;/, 2.5);
    fails(
      goodFile,
      /vocab_size is 2147483647, which needs at least 19327352827 bytes; the file has 3637/,
      0x7fffffff,
    );
    fails(goodFile, /entry 260 \(byte 3637\): the file ends 0 bytes into it/, 261);
    fails(goodFile, /9 bytes left over at byte 3628, after the 259 entries/, 259);
  });

  it('refuses bad entries, naming the entry and the byte', () => {
    const space = entryOffset(259);
    fails(goodFile.subarray(0, space + 5), /entry 259 \(byte 3628\): the file ends 5 bytes into it/);
    fails(goodFile.subarray(0, space + 8), /entry 259 \(byte 3628\): its 1-byte piece runs past the end/);
    fails(withFloat32(goodFile, space, NaN), /entry 259 \(byte 3628\): score is NaN; scores must be finite/);
    fails(withFloat32(goodFile, space, -Infinity), /score is -Infinity/);
    fails(
      withInt32(goodFile, space + 4, 0),
      /entry 259 \(byte 3628\): piece length is 0; it must be 1\.\.16/,
    );
    fails(withInt32(goodFile, space + 4, -1), /piece length is -1/);
    fails(withInt32(goodFile, space + 4, 17), /piece length is 17/);
    fails(
      withInt32(goodFile, space + 4, 16),
      /its 16-byte piece runs past the end of the file \(3637 bytes\)/,
    );
    const nul = goodFile.slice();
    nul[space + 8] = 0;
    fails(nul, /entry 259 \(byte 3628\): piece has a NUL byte at byte 3636/);
  });

  it('refuses vocabularies without the pieces run.c relies on', () => {
    fails(
      tokenizerFile(good.slice(0, 200)),
      /the vocabulary has 200 pieces; a llama2.c vocabulary has at least 259/,
    );
    fails(tokenizerFile(STANDARD_PIECES), /no piece is a single space/);
    const renamed = (id: number, piece: string) =>
      tokenizerFile(good.map((spec, i) => (i === id ? { piece, score: 0 } : spec)));
    fails(renamed(0, '<UNK>'), /entry 0 is "<UNK>"; llama2.c expects <unk> there/);
    fails(renamed(1, 'BOS'), /entry 1 is "BOS"; llama2.c expects <s> there/);
    fails(renamed(2, '<s>'), /entry 2 is "<s>"; llama2.c expects <\/s> there/);
    fails(renamed(3 + 0x41, 'A'), /entry 68 is "A"; llama2.c expects <0x41> there/);
    // BOS and EOS without llama2.c's newlines are fine
    expect(
      parseLlama2cTokenizer(
        tokenizerFile(good.map((spec, i) => (i === 1 ? { piece: '<s>', score: 0 } : spec))),
        'ok.bin',
      ).bosId,
    ).toBe(1);
  });
});
