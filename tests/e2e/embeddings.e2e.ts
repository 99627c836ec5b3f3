/**
 * Chapter 4 in a real browser, against the built site: the heatmap's rows are the model's embedding rows
 * for the reader's tokens, the neighbours are a brute-force cosine ranking done here in Node, the search
 * marks as many tokens as a plain filter of the vocabulary finds, and the keyboard moves the focus token
 * (and the URL). Screenshots at 1280 and 375 px land in test-artifacts/.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { principalComponents } from '../../src/analysis/embeddings.ts';
import { formatNumber } from '../../src/app/lib/format.ts';
import {
  ARTIFACTS,
  axeViolations,
  e2eSkipReason,
  houseModel,
  openPage,
  published,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';

const unavailable = e2eSkipReason();

interface RowsFigure {
  tokens: number[];
  focus: number;
  dim: number;
  rows: number[][];
}
interface NeighboursFigure {
  token: number;
  neighbours: { token: number; similarity: number }[];
}
interface MapFigure {
  vocabSize: number;
  explained: number[];
  query: string;
  matchCount: number;
  matches: number[];
  focus: { token: number; x: number; y: number } | undefined;
  pointed: number | undefined;
}

/** The house model, from the very files the site serves. */
function nodeModel() {
  const { model, tokenizer } = houseModel();
  const table = model.weights.tokenEmbedding.data;
  const dim = model.config.dim;
  const row = (token: number) => Array.from(table.subarray(token * dim, (token + 1) * dim));
  return {
    model,
    tokenizer,
    dim,
    row,
    /** Every cosine in float64, sorted: the brute force the worker's top 10 must equal. */
    neighbours(token: number, count: number) {
      const norm = (v: number[]) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
      const query = row(token);
      const scored = [];
      for (let t = 0; t < model.config.vocabSize; t++) {
        if (t === token) continue;
        const other = row(t);
        const dot = query.reduce((sum, x, i) => sum + x * other[i], 0);
        scored.push({ token: t, similarity: dot / (norm(query) * norm(other)) });
      }
      return scored.sort((a, b) => b.similarity - a.similarity || a.token - b.token).slice(0, count);
    },
  };
}

describe.skipIf(unavailable)('chapter 4 in the browser: embeddings', () => {
  const session = sessionForSuite();

  it("shows the model's rows, neighbours and map for the reader's text; the keyboard moves the focus token", async () => {
    const node = nodeModel();
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/embeddings?prompt=${encodeURIComponent('In the beginning')}&token=1`);
    await waitForAnalysis(page, 'In the beginning');

    // The reader types; the deep link's focus position (1) stays.
    const prompt = 'And God said, Let there be light';
    await page.fill('#prompt', prompt);
    const hook = await waitForAnalysis(page, prompt);
    const tokens = node.tokenizer.encode(prompt, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);
    const rows = await published<RowsFigure>(page, 'embeddings.rows', tokens, () => true, 30_000);
    expect(rows.focus).toBe(1);
    expect(rows.rows).toEqual(tokens.map((token) => node.row(token)));

    const near = await published<NeighboursFigure>(
      page,
      'embeddings.neighbours',
      undefined,
      (f) => f.token === tokens[1],
      30_000,
    );
    const expected = node.neighbours(tokens[1], 10);
    expect(near.neighbours.map((n) => n.token)).toEqual(expected.map((n) => n.token));
    near.neighbours.forEach((n, i) => expect(n.similarity).toBeCloseTo(expected[i].similarity, 9));
    expect(await page.locator('.neighbours .value').allTextContents()).toEqual(
      expected.map((n) => n.similarity.toFixed(3)),
    );

    // Keyboard: into the heatmap, down one row (the focus token and the URL follow), right twice.
    const grid = page.locator('[aria-roledescription="heatmap"]');
    await grid.focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => new URL(page.url()).searchParams.get('token')).toBe('2');
    const moved = await published<RowsFigure>(
      page,
      'embeddings.rows',
      undefined,
      (f) => f.focus === 2,
      30_000,
    );
    expect(moved.focus).toBe(2);
    const piece = node.tokenizer.pieceLabel(tokens[2]);
    await expect
      .poll(() => page.locator('.readout').first().textContent())
      .toContain(`dimension 2: ${formatNumber(node.row(tokens[2])[2])}`);
    expect(await page.locator('.readout').first().textContent()).toContain(`“${piece.trim()}”`);
    const next = await published<NeighboursFigure>(
      page,
      'embeddings.neighbours',
      undefined,
      (f) => f.token === tokens[2],
      30_000,
    );
    expect(next.neighbours.map((n) => n.token)).toEqual(node.neighbours(tokens[2], 10).map((n) => n.token));

    // The question's answer is the brute-force nearest row.
    await page.getByRole('button', { name: 'Just show me' }).click();
    const nearest = node.tokenizer.pieceLabel(node.neighbours(tokens[2], 1)[0].token);
    await expect.poll(() => page.locator('label.correct').textContent()).toContain(nearest.trim());

    // The map: its variances equal a Node PCA of the same table; the search marks what a filter finds.
    const pca = principalComponents(node.model.weights.tokenEmbedding.data, node.dim, 3);
    const map = await published<MapFigure>(
      page,
      'embeddings.map',
      undefined,
      (f) => f.focus?.token === tokens[2],
      30_000,
    );
    map.explained.forEach((share, k) => expect(share).toBeCloseTo(pca.explained[k], 9));
    await page.getByLabel('Find tokens containing').fill('god');
    const pieces = Array.from({ length: 4096 }, (_, t) => node.tokenizer.pieceLabel(t));
    const godly = pieces.flatMap((p, t) => (p.toLowerCase().includes('god') ? [t] : []));
    expect(godly.length).toBeGreaterThan(2);
    const searched = await published<MapFigure>(
      page,
      'embeddings.map',
      undefined,
      (f) => f.query === 'god',
      30_000,
    );
    expect(searched.matchCount).toBe(godly.length);
    expect(searched.matches).toEqual(godly.slice(0, 40));
    expect(await page.locator('#emb-map-count').textContent()).toContain(
      `${godly.length} tokens' pieces contain "god"`,
    );
    // Keyboard in the list of matches: arrows move from one to the next; the map points at it.
    await page.locator('.matches button').first().focus();
    await page.keyboard.press('ArrowRight');
    const pointed = await published<MapFigure>(
      page,
      'embeddings.map',
      undefined,
      (f) => f.pointed === godly[1],
      30_000,
    );
    expect(pointed.pointed).toBe(godly[1]);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toContain(
      pieces[godly[1]].replace(/ /g, '␣'),
    );

    // With the search's list open and a neighbour walk under way: no serious accessibility problem, light or dark.
    await page.locator('.neighbours button').first().click();
    await published<NeighboursFigure>(
      page,
      'embeddings.neighbours',
      undefined,
      (f) => f.token === next.neighbours[0].token,
      30_000,
    );
    expect(await axeViolations(page)).toEqual([]);
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await axeViolations(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'embeddings-1280-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    await page.screenshot({ path: join(ARTIFACTS, 'embeddings-1280.png'), fullPage: true });
    await page.setViewportSize({ width: 375, height: 900 });
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
    await page.screenshot({ path: join(ARTIFACTS, 'embeddings-375.png'), fullPage: true });
    await page.close();
    expect({ ...problems, bytes: undefined }).toMatchObject({ console: [], failed: [], foreign: [] });
  });
});
