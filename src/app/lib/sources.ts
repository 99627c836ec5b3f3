/**
 * The engine's source files and the shared analyses (src/analysis), for the in-app source viewer, and the
 * chapters' own modules (the analysis a figure does on the engine's numbers, such as PCA, and the handlers
 * that slice the Trace in the worker): each is highlighted at build time and loaded only when its page is
 * opened. Generated files (the WebAssembly bytes as base64) are left out.
 */
import type { Excerpt } from '../build/plugins.ts';

const modules = import.meta.glob<Excerpt>(
  [
    '../../engine/**/*.ts',
    '../../analysis/*.ts',
    '../../kernels/*.ts',
    '../../kernels/*.as',
    '../../formats/*.ts',
    '../../tokenizers/*.ts',
    '../chapters/*/*.ts',
    // The page's trainer (chapter 14 shows its checkpoint store).
    './train/*.ts',
    '!../chapters/*/chapter.ts',
    '!../../kernels/wasm-binaries.ts',
  ],
  { query: '?symbol=*&excerpt', import: 'default' },
);

/** Repository-relative path (e.g. "src/engine/forward.ts") → loader. */
export const SOURCES: Record<string, () => Promise<Excerpt>> = Object.fromEntries(
  Object.entries(modules).map(([key, load]) => [
    key.startsWith('../chapters/')
      ? key.replace(/^\.\.\//, 'src/app/')
      : key.startsWith('./')
        ? key.replace(/^\.\//, 'src/app/lib/')
        : key.replace(/^(\.\.\/)+/, 'src/'),
    load,
  ]),
);

export const SOURCE_FILES = Object.keys(SOURCES).sort();
