/**
 * The engine's source files, for the in-app source viewer, and the figures' data functions (the analysis a
 * figure does on the engine's numbers, such as PCA): each is highlighted at build time and loaded only when
 * its page is opened. Generated files (the WebAssembly bytes as base64) are left out.
 */
import type { Excerpt } from '../build/plugins.ts';

const modules = import.meta.glob<Excerpt>(
  [
    '../../engine/**/*.ts',
    '../../kernels/*.ts',
    '../../kernels/*.as',
    '../../formats/*.ts',
    '../../tokenizers/*.ts',
    './figures/*.ts',
    '!../../kernels/wasm-binaries.ts',
  ],
  { query: '?symbol=*&excerpt', import: 'default' },
);

/** Repository-relative path (e.g. "src/engine/forward.ts") → loader. */
export const SOURCES: Record<string, () => Promise<Excerpt>> = Object.fromEntries(
  Object.entries(modules).map(([key, load]) => [
    key.replace(/^(\.\.\/)+/, 'src/').replace(/^\.\//, 'src/app/lib/'),
    load,
  ]),
);

export const SOURCE_FILES = Object.keys(SOURCES).sort();
