/**
 * Chapter 3 in a real browser: the o200k tokens it shows are gpt-tokenizer's in Node, the model's tokens are
 * the house tokenizer.json's in Node, the merge slider steps by keyboard through the merges the house trainer
 * learns in Node, and nothing (not even the 2.4 MB o200k table) comes from another host.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { encode as o200kEncode } from 'gpt-tokenizer/encoding/o200k_base';
import {
  bpeTokenizer,
  createTokenizer,
  encode,
  FIRST_MERGE_ID,
  fromTokenizerJson,
  trainBpe,
} from '../../src/tokenizers/bpe.ts';
import { CORPUS_PASSAGE, MAX_MERGES, SAMPLES } from '../../src/app/chapters/03-tokenization/tokenization.ts';
import {
  ARTIFACTS,
  e2eSkipReason,
  HOUSE,
  openPage,
  published,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';

const unavailable = e2eSkipReason();

interface Figures {
  'tokenization.spans': { source: string; text: string; ids: number[]; groups: string[] };
  'tokenization.compare': { text: string; o200k: number[]; model: number[]; modelId: string };
  'tokenization.merges': { text: string; k: number; mergeCount: number; ids: number[]; merges: number[][] };
  'tokenization.question': { ours: number; gpt: number; answer: number };
}

/** Waits until figure `name` has published numbers for `text` (any text when undefined) and returns them. */
const figure = <N extends keyof Figures>(page: Page, name: N, text?: string) =>
  published<Figures[N]>(page, name, undefined, (f) => text === undefined || ('text' in f && f.text === text));

const gpt = (text: string) => o200kEncode(text, { disallowedSpecial: new Set() });

describe.skipIf(unavailable !== undefined)('chapter 3, tokenization, in Chromium', () => {
  const session = sessionForSuite();

  it('shows the tokens gpt-tokenizer and the house tokenizer give in Node, and trains merge by merge', async () => {
    const house = bpeTokenizer(fromTokenizerJson(readFileSync(join(HOUSE, 'tokenizer.json'), 'utf8')));
    const { page, problems } = await openPage(session);
    const first = 'In the beginning God created';
    await page.goto(`${session.origin}/tokenization?prompt=${encodeURIComponent(first)}`);
    await waitForAnalysis(page, first);
    expect((await figure(page, 'tokenization.spans', first)).ids).toEqual(gpt(first));

    // The reader's text, with an emoji that o200k splits between its bytes, CJK and a combining accent.
    const prompt = 'Tokenizers split 👍🏽 and 👩‍💻 oddly: 初めに言葉があった, cafe\u0301 12345!';
    await page.fill('#prompt', prompt);
    await waitForAnalysis(page, prompt);
    const spans = await figure(page, 'tokenization.spans', prompt);
    expect(spans.ids).toEqual(gpt(prompt));
    expect(spans.groups.join('')).toBe(prompt);
    const spansFigure = page.locator('figure[aria-labelledby="tok-spans-title"]');
    await expect.poll(() => spansFigure.locator('[role=option]').count()).toBe(spans.ids.length);
    expect(await spansFigure.locator('dd.accent').textContent()).toBe(String(spans.ids.length));
    // Split characters are drawn whole, over their tokens' hex bytes.
    expect(await spansFigure.locator('.group .glyphs').allTextContents()).toContain('🏽');

    const compare = await figure(page, 'tokenization.compare', prompt);
    expect(compare.o200k).toEqual(gpt(prompt));
    expect(compare.model).toEqual(house.encode(prompt, { bos: false, eos: false }));
    expect(compare.modelId).toBe('house');

    // Arrow keys move through the chips, and the detail line follows.
    await spansFigure.locator('[role=option]').first().focus();
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect
      .poll(() => spansFigure.locator('.detail').textContent())
      .toMatch(new RegExp(`^\\s*Token 3 of ${spans.ids.length}: id ${spans.ids[2].toLocaleString('en')},`));

    // A sample, without losing the reader's text.
    await spansFigure.getByRole('radio', { name: 'Hindi' }).check();
    const hindi = SAMPLES.find((s) => s.name === 'Hindi')!.text;
    expect((await figure(page, 'tokenization.spans', hindi)).ids).toEqual(gpt(hindi));
    expect(await page.inputValue('#prompt')).toBe(prompt);
    const compareFigure = page.locator('figure[aria-labelledby="tok-compare-title"]');
    await compareFigure.getByRole('radio', { name: 'Japanese' }).check();
    const japanese = SAMPLES.find((s) => s.name === 'Japanese')!.text;
    const compareJapanese = await figure(page, 'tokenization.compare', japanese);
    expect(compareJapanese.model).toEqual(house.encode(japanese, { bos: false, eos: false }));
    expect(compareJapanese.o200k).toEqual(gpt(japanese));

    // BPE training: the merges the trainer learns in Node, and the slider steps through them by keyboard.
    const trained = trainBpe(CORPUS_PASSAGE, { vocabSize: FIRST_MERGE_ID + MAX_MERGES });
    const merges = trained.merges.slice(
      0,
      trained.merges.findIndex((m) => m.count < 2),
    );
    const start = await figure(page, 'tokenization.merges', CORPUS_PASSAGE);
    expect(start.merges).toEqual(merges.map((m) => [m.left, m.right, m.merged, m.count]));
    expect(start.k).toBe(0);
    expect(start.ids).toEqual(Array.from(new TextEncoder().encode(CORPUS_PASSAGE)));
    const slider = page.getByRole('slider', { name: /Merges learned/ });
    await slider.focus();
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
    const encodeWith = (k: number) =>
      encode(
        createTokenizer({
          tokenBytes: trained.tokenizer.tokenBytes.slice(0, FIRST_MERGE_ID + k),
          merges: merges.slice(0, k),
          specialTokens: [],
          pattern: trained.tokenizer.pattern,
        }),
        CORPUS_PASSAGE,
      );
    await expect.poll(async () => (await figure(page, 'tokenization.merges')).k).toBe(3);
    expect((await figure(page, 'tokenization.merges')).ids).toEqual(encodeWith(3));
    await page.keyboard.press('End');
    await expect.poll(async () => (await figure(page, 'tokenization.merges')).k).toBe(merges.length);
    expect((await figure(page, 'tokenization.merges')).ids).toEqual(encodeWith(merges.length));
    await page.getByRole('button', { name: 'Previous merge' }).click();
    await expect.poll(async () => (await figure(page, 'tokenization.merges')).k).toBe(merges.length - 1);
    // Leave it somewhere instructive for the screenshots.
    await slider.focus();
    await page.keyboard.press('Home');
    for (let i = 0; i < 20; i++) await page.keyboard.press('ArrowRight');

    // The question's answer is the house tokenizer's count.
    const question = await figure(page, 'tokenization.question');
    expect(question.ours).toBe(house.encode('初めに言葉があった', { bos: false, eos: false }).length);
    expect(question.gpt).toBe(gpt('初めに言葉があった').length);

    await spansFigure.getByRole('radio', { name: 'Emoji' }).check();
    await page.screenshot({ path: join(ARTIFACTS, 'tokenization-1280.png'), fullPage: true });
    await page.setViewportSize({ width: 375, height: 800 });
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
    await page.screenshot({ path: join(ARTIFACTS, 'tokenization-375.png'), fullPage: true });
    // Nothing on the page is wider than a phone (wide parts scroll inside themselves).
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
    await page.screenshot({ path: join(ARTIFACTS, 'tokenization-1280-dark.png'), fullPage: true });

    await page.close();
    expect({ ...problems, bytes: undefined }).toMatchObject({ console: [], failed: [], foreign: [] });
  });
});
