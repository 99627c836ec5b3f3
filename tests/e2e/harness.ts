/**
 * The end-to-end harness: serves the built site (dist/app) with the app's own server, drives Debian's
 * Chromium through playwright-core (never a browser Playwright downloads), and records what a page does
 * wrong: console errors, uncaught exceptions, failed requests, and any request to a host but localhost.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
// @ts-expect-error -- plain JavaScript (it runs in Node without a build step)
import { serve } from '../../src/app/serve.js';
import { forward } from '../../src/engine/forward.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { defaultKernels, loadModelFolder } from '../helpers.ts';

export const CHROMIUM = process.env.GLASSBOX_CHROMIUM ?? '/usr/bin/chromium';
export const SITE = 'dist/app';
export const ARTIFACTS = 'test-artifacts';
/** The model folder the site serves by default, which the Node runs read too. */
export const HOUSE = join(SITE, 'models', 'house');

/** Why the suite cannot run here, or undefined. */
export function e2eUnavailable(): string | undefined {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} not found (install it: apt-get install -y chromium)`;
  if (!existsSync(join(SITE, 'index.html')))
    return `${SITE}/index.html not found (build it: npm run build:app)`;
  if (!existsSync(join(SITE, 'models', 'house', 'model.safetensors'))) {
    return `the site in ${SITE} was built without the default model (models/house/ is missing; GLASSBOX_MODEL_DIR may point at another folder)`;
  }
  return undefined;
}

/** e2eUnavailable(), said once on the console when the suite is skipped. */
export function e2eSkipReason(): string | undefined {
  const unavailable = e2eUnavailable();
  if (unavailable) console.warn(`[e2e] skipped: ${unavailable}`);
  return unavailable;
}

let house: ReturnType<typeof loadModelFolder> | undefined;
/** The model and tokenizer the site serves, read in Node once per file (nothing writes to them). */
export function houseModel(): ReturnType<typeof loadModelFolder> {
  return (house ??= loadModelFolder(HOUSE));
}

/** The engine's traced forward pass over `prompt` (BOS first) in Node, on the model the site serves. */
export function nodeRun(prompt: string) {
  const { model, tokenizer } = houseModel();
  const tokens = tokenizer.encode(prompt, { bos: true, eos: false });
  const kernels = defaultKernels();
  const { trace } = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
  return { model, tokenizer, tokens, trace, kernels };
}

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Session {
  origin: string;
  context: BrowserContext;
  close(): Promise<void>;
}

export async function startSession(): Promise<Session> {
  const server: { url: string; close(): Promise<void> } = await serve({ dir: SITE, port: 0, quiet: true });
  const profile = mkdtempSync(join(tmpdir(), 'glassbox-e2e-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    origin: server.url.replace(/\/$/, ''),
    context,
    async close() {
      await context.close();
      await server.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * One server and browser for a describe block: started before its tests, closed after them. Its fields are
 * read inside the tests, once it has started.
 */
export function sessionForSuite(): Session {
  let started: Session | undefined;
  beforeAll(async () => {
    started = await startSession();
  });
  afterAll(async () => {
    await started?.close();
  });
  const current = () => {
    if (!started) throw new Error('the e2e session starts before the tests: use it inside them');
    return started;
  };
  return {
    get origin() {
      return current().origin;
    },
    get context() {
      return current().context;
    },
    close: () => current().close(),
  };
}

export interface Problems {
  console: string[];
  failed: string[];
  foreign: string[];
  /** Bytes of every response (headers and body) so far, for the page budget. */
  bytes(): Promise<number>;
}

/** A new page whose problems are recorded from its first request. */
export async function openPage(session: Session): Promise<{ page: Page; problems: Problems }> {
  const page = await session.context.newPage();
  const sizes: Promise<number>[] = [];
  const problems: Problems = {
    console: [],
    failed: [],
    foreign: [],
    bytes: async () => (await Promise.all(sizes)).reduce((sum, size) => sum + size, 0),
  };
  page.on('console', (message) => {
    if (message.type() === 'error') problems.console.push(message.text());
  });
  page.on('pageerror', (error) => problems.console.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) =>
    problems.failed.push(`${request.url()}: ${request.failure()?.errorText}`),
  );
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (
      !['127.0.0.1', 'localhost'].includes(url.hostname) &&
      url.protocol !== 'data:' &&
      url.protocol !== 'blob:'
    ) {
      problems.foreign.push(request.url());
    }
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.failed.push(`${response.url()}: HTTP ${response.status()}`);
  });
  page.on('requestfinished', (request) => {
    sizes.push(
      request
        .sizes()
        .then((size) => size.responseBodySize + size.responseHeadersSize)
        .catch(() => 0),
    );
  });
  return { page, problems };
}

export interface HookTop {
  token: number;
  piece: string;
  probability: number;
  logit: number;
}

export interface Hook {
  prompt: string;
  tokens: number[];
  /** Chapter 1's top tokens (its figure 'whole-machine'), on chapter 1 only. */
  top: HookTop[];
  firstLiveMs: number;
  timings: { encodeMs: number; forwardMs: number };
  /** The kernels line (describeKernels) of the kernels that computed this pass. */
  kernels: string;
  model: { id: string; bytes: number; loadMs: number; config: { vocabSize: number; seqLen: number } };
}

/**
 * Waits until the engine has read `prompt` (or anything, without one) and returns its numbers; on chapter 1,
 * also until its figures show that reading, with their top tokens as `top`.
 */
export async function waitForAnalysis(page: Page, prompt?: string): Promise<Hook> {
  await page.waitForFunction(
    (expected) => {
      type Published = { prompt: string; tokens: number[]; figures?: Record<string, { tokens: number[] }> };
      const hook = (globalThis as { __glassbox?: Published }).__glassbox;
      if (hook === undefined || (expected !== null && hook.prompt !== expected)) return false;
      if (!location.pathname.endsWith('/whole-machine')) return true;
      return hook.figures?.['whole-machine']?.tokens.join() === hook.tokens.join();
    },
    prompt ?? null,
    { timeout: 30_000 },
  );
  // One more frame, so that the figures have drawn what the hook says.
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve(undefined))));
  return page.evaluate(() => {
    type Published = Hook & { figures?: Record<string, { top: HookTop[] }> };
    const hook = (globalThis as unknown as { __glassbox: Published }).__glassbox;
    return { ...hook, top: hook.figures?.['whole-machine']?.top ?? [] };
  });
}

/**
 * Loads axe-core into the page. Evaluated through the DevTools protocol rather than added as a <script>: the
 * course's Content-Security-Policy refuses inline scripts, and it should.
 */
export async function injectAxe(page: Page): Promise<void> {
  await page.evaluate(readFileSync('node_modules/axe-core/axe.min.js', 'utf8'));
}

/** Serious and critical axe findings on the page as it is now, one line each (the rules every suite applies). */
export async function axeViolations(page: Page): Promise<string[]> {
  await injectAxe(page);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (options: object) => Promise<unknown> } }).axe;
    return axe.run({
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    });
  });
  const { violations } = result as {
    violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[];
  };
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) =>
        `${v.id} (${v.impact}): ${v.help} at ${v.nodes
          .map((n) => n.target.join(' '))
          .slice(0, 3)
          .join(', ')}`,
    );
}

/** What a figure publishes on the hook: its numbers, for the tokens it was drawn from. */
export type Published = Record<string, unknown> & { tokens: number[] };

/**
 * Waits for figure `name` to be published for `tokens` (any, when undefined) with `condition` true of it, and
 * returns it. The figure is read out and checked here in Node: the page's Content-Security-Policy rightly
 * refuses to evaluate strings, so a string predicate could not run inside it.
 */
export async function published<T extends object = Published>(
  page: Page,
  name: string,
  tokens: number[] | undefined,
  condition: (figure: T) => boolean = () => true,
  timeout = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await page.evaluate(
      (figureName) =>
        (globalThis as unknown as { __glassbox?: { figures?: Record<string, unknown> } }).__glassbox
          ?.figures?.[figureName] as T | undefined,
      name,
    );
    const shownTokens = (last as { tokens?: number[] } | undefined)?.tokens;
    if (last && (tokens === undefined || shownTokens?.join() === tokens.join()) && condition(last))
      return last;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `figure ${name} was not published as expected within ${timeout} ms; last: ${JSON.stringify(last)?.slice(0, 400)}`,
  );
}

/**
 * Waits until figure `name` is published with every field of `expected` equal (as JSON) to what it shows, and
 * returns it: for figures whose state is a selection rather than a text.
 */
export async function figureShowing<T>(
  page: Page,
  name: string,
  expected: object,
  timeout = 20_000,
): Promise<T> {
  await page.waitForFunction(
    ([key, want]) => {
      const shown = (globalThis as { __glassbox?: { figures?: Record<string, Record<string, unknown>> } })
        .__glassbox?.figures?.[key as string];
      return (
        shown !== undefined &&
        Object.entries(want as Record<string, unknown>).every(
          ([field, value]) => JSON.stringify(shown[field]) === JSON.stringify(value),
        )
      );
    },
    [name, expected] as const,
    { timeout },
  );
  return page.evaluate(
    (key) =>
      (globalThis as unknown as { __glassbox: { figures: Record<string, unknown> } }).__glassbox.figures[key],
    name,
  ) as Promise<T>;
}

/** The widths and schemes a chapter is seen in: light at 1280 and 375 px, dark at 1280 px. */
export const APPEARANCES = [
  [1280, 'light'],
  [375, 'light'],
  [1280, 'dark'],
] as const;

export type Appearance = (typeof APPEARANCES)[number];

/**
 * Opens chapter `slug` on `prompt` (and `query`, appended to the address) once per appearance, with reduced
 * motion; once `ready` has waited for its figures, checks axe (at 1280 px: 375 px lays out the same markup)
 * and saves `<slug>-<width>-<scheme>.png`; then `more`, if any, before the page closes.
 */
export async function checkAppearances(
  session: Session,
  slug: string,
  prompt: string,
  ready: (page: Page, hook: Hook) => Promise<unknown>,
  {
    query = '',
    more,
  }: { query?: string; more?: (page: Page, hook: Hook, appearance: Appearance) => Promise<void> } = {},
): Promise<void> {
  for (const appearance of APPEARANCES) {
    const [width, scheme] = appearance;
    const { page } = await openPage(session);
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
    await page.setViewportSize({ width, height: 900 });
    await page.goto(`${session.origin}/${slug}?prompt=${encodeURIComponent(prompt)}${query}`);
    const hook = await waitForAnalysis(page, prompt);
    await ready(page, hook);
    if (width === 1280) expect(await axeViolations(page), scheme).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, `${slug}-${width}-${scheme}.png`), fullPage: true });
    await more?.(page, hook, appearance);
    await page.close();
  }
}

/**
 * Puts `text` in the prompt in one input event and returns the milliseconds until figure `figure` shows its
 * tokens and the next frame is drawn: input event → worker → figures drawn → next frame.
 */
export function keystrokeToDrawn(page: Page, text: string, figure: string): Promise<number> {
  return page.evaluate(
    async ([value, name]) => {
      const box = document.querySelector<HTMLTextAreaElement>('#prompt')!;
      const started = performance.now();
      box.value = value;
      box.dispatchEvent(new Event('input', { bubbles: true }));
      type Published = { prompt: string; tokens: number[]; drawnFor: Record<string, number[] | undefined> };
      const hook = () => (globalThis as unknown as { __glassbox: Published }).__glassbox;
      // drawnFor, not figures: reading a figure's numbers makes their copy, which the reader never pays for.
      const drawn = () => hook().prompt === value && hook().drawnFor?.[name]?.join() === hook().tokens.join();
      while (!drawn()) await new Promise((resolve) => setTimeout(resolve, 1));
      await new Promise((resolve) => requestAnimationFrame(() => resolve(undefined)));
      return performance.now() - started;
    },
    [text, figure] as const,
  );
}
