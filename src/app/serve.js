#!/usr/bin/env node
/**
 * Serves the built course (dist/app) on localhost, cross-origin isolated: every response carries
 * Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, so the page may
 * use SharedArrayBuffer (the engine's threads need it). Static files only; nothing leaves this machine.
 *
 *   node src/app/serve.js [--port 4173] [--dir dist/app]      (PORT and HOST work too)
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.safetensors': 'application/octet-stream',
  '.bin': 'application/octet-stream',
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
  const server = createServer((request, response) => {
    response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
    response.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    response.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    response.setHeader('X-Content-Type-Options', 'nosniff');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const file = fileFor(root, request.url ?? '/');
    if (!file) {
      const notFound = join(root, '404.html');
      response.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      response.end(existsSync(notFound) ? undefined : `Not found: ${request.url}`);
      return;
    }
    const immutable = file.includes(`${sep}_app${sep}immutable${sep}`);
    response.writeHead(200, {
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': statSync(file).size,
      'Cache-Control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (request.method === 'HEAD') response.end();
    else createReadStream(file).pipe(response);
  });
  return new Promise((resolveUrl, reject) => {
    const listen = (at) => {
      server.once('error', (error) => {
        if (error.code === 'EADDRINUSE' && port !== 0 && at < port + 20) listen(at + 1);
        else reject(error);
      });
      server.listen(at, host, () => {
        const url = `http://${host === '0.0.0.0' ? 'localhost' : host}:${server.address().port}/`;
        if (!quiet) console.log(`Glassbox is being served at ${url}  (Ctrl+C stops it)`);
        resolveUrl({ url, close: () => new Promise((done) => server.close(() => done())) });
      });
    };
    listen(port);
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, dir: { type: 'string' }, host: { type: 'string' } },
  });
  serve({
    dir: values.dir ?? 'dist/app',
    port: Number(values.port ?? process.env.PORT ?? 4173),
    host: values.host ?? process.env.HOST ?? '127.0.0.1',
  }).catch((error) => {
    console.error(error.message);
    process.exit(1);
  });
}
