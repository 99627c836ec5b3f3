import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  CORPUS_PASSAGE,
  cutText,
  isSplit,
  loadO200k,
  MAX_MERGES,
  SAMPLES,
  textStats,
  tokenSpans,
  tokenChipLabel,
  tokensAfter,
  trainTimeline,
  type TokenizedText,
} from '../src/app/chapters/03-tokenization/tokenization.ts';
import {
  bpeTokenizer,
  createTokenizer,
  encode,
  FIRST_MERGE_ID,
  fromTokenizerJson,
  trainBpe,
} from '../src/tokenizers/bpe.ts';
import { pretokenize } from '../src/tokenizers/pretokenize.ts';
import { haveShared, SHARED, TOK512 } from './shared.ts';
import { handlers as tokenizationHandlers } from '../src/app/chapters/03-tokenization/worker.ts';
import { setLoaded } from '../src/app/lib/worker/state.ts';
import type { Model } from '../src/engine/model.ts';
import type { ModelInfo } from '../src/app/lib/worker/protocol.ts';
import { llama2cTokenizer, parseLlama2cTokenizer } from '../src/tokenizers/llama2c.ts';
import type { Tokenizer } from '../src/tokenizers/tokenizer.ts';

const utf8 = (text: string) => Array.from(new TextEncoder().encode(text));

/** Byte offsets where a code point starts, and the end: where a group of whole characters may begin or end. */
function codePointOffsets(text: string): Set<number> {
  const offsets = new Set([0]);
  let at = 0;
  for (const char of text) offsets.add((at += utf8(char).length));
  return offsets;
}

/** The invariants every tokenization view must keep, checked against the text itself. */
function checkSpans(text: string, view: TokenizedText) {
  const bytes = utf8(text);
  // Every byte covered exactly once, in order.
  expect(view.byteCount).toBe(bytes.length);
  let at = 0;
  for (const token of view.tokens) {
    expect(token.start).toBe(at);
    expect(token.end - token.start).toBe(token.bytes.length);
    expect(Array.from(token.bytes)).toEqual(bytes.slice(token.start, token.end));
    at = token.end;
  }
  expect(at).toBe(bytes.length);
  // Groups tile the tokens, are whole characters, and re-concatenate to the text.
  expect(view.groups.map((g) => g.text).join('')).toBe(text);
  const starts = codePointOffsets(text);
  let next = 0;
  view.groups.forEach((group, g) => {
    expect(group.first).toBe(next);
    next = group.end;
    const members = view.tokens.slice(group.first, group.end);
    expect(starts.has(members[0].start) && starts.has(members[members.length - 1].end)).toBe(true);
    // Inside a group no token boundary falls between characters: the group is as small as it can be.
    members.slice(1).forEach((token) => expect(starts.has(token.start)).toBe(false));
    members.forEach((token) => expect(token.group).toBe(g));
    if (members.length > 1) {
      expect(isSplit(view, group)).toBe(true);
      members.forEach((token) => expect(token.text).toBeUndefined());
    } else {
      expect(members[0].text).toBe(group.text);
    }
  });
  expect(next).toBe(view.tokens.length);
}

const TRICKY = [
  'ok 👍🏽 👩‍💻 🇪🇺 🎉!',
  '初めに言葉があった。日本語のテキスト',
  'e\u0301 = é, naïve café',
  'आदि में परमेश्वर ने',
  '',
  'a',
  '\n\n  tabs\tand spaces  ',
  '<|endoftext|> is just text here',
  ...SAMPLES.map((s) => s.text),
];

describe('chapter 3: spans of tokens over bytes', () => {
  it('covers every byte once and groups split characters, for a byte-per-token tokenizer', () => {
    // Every byte its own token: each character of 2–4 bytes must become one group of that many tokens.
    for (const text of TRICKY) {
      const bytes = new TextEncoder().encode(text);
      const view = tokenSpans(Array.from(bytes), (id) => Uint8Array.of(id));
      checkSpans(text, view);
      expect(view.groups.map((g) => g.end - g.first)).toEqual(Array.from(text, (c) => utf8(c).length));
    }
  });

  it('covers every byte once and groups split characters, for GPT-4o’s tokenizer', async () => {
    const o200k = await loadO200k();
    let splitGroups = 0;
    for (const text of TRICKY) {
      const view = tokenSpans(o200k.encode(text), (id) => o200k.bytesOf(id));
      checkSpans(text, view);
      splitGroups += view.groups.filter((g) => isSplit(view, g)).length;
    }
    // o200k does cut some of these emoji between their bytes (👍🏽's skin tone, 👩 after a space).
    expect(splitGroups).toBeGreaterThan(0);
    expect(o200k.tokenCount).toBeGreaterThan(199_000);
  });

  const vectorsFile = join(SHARED, 'oracle', 'o200k', 'o200k_test_vectors.json');
  it.skipIf(!existsSync(vectorsFile))(
    'matches the o200k vectors three independent packages agreed on (ids and byte spans)',
    async () => {
      const vectors = JSON.parse(readFileSync(vectorsFile, 'utf8')) as {
        text: string;
        ids: number[];
        spans: { id: number; start: number; end: number; hex: string }[];
      }[];
      const o200k = await loadO200k();
      expect(vectors.length).toBeGreaterThan(3);
      for (const vector of vectors) {
        const ids = o200k.encode(vector.text);
        expect(ids).toEqual(vector.ids);
        const view = tokenSpans(ids, (id) => o200k.bytesOf(id));
        expect(
          view.tokens.map((t) => ({
            id: t.id,
            start: t.start,
            end: t.end,
            hex: Buffer.from(t.bytes).toString('hex'),
          })),
        ).toEqual(vector.spans);
        checkSpans(vector.text, view);
      }
    },
  );
  if (!existsSync(vectorsFile)) console.warn(`[tokenization] ${vectorsFile} absent: oracle vectors skipped`);

  it('counts characters, bytes and words', () => {
    expect(textStats('Hello, world! It’s 2024.')).toEqual({ characters: 24, bytes: 26, words: 4 });
    const emoji = textStats('👍🏽 👩‍💻');
    expect(emoji.characters).toBe(3);
    expect(emoji.bytes).toBe(Buffer.byteLength('👍🏽 👩‍💻'));
    expect(emoji.words).toBe(0);
    const english = 'In the beginning God created the heavens and the earth';
    expect(textStats(english).words).toBe(english.split(' ').length);
  });

  it('cuts texts without splitting a character', () => {
    expect(cutText('ab👍cd', 3)).toBe('ab');
    expect(cutText('ab👍cd', 4)).toBe('ab👍');
    expect(cutText('abc', 10)).toBe('abc');
  });
});

/** BPE training written the slow, obvious way: count every pair in every occurrence, merge, repeat. */
function naiveTrain(text: string, mergeCount: number) {
  let words = pretokenize(text).map(utf8);
  const merges: { left: number; right: number; merged: number; count: number }[] = [];
  for (let m = 0; m < mergeCount; m++) {
    const counts = new Map<string, number>();
    for (const word of words) {
      for (let i = 0; i + 1 < word.length; i++) {
        const key = `${word[i]},${word[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
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
    const merge = { left: best[0], right: best[1], merged: FIRST_MERGE_ID + m, count: best[2] };
    merges.push(merge);
    words = words.map((word) => naiveMerge(word, merge));
  }
  return merges;
}

function naiveMerge(word: number[], merge: { left: number; right: number; merged: number }): number[] {
  const out: number[] = [];
  for (let i = 0; i < word.length; i++) {
    if (word[i] === merge.left && word[i + 1] === merge.right) {
      out.push(merge.merged);
      i++;
    } else out.push(word[i]);
  }
  return out;
}

/** The text's tokens after the first k merges, applying them one after another to every pre-token. */
function naiveTokens(text: string, merges: { left: number; right: number; merged: number }[], k: number) {
  return pretokenize(text).flatMap((piece) => merges.slice(0, k).reduce(naiveMerge, utf8(piece)));
}

describe('chapter 3: chips of the trained vocabulary', () => {
  it('show part of a character as hex bytes with plain spaces, and text with its spaces visible', () => {
    expect(tokenChipLabel(new Uint8Array([0xe2, 0x80]))).toBe('E2 80');
    expect(tokenChipLabel(new TextEncoder().encode(' the'))).toBe('␣the');
  });
});

describe('chapter 3: BPE training merge by merge', () => {
  it('trains on a passage that really is in the training corpus', () => {
    const corpus = gunzipSync(readFileSync('corpus/web.txt.gz')).toString('utf8');
    expect(corpus.startsWith(`Genesis 1\n${CORPUS_PASSAGE}`)).toBe(true);
  });

  it('learns the merges a naive trainer learns, with the same counts', () => {
    const timeline = trainTimeline(CORPUS_PASSAGE);
    const naive = naiveTrain(CORPUS_PASSAGE, timeline.merges.length + 1);
    expect(timeline.merges.map(({ left, right, merged, count }) => ({ left, right, merged, count }))).toEqual(
      naive.slice(0, timeline.merges.length),
    );
    // It stopped where a pair first occurred only once, or at the cap.
    expect(timeline.merges.length === MAX_MERGES || naive[timeline.merges.length].count < 2).toBe(true);
    expect(timeline.merges.every((m) => m.count >= 2)).toBe(true);
    expect(timeline.merges.length).toBeGreaterThan(100);
  });

  for (const [name, text] of [
    ['the corpus passage', CORPUS_PASSAGE],
    ['emoji and Japanese', 'ok 👍🏽 👍🏽 👩‍💻 👩‍💻 初めに言葉があった。言葉 言葉'],
    ['overlapping pairs', 'aaaa aaa aaaaa aa a aaaa'],
    ['one character', 'x'],
    ['nothing', ''],
  ] as const) {
    it(`gives, after k merges, the tokens of encoding with the first k merges (${name})`, () => {
      const timeline = trainTimeline(text);
      const { merges, tokenBytes } = timeline;
      expect(timeline.tokenCounts).toHaveLength(merges.length + 1);
      for (let k = 0; k <= merges.length; k++) {
        const ids = tokensAfter(timeline, k);
        expect(ids, `k = ${k}`).toEqual(naiveTokens(text, merges, k));
        expect(timeline.tokenCounts[k]).toBe(ids.length);
        if (k % 25 !== 0 && k !== merges.length) continue;
        // And the repository's encoder (earliest merge first, a different order of work) agrees.
        {
          const truncated = createTokenizer({
            tokenBytes: tokenBytes.slice(0, FIRST_MERGE_ID + k),
            merges: merges.slice(0, k),
            specialTokens: [],
            pattern: trainBpe('', { vocabSize: FIRST_MERGE_ID }).tokenizer.pattern,
          });
          expect(encode(truncated, text)).toEqual(ids);
        }
        // The tokens still spell the text, byte for byte.
        checkSpans(
          text,
          tokenSpans(ids, (id) => tokenBytes[id]),
        );
      }
    });
  }

  it('bounds its input', () => {
    const long = 'And God said, Let there be light. '.repeat(200);
    const timeline = trainTimeline(long);
    expect(timeline.text.length).toBeLessThanOrEqual(2000);
    expect(timeline.merges.length).toBeLessThanOrEqual(MAX_MERGES);
  });
});

describe('chapter 3: the model’s own tokens, from the worker', () => {
  /** The worker's view with only a tokenizer loaded (modelTokens never touches the weights). */
  function modelTokensWith(tokenizer: Tokenizer, text: string) {
    setLoaded({ model: {} as Model, tokenizer, info: {} as ModelInfo });
    const answer = tokenizationHandlers.modelTokens(text);
    const pieces = answer.ids.map((_, i) => answer.bytes.subarray(answer.offsets[i], answer.offsets[i + 1]));
    return { answer, pieces };
  }

  const texts = ['In the beginning God created', ' leading space', 'ok 👍🏽 初め', 'a\nb', ''];

  it('gives the house tokenizer’s ids, and bytes that spell the text', () => {
    const house = bpeTokenizer(fromTokenizerJson(readFileSync('models/house/tokenizer.json', 'utf8')));
    for (const text of texts) {
      const { answer, pieces } = modelTokensWith(house, text);
      expect(answer.ids).toEqual(house.encode(text, { bos: false, eos: false }));
      expect(answer.text).toBe(text);
      checkSpans(
        text,
        tokenSpans(answer.ids, (_, i) => pieces[i]),
      );
      expect(answer.vocabSize).toBe(4096);
    }
  });

  it.skipIf(!haveShared)(
    'drops a llama2.c tokenizer’s dummy-prefix space, so its bytes spell the text',
    () => {
      const tok = llama2cTokenizer(
        parseLlama2cTokenizer(new Uint8Array(readFileSync(TOK512)), 'tok512.bin', 512),
      );
      for (const text of texts) {
        const { answer, pieces } = modelTokensWith(tok, text);
        expect(answer.ids).toEqual(tok.encode(text, { bos: true, eos: false }).slice(1));
        checkSpans(
          text,
          tokenSpans(answer.ids, (_, i) => pieces[i]),
        );
      }
    },
  );
});
