#!/usr/bin/env node
/**
 * Serves the built course (dist/app) on localhost, cross-origin isolated: every response carries
 * Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, so the page may
 * use SharedArrayBuffer. It also forbids framing (Content-Security-Policy: frame-ancestors 'none', which a
 * page's own <meta> policy cannot say) and sniffing. Static files only; nothing leaves this machine.
 *
 *   node src/app/serve.js [--port 4173] [--host 127.0.0.1] [--dir dist/app] [--build]
 *
 * PORT and HOST work too. --build builds the site first (`vite build`), keeping its several hundred lines
 * in dist/app-build.log unless it fails, so that the last line printed is the address.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
};

/** Headers on every response: isolation (threads may share memory), no framing, no sniffing. */
export const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
  // The rest of the policy travels in each page's <meta> (svelte.config.js); a <meta> cannot forbid framing.
  'Content-Security-Policy': "frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
};

/** The file a URL path names: the path itself, then path.html, then path/index.html (prerendered pages). */
export function fileFor(root, urlPath) {
  let path;
  try {
    path = decodeURIComponent(urlPath.split('?')[0].split('#')[0]);
  } catch {
    return undefined;
  }
  const base = normalize(join(root, path));
  if (base !== root && !base.startsWith(root + sep)) return undefined;
  for (const candidate of [base, `${base}.html`, join(base, 'index.html')]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

/**
 * Starts the server; resolves with its URL once it listens (on the next free port if `port` is taken; port 0
 * picks any free one).
 */
export function serve({ dir = 'dist/app', port = 4173, host = '127.0.0.1', quiet = false } = {}) {
  const root = resolve(dir);
  if (!existsSync(join(root, 'index.html'))) {
    throw new Error(`${root}/index.html not found: build the app first (npm run build:app)`);
  }
  // Links made before long texts moved to the fragment carried up to ~40 KB in the query: accept them
  // (Node's default refuses more than 16 KB of headers with HTTP 431).
  const server = createServer({ maxHeaderSize: 64 * 1024 }, (request, response) => {
    for (const [name, value] of Object.entries(HEADERS)) response.setHeader(name, value);
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const file = fileFor(root, request.url ?? '/');
    const notFound = join(root, '404.html');
    if (!file && !existsSync(notFound)) {
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end(`Not found: ${request.url}`);
      return;
    }
    // An unknown path gets the course's 404 page (the chapters, and the way back).
    const sent = file ?? notFound;
    const immutable = sent.includes(`${sep}_app${sep}immutable${sep}`);
    response.writeHead(file ? 200 : 404, {
      'Content-Type': TYPES[extname(sent)] ?? 'application/octet-stream',
      'Content-Length': statSync(sent).size,
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (request.method === 'HEAD') response.end();
    else createReadStream(sent).pipe(response);
  });
  return new Promise((resolveUrl, reject) => {
    const listen = (at) => {
      server.once('error', (error) => {
        if (error.code === 'EADDRINUSE' && port !== 0 && at < port + 20) listen(at + 1);
        else reject(error);
      });
      server.listen(at, host, () => {
        const url = `http://${host === '0.0.0.0' ? 'localhost' : host}:${server.address().port}/`;
        if (!quiet)
          console.log(`\nGlassbox is being served at ${url}\nOpen it in a browser; Ctrl+C stops the server.`);
        resolveUrl({ url, close: () => new Promise((done) => server.close(() => done())) });
      });
    };
    listen(port);
  });
}

/**
 * Builds the site with `vite build`, its output kept in `log` (shown only if the build fails). Returns
 * whether it succeeded.
 */
export function build(log = 'dist/app-build.log') {
  const started = Date.now();
  process.stdout.write('Building the course (about half a minute)… ');
  const vite = join(dirname(new URL(import.meta.url).pathname), '../../node_modules/vite/bin/vite.js');
  const result = spawnSync(process.execPath, [vite, 'build'], { encoding: 'utf8', env: process.env });
  const output = `${result.stdout ?? ''}${result.stderr ?? ''}`;
  mkdirSync(dirname(log), { recursive: true });
  writeFileSync(log, output);
  if (result.status !== 0) {
    console.log('failed:\n');
    console.error(output);
    return false;
  }
  console.log(`done in ${Math.round((Date.now() - started) / 1000)} s (its output: ${log}).`);
  return true;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      dir: { type: 'string' },
      host: { type: 'string' },
      build: { type: 'boolean' },
    },
  });
  if (values.build && !build()) process.exit(1);
  serve({
    dir: values.dir ?? 'dist/app',
    port: Number(values.port ?? process.env.PORT ?? 4173),
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
  }).catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
