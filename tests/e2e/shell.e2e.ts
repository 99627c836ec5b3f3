/**
 * The course's shell in Chromium: the sticky prompt bar and its settings panel, the glossary and the 404
 * page, long texts in links (never refused by a server, kept across a reload, and cut with a message),
 * the Content-Security-Policy (no violation on any page), and the site served by a plain static server
 * that sends no isolation headers (the engine then runs on one thread and says so).
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { extname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { CHAPTERS } from '../../src/app/chapters/registry.ts';
import { GLOSSARY } from '../../src/app/lib/glossary.ts';
// @ts-expect-error -- plain JavaScript (it runs in Node without a build step)
import { fileFor } from '../../src/app/serve.js';
import {
  axeViolations,
  e2eUnavailable,
  openPage,
  sessionForSuite,
  SITE,
  waitForAnalysis,
} from './harness.ts';

const unavailable = e2eUnavailable();

const PAGES = ['', ...CHAPTERS.map((chapter) => chapter.slug), 'glossary', 'source', 'no-such-page'];

/** Records Content-Security-Policy violations from the page's first script on. */
async function watchCsp(page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    const seen: string[] = [];
    (globalThis as unknown as { __csp: string[] }).__csp = seen;
    document.addEventListener('securitypolicyviolation', (event) =>
      seen.push(`${event.violatedDirective}: ${event.blockedURI} (${event.sourceFile}:${event.lineNumber})`),
    );
  });
  return () => page.evaluate(() => (globalThis as unknown as { __csp: string[] }).__csp);
}

/** A static host as plain as they come: files by path (then path.html, path/index.html), 404.html, no headers. */
function plainServer(root: string): Promise<{ origin: string; server: Server }> {
  const TYPES: Record<string, string> = {
    '.html': 'text/html',
    '.js': 'text/javascript',
    '.css': 'text/css',
    '.json': 'application/json',
    '.svg': 'image/svg+xml',
    '.wasm': 'application/wasm',
    '.woff2': 'font/woff2',
  };
  const server = createServer((request, response) => {
    const file: string | undefined = fileFor(root, request.url ?? '/');
    const sent = file ?? join(root, '404.html');
    response.writeHead(file ? 200 : 404, {
      'Content-Type': TYPES[extname(sent)] ?? 'application/octet-stream',
      'Content-Length': statSync(sent).size,
    });
    createReadStream(sent).pipe(response);
  });
  return new Promise((done) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      done({ origin: `http://127.0.0.1:${address.port}`, server });
    }),
  );
}

describe.skipIf(unavailable !== undefined)('the shell in Chromium', () => {
  const session = sessionForSuite();

  it('keeps the prompt bar compact and in reach: under a fifth of a 375 × 667 screen, sticky', async () => {
    const { page } = await openPage(session);
    await page.setViewportSize({ width: 375, height: 667 });
    await page.goto(`${session.origin}/embeddings`);
    await waitForAnalysis(page);
    const bar = page.locator('.prompt-bar');
    const height = (await bar.boundingBox())!.height;
    expect(height).toBeLessThan(667 / 5);
    await page.mouse.wheel(0, 3000);
    await expect.poll(async () => (await bar.boundingBox())!.y).toBeLessThanOrEqual(1);
    expect(await page.locator('#prompt').isVisible()).toBe(true);
    await page.close();
    console.log(`[e2e] prompt bar at 375 × 667: ${height.toFixed(0)} px high (a fifth is 133 px)`);
  });

  it('counts code points and says so', async () => {
    const { page } = await openPage(session);
    await page.goto(`${session.origin}/text-to-bytes?prompt=${encodeURIComponent('ok 👍🏽 é')}`);
    await waitForAnalysis(page, 'ok 👍🏽 é');
    // "ok", space, thumb, skin tone, space, é: 7 code points (8 UTF-16 units).
    await expect
      .poll(() => page.locator('.prompt-bar .counts').textContent())
      .toMatch(/^7 characters \(code points\)/);
    await page.close();
  });

  it('opens and closes the settings panel by keyboard', async () => {
    const { page } = await openPage(session);
    await page.goto(`${session.origin}/whole-machine`);
    await waitForAnalysis(page);
    const toggle = page.getByRole('button', { name: /^Settings/ });
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    expect(await page.locator('#prompt-settings').isVisible()).toBe(false);
    await page.focus('#prompt');
    await page.keyboard.press('Shift+Tab'); // the Settings button comes before the text box
    expect(await page.evaluate(() => document.activeElement?.textContent)).toMatch(/^Settings/);
    await page.keyboard.press('Enter');
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');
    expect(await page.locator('#prompt-settings').isVisible()).toBe(true);
    expect(await page.getByRole('combobox', { name: /^Kernels/ }).isVisible()).toBe(true);
    // Tab reaches the controls inside: the text box, then "Open a model file…".
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLInputElement).type)).toBe('file');
    await page.keyboard.press('Escape');
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toMatch(/^Settings/);
    await page.close();
  });

  it('has a glossary whose every link resolves, and chapters whose terms link into it', async () => {
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/glossary`);
    const ids = await page.locator('dl.glossary dt').evaluateAll((dts) => dts.map((dt) => dt.id));
    expect(ids.sort()).toEqual(Object.keys(GLOSSARY).sort());
    const links = await page
      .locator('dl.glossary a.taught')
      .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
    expect(links.length).toBe(Object.keys(GLOSSARY).length);
    // The contents link to the glossary.
    expect(await page.locator('#toc a[href*="glossary"]').count()).toBe(1);
    for (const link of links) {
      await page.goto(link);
      const anchor = new URL(link).hash.slice(1);
      expect(await page.locator(`[id="${anchor}"]`).count(), link).toBe(1);
    }
    // Every term a chapter marks links to an entry of the glossary.
    for (const chapter of CHAPTERS) {
      await page.goto(`${session.origin}/${chapter.slug}`);
      const hrefs = await page
        .locator('dfn.term a')
        .evaluateAll((as) => as.map((a) => new URL((a as HTMLAnchorElement).href).hash.slice(1)));
      for (const id of hrefs) expect(Object.keys(GLOSSARY), `${chapter.slug} → ${id}`).toContain(id);
    }
    expect(problems.console).toEqual([]);
    await page.close();
  }, 180_000);

  it('answers an unknown address with a styled 404 page that has the contents', async () => {
    const { page, problems } = await openPage(session);
    const response = await page.goto(`${session.origin}/no-such-chapter`);
    expect(response?.status()).toBe(404);
    await expect.poll(() => page.locator('h1').textContent()).toBe('There is no page here');
    expect(await page.title()).toBe('Page not found — Glassbox');
    expect(await page.locator('#toc li').count()).toBe(CHAPTERS.length);
    expect(await page.locator('.not-found .chapters a').count()).toBe(CHAPTERS.length);
    await page.locator('.not-found .chapters a').first().click();
    await expect.poll(() => page.locator('h1').textContent()).toBe(CHAPTERS[0].title);
    expect(problems.console.filter((line) => !/404/.test(line))).toEqual([]);
    await page.close();
  });

  it('sends a Content-Security-Policy that no page violates, and forbids framing', async () => {
    for (const path of PAGES) {
      const { page, problems } = await openPage(session);
      const violations = await watchCsp(page);
      const response = await page.goto(`${session.origin}/${path}`);
      expect(response?.headers()['content-security-policy']).toMatch(/frame-ancestors 'none'/);
      expect(response?.headers()['x-frame-options']).toBe('DENY');
      if (CHAPTERS.some((chapter) => chapter.slug === path)) await waitForAnalysis(page);
      else await page.waitForLoadState('networkidle');
      const policy = await page.locator('meta[http-equiv="content-security-policy"]').getAttribute('content');
      expect(policy, path).toMatch(/script-src 'self' 'wasm-unsafe-eval' 'sha256-/);
      expect(await violations(), `/${path}`).toEqual([]);
      expect(
        problems.console.filter((line) => /Content.Security.Policy|Refused to/i.test(line)),
        `/${path}`,
      ).toEqual([]);
      await page.close();
    }
    // And the policy is in force: an inline script is refused (and reported).
    const { page } = await openPage(session);
    const violations = await watchCsp(page);
    await page.goto(`${session.origin}/`);
    await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = '(globalThis).__inline = true;';
      document.head.append(script);
    });
    expect(await page.evaluate(() => (globalThis as { __inline?: boolean }).__inline)).toBeUndefined();
    await expect.poll(violations).toHaveLength(1);
    await page.close();
  });

  for (const [name, unit, count] of [
    ['4,000 × 中', '中', 4000],
    ['2,000 emoji', '👍🏽', 1000],
    ['3,000 Arabic letters', 'ب', 3000],
  ] as const) {
    it(`keeps a long text (${name}) in links that open and across a reload`, async () => {
      const text = unit.repeat(count);
      const { page, problems } = await openPage(session);
      await page.goto(`${session.origin}/text-to-bytes`);
      await waitForAnalysis(page);
      await page.fill('#prompt', text);
      await waitForAnalysis(page, text);
      await expect.poll(() => new URL(page.url()).hash).toMatch(/^#text=/);
      const link = page.url();
      expect(new URL(link).searchParams.get('prompt')).toBeNull();
      expect(link.length).toBeLessThan(16_000);
      // The links the page makes (contents, previous/next) open too: their query is short.
      const hrefs = await page
        .locator('#toc a')
        .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
      for (const href of hrefs) expect(href.length, href).toBeLessThan(2_000);
      await page.reload();
      await waitForAnalysis(page, text);
      expect(await page.inputValue('#prompt')).toBe(text);
      // A fresh tab (nothing stored) opens the link with the same text.
      const other = await openPage(session);
      const response = await other.page.goto(link);
      expect(response?.status()).toBe(200);
      await waitForAnalysis(other.page, text);
      expect(await other.page.inputValue('#prompt')).toBe(text);
      expect([...problems.failed, ...other.problems.failed]).toEqual([]);
      await other.page.close();
      await page.close();
    });
  }

  it('says so when a paste, or a link, is longer than the box holds', async () => {
    const { page } = await openPage(session);
    await page.goto(`${session.origin}/text-to-bytes`);
    await waitForAnalysis(page);
    await page.evaluate(() => {
      const box = document.querySelector<HTMLTextAreaElement>('#prompt')!;
      box.value = 'a'.repeat(50_000);
      box.dispatchEvent(new InputEvent('input', { bubbles: true, inputType: 'insertFromPaste' }));
    });
    await expect
      .poll(() => page.locator('.prompt-bar .text-news').textContent())
      .toMatch(/pasted made a text of 50,000 characters; the box holds 4,000, so it keeps the first 4,000/);
    expect((await page.inputValue('#prompt')).length).toBe(4000);

    // A link whose text is longer than the box: kept to 4,000, with a message, and typing still works.
    await page.goto(`${session.origin}/text-to-bytes?prompt=${'b'.repeat(4500)}`);
    await expect
      .poll(() => page.locator('.prompt-bar .text-news').textContent())
      .toMatch(/link’s text made a text of 4,500 characters/);
    expect((await page.inputValue('#prompt')).length).toBe(4000);
    await page.focus('#prompt');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('Hello');
    expect(await page.inputValue('#prompt')).toBe('Hello');
    await expect.poll(() => page.locator('.prompt-bar .text-news').count()).toBe(0);
    await page.close();
  });

  it('still opens an old link with a long text in its query (no HTTP 431)', async () => {
    const { page } = await openPage(session);
    const text = '中'.repeat(4000);
    const response = await page.goto(`${session.origin}/text-to-bytes?prompt=${encodeURIComponent(text)}`);
    expect(response?.status()).toBe(200);
    await waitForAnalysis(page, text);
    await expect.poll(() => new URL(page.url()).hash).toMatch(/^#text=/);
    await page.close();
  });

  it('works from a plain static host with no isolation headers, on one thread, and says so', async () => {
    const root = resolve(SITE);
    expect(existsSync(join(root, '404.html'))).toBe(true);
    const { origin, server } = await plainServer(root);
    try {
      const { page, problems } = await openPage(session);
      const violations = await watchCsp(page);
      const response = await page.goto(`${origin}/whole-machine`);
      expect(response?.headers()['cross-origin-opener-policy']).toBeUndefined();
      const hook = await waitForAnalysis(page);
      expect(hook.top.length).toBe(10);
      expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(false);
      expect(hook.kernels).toMatch(/threads: 1/);
      await page.getByRole('button', { name: /^Settings/ }).click();
      expect(await page.locator('.isolation').textContent()).toMatch(
        /without the cross-origin isolation headers .* on one thread/,
      );
      // Its 404 page works there too.
      const missing = await page.goto(`${origin}/nowhere`);
      expect(missing?.status()).toBe(404);
      await expect.poll(() => page.locator('h1').textContent()).toBe('There is no page here');
      expect(await violations()).toEqual([]);
      expect(problems.console.filter((line) => !/404/.test(line))).toEqual([]);
      await page.close();
    } finally {
      await new Promise((done) => server.close(() => done(undefined)));
    }
  });

  it('passes axe on the glossary and the 404 page, and screenshots them', async () => {
    for (const path of ['glossary', 'no-such-page']) {
      for (const width of [1280, 375]) {
        const { page } = await openPage(session);
        await page.setViewportSize({ width, height: 900 });
        await page.goto(`${session.origin}/${path}`);
        await page.waitForLoadState('networkidle');
        expect(await axeViolations(page), `/${path} at ${width}`).toEqual([]);
        await page.screenshot({ path: `test-artifacts/${path}-${width}.png`, fullPage: width === 375 });
        await page.close();
      }
    }
  });

  it('serves the theme script from a file (no inline script in the template)', () => {
    const template = readFileSync('src/app/app.html', 'utf8');
    expect(template).not.toMatch(/<script>/);
  });
});
