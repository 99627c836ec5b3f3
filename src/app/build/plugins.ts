/**
 * Vite plugins for the course app, both doing their work at build time:
 *
 *  - `sourceExcerpts`: `import x from '…/forward.ts?symbol=forward&excerpt'` gives the text of the
 *    function `forward` (with its doc comment) as it is in the source file today, its line numbers and
 *    highlighted HTML, so the code a chapter shows is the code that runs. `?symbol=*&excerpt` gives the whole file.
 *  - `houseModelAssets`: serves the default model (models/house: config.json, model.safetensors,
 *    tokenizer.json) at /models/house/ in development and copies it into the built site, so the app loads
 *    it from its own origin. A missing file is reported at build time and, in the page, by a clear message.
 *    The same plugin serves the house model's draft (models/house-draft, at /models/house-draft/), which only
 *    chapter 15 fetches, for speculative decoding. Beside the house model it serves its history when the
 *    folder has one (checkpoints/index.json, the GGUF files the index names, and the run's train-log.jsonl,
 *    for chapter 14's time-machine); a folder without one builds as before, and the page then does not offer
 *    the time-machine. The page fetches none of these until a figure that shows them asks.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join, relative, resolve } from 'node:path';
import type { Plugin } from 'vite';
import { corpusBooks, type Book } from '../../corpus/books.ts';
import { highlight } from './highlight.ts';

export interface Excerpt {
  /** Repository-relative path, e.g. "src/engine/forward.ts". */
  file: string;
  symbol: string;
  /** 1-based, inclusive. */
  startLine: number;
  endLine: number;
  code: string;
  /** Highlighted HTML, one line per source line. */
  html: string;
}

/** The lines of `symbol`'s declaration (and the doc comment just above it) in `source`. */
export function findSymbol(source: string, symbol: string, file: string): { start: number; end: number } {
  const lines = source.split('\n');
  const declaration = new RegExp(
    String.raw`^(export )?(async )?(function\*?|class|interface|type|const|let) ${symbol.replace(/\$/g, '\\$')}\b`,
  );
  const at = lines.findIndex((line) => declaration.test(line));
  if (at < 0) throw new Error(`excerpt: no top-level declaration of "${symbol}" in ${file}`);
  let start = at;
  if (lines[start - 1]?.trim().endsWith('*/')) {
    while (start > 0 && !lines[start].trimStart().startsWith('/**')) start--;
  }
  let end = at;
  // A declaration ends on its own line, or at the first line that closes it at column 0: "}", "};", "];".
  if (!/;\s*$/.test(lines[at])) {
    while (end < lines.length && !/^[}\]]\)?;?\s*$/.test(lines[end])) end++;
  }
  return { start: start + 1, end: Math.min(end + 1, lines.length) };
}

export function sourceExcerpts(root: string): Plugin {
  return {
    name: 'glassbox-source-excerpts',
    enforce: 'pre',
    load(id) {
      const [path, query] = id.split('?');
      if (!query) return;
      const params = new URLSearchParams(query);
      if (!params.has('excerpt')) return;
      const symbol = params.get('symbol') ?? '*';
      const source = readFileSync(path, 'utf8');
      this.addWatchFile(path);
      const file = relative(root, path).split('\\').join('/');
      const lines = source.replace(/\n$/, '').split('\n');
      const { start, end } =
        symbol === '*' ? { start: 1, end: lines.length } : findSymbol(source, symbol, file);
      const code = lines.slice(start - 1, end).join('\n');
      const excerpt: Excerpt = { file, symbol, startLine: start, endLine: end, code, html: highlight(code) };
      return `export default ${JSON.stringify(excerpt)};`;
    },
  };
}

/** The files of a model folder the app loads. */
export const MODEL_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'] as const;

/** The files beside a model that only some figures fetch: the training log, and the history's index. */
export const HISTORY_LOG = 'train-log.jsonl';
export const HISTORY_INDEX = 'checkpoints/index.json';

/**
 * The history of a model folder, when it has one: its checkpoints' index, every file that index names, and
 * the training log (paths relative to the folder). Nothing without a usable index (the page shows the log
 * only beside the time-machine), and nothing, with a warning, when the index cannot be read or names a file
 * that is not there: the page then offers no time-machine rather than one with missing files.
 */
export function historyFiles(source: string, warn: (message: string) => void = () => {}): string[] {
  const indexPath = join(source, HISTORY_INDEX);
  if (!existsSync(indexPath)) return [];
  try {
    const index = JSON.parse(readFileSync(indexPath, 'utf8')) as { steps: { file: string | null }[] };
    const named = index.steps.flatMap((step) => (step.file ? [`checkpoints/${step.file}`] : []));
    const missing = named.filter((name) => name.includes('..') || !existsSync(join(source, name)));
    if (missing.length > 0) {
      warn(`${indexPath} names files that are not there (${missing.join(', ')}): the history is not served`);
      return [];
    }
    const log = existsSync(join(source, HISTORY_LOG)) ? [HISTORY_LOG] : [];
    return [...log, HISTORY_INDEX, ...named];
  } catch (error) {
    warn(`${indexPath} could not be read (${(error as Error).message}): the history is not served`);
    return [];
  }
}

/**
 * `import hasHistory from 'virtual:glassbox-house-history'`: whether the house model's folder has a history
 * the site serves, decided when the site is built, so that a site without one never asks for it.
 */
export const HOUSE_HISTORY_MODULE = 'virtual:glassbox-house-history';

export function houseModelAssets(folder: string, at = 'models/house'): Plugin {
  const source = resolve(folder);
  const present = () => MODEL_FILES.filter((name) => existsSync(join(source, name)));
  const resolvedHistory = `\0${HOUSE_HISTORY_MODULE}`;
  /** The history is the house model's alone (the draft's log is of no use to the page). */
  const history = (warn?: (message: string) => void) =>
    at === 'models/house' ? historyFiles(source, warn) : [];
  return {
    name: `glassbox-model-${at}`,
    resolveId(id) {
      if (at === 'models/house' && id === HOUSE_HISTORY_MODULE) return resolvedHistory;
    },
    load(id) {
      if (id !== resolvedHistory) return;
      return `export default ${history().includes(HISTORY_INDEX)};`;
    },
    configureServer(server) {
      server.middlewares.use(`/${at}/`, (request, response, next) => {
        const name = (request.url ?? '').split('?')[0].replace(/^\//, '');
        const served = history((message) => server.config.logger.warn(message));
        if (!(MODEL_FILES as readonly string[]).includes(name) && !served.includes(name)) return next();
        const file = join(source, name);
        if (!existsSync(file)) {
          response.statusCode = 404;
          response.end(`${file} not found`);
          return;
        }
        response.setHeader('Content-Length', String(statSync(file).size));
        response.end(readFileSync(file));
      });
    },
    generateBundle() {
      if (this.environment?.name !== 'client') return;
      const found = present();
      const missing = MODEL_FILES.filter((name) => !found.includes(name));
      if (missing.length > 0) {
        this.warn(
          `the model served at /${at}/ is incomplete: ${missing.join(', ')} not found in ${source}; ` +
            'the app will say so when it loads',
        );
      }
      for (const name of [...found, ...history((message) => this.warn(message))]) {
        this.emitFile({
          type: 'asset',
          fileName: `${at}/${name}`,
          source: readFileSync(join(source, name)),
        });
      }
    },
  };
}

/** One entry of /corpus/books/index.json: a book the page's trainer can fetch as /corpus/books/<id>.txt. */
export interface BookEntry {
  id: string;
  title: string;
  /** Characters (UTF-16 code units) of the book's text. */
  characters: number;
}

/**
 * `corpusBookAssets`: the corpus (corpus/web.txt.gz, corpus/brown.txt.gz) cut into books (src/corpus/books.ts)
 * at build time, each served as plain text at /corpus/books/<id>.txt with an index.json, so that the
 * page's trainer fetches only the book the reader picks. A corpus file that is missing is skipped, with a
 * warning.
 */
export function corpusBookAssets(folder = 'corpus', files = ['web.txt.gz', 'brown.txt.gz']): Plugin {
  let books: Book[] | undefined;
  const read = (warn: (message: string) => void) =>
    (books ??= files.flatMap((name) => {
      const path = join(resolve(folder), name);
      if (!existsSync(path)) {
        warn(`${path} not found: its books are not served (run npm run corpus)`);
        return [];
      }
      return corpusBooks(gunzipSync(readFileSync(path)).toString('utf8'));
    }));
  const index = (list: Book[]): BookEntry[] =>
    list.map((book) => ({ id: book.id, title: book.title, characters: book.text.length }));
  return {
    name: 'glassbox-corpus-books',
    configureServer(server) {
      server.middlewares.use('/corpus/books/', (request, response, next) => {
        const name = (request.url ?? '').split('?')[0].replace(/^\//, '');
        const list = read((message) => server.config.logger.warn(message));
        if (name === 'index.json') {
          response.setHeader('Content-Type', 'application/json');
          response.end(JSON.stringify(index(list)));
          return;
        }
        const book = list.find((entry) => `${entry.id}.txt` === name);
        if (!book) return next();
        response.setHeader('Content-Type', 'text/plain; charset=utf-8');
        response.end(book.text);
      });
    },
    generateBundle() {
      if (this.environment?.name !== 'client') return;
      const list = read((message) => this.warn(message));
      this.emitFile({
        type: 'asset',
        fileName: 'corpus/books/index.json',
        source: JSON.stringify(index(list)),
      });
      for (const book of list) {
        this.emitFile({ type: 'asset', fileName: `corpus/books/${book.id}.txt`, source: book.text });
      }
    },
  };
}
