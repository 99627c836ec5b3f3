/**
 * Runs the kernels in Chromium: builds the page in ./page with Vite (the app's bundler), serves it on
 * localhost with the headers that make a page cross-origin isolated (COOP/COEP: SharedArrayBuffer, and
 * with it threads, need them), opens it in the system's Chromium through playwright-core, and returns
 * what the page's task reports. Used by `npm run bench` (bench-browser.ts) and tests/kernels-browser.test.ts.
 *
 * The browser is Debian's /usr/bin/chromium (`apt-get install -y chromium`), never one Playwright
 * downloads; it starts with a fresh profile and no network features. onnxruntime-web's files are served
 * from node_modules at /ort/, so nothing is fetched from outside.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import type { PageMessage, PageRequest } from './page/protocol.ts';

export const CHROMIUM = process.env.GLASSBOX_CHROMIUM ?? '/usr/bin/chromium';

/** Headless, and quiet: no sandbox (containers), no GPU, no QUIC, no first-run UI, no background traffic. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Why Chromium cannot run here, or undefined. */
export function chromiumMissing(): string | undefined {
  return existsSync(CHROMIUM)
    ? undefined
    : `${CHROMIUM} not found (install it: apt-get install -y chromium; or set GLASSBOX_CHROMIUM)`;
}

/** The repository root: the nearest folder above this file (in scripts/ or dist/scripts/) with a package.json. */
function repositoryRoot(): string {
  let folder = import.meta.dirname;
  while (!existsSync(join(folder, 'package.json'))) {
    const parent = resolve(folder, '..');
    if (parent === folder) throw new Error(`no package.json above ${import.meta.dirname}`);
    folder = parent;
  }
  return folder;
}

/** The page's sources (Vite bundles them: run from dist/ too, this reads scripts/browser/page). */
const PAGE = join(repositoryRoot(), 'scripts', 'browser', 'page');
const ORT = join(repositoryRoot(), 'node_modules', 'onnxruntime-web', 'dist');

/** Builds the page into a new temporary folder and returns it. */
async function buildPage(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'glassbox-page-'));
  await build({
    configFile: false,
    root: PAGE,
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true, target: 'esnext', minify: false, reportCompressedSize: false },
    worker: { format: 'es' },
  });
  return outDir;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** The file a request path names: /ort/… from onnxruntime-web, everything else from the built page. */
function fileFor(urlPath: string, outDir: string): string | undefined {
  const path = decodeURIComponent(urlPath.split('?')[0]);
  const [root, rest] = path.startsWith('/ort/')
    ? [ORT, path.slice(5)]
    : [outDir, path.slice(1) || 'index.html'];
  const file = normalize(join(root, rest));
  return file.startsWith(root + sep) && existsSync(file) && statSync(file).isFile() ? file : undefined;
}

/** Serves the built page on a free localhost port, cross-origin isolated. */
async function servePage(outDir: string): Promise<{ server: Server; origin: string }> {
  const server = createServer((request, response) => {
    const file = fileFor(request.url ?? '/', outDir);
    response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    response.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    response.setHeader('Cache-Control', 'no-store');
    if (!file) {
      response.writeHead(404).end('not found');
      return;
    }
    response.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' });
    response.end(readFileSync(file));
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

export interface RunOptions {
  /** Each line the page logs, as it comes. */
  onLog?: (line: string) => void;
  timeoutMs?: number;
}

/** Builds and serves the page, runs `request` in Chromium, and returns the task's result. */
export async function runInChromium<T>(request: PageRequest, options: RunOptions = {}): Promise<T> {
  const missing = chromiumMissing();
  if (missing) throw new Error(missing);
  const outDir = await buildPage();
  const profile = mkdtempSync(join(tmpdir(), 'glassbox-chromium-'));
  const { server, origin } = await servePage(outDir);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    let done: (result: T) => void = () => {};
    let fail: (error: Error) => void = () => {};
    const outcome = new Promise<T>((resolveOutcome, rejectOutcome) => {
      done = resolveOutcome;
      fail = rejectOutcome;
    });
    await page.exposeFunction('glassboxReport', (message: PageMessage) => {
      if (message.type === 'log') options.onLog?.(message.line);
      else if (message.type === 'result') done(message.result as T);
      else fail(new Error(`Chromium: ${message.message}`));
    });
    page.on('pageerror', (error) => fail(new Error(`Chromium page error: ${error.message}`)));
    timer = setTimeout(() => fail(new Error('Chromium: timed out')), options.timeoutMs ?? 600_000);
    const train = request.train ? `&train=${encodeURIComponent(JSON.stringify(request.train))}` : '';
    const parts = request.parts
      ? `&parts=${[request.parts.batching ? 'batching' : '', request.parts.quantized ? 'quantized' : ''].join(',')}`
      : '';
    await page.goto(
      `${origin}/index.html?task=${request.task}${request.quick ? '&quick' : ''}${train}${parts}`,
    );
    return await outcome;
  } finally {
    clearTimeout(timer);
    await context.close();
    server.close();
    rmSync(profile, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}
