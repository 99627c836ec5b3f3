/**
 * What the reader chose to train (chapter 14): the text's source, the preset and its settings, the kernels.
 * Kept for the tab's life, so that leaving the chapter and coming back finds the same choice.
 */
import { asset } from '$app/paths';
import { SOURCES } from '$lib/sources.ts';
import type { KernelPreference, RunShape } from '$lib/train/protocol.ts';
import type { BookEntry } from '../../build/plugins.ts';
import { DEFAULT_BOOK, DEFAULT_PRESET } from './presets.ts';

export interface TrainingChoice {
  source: 'book' | 'pasted' | 'code';
  bookId: string;
  pasted: string;
  presetId: string;
  settings: RunShape;
  sampleEvery: number;
  kernels: KernelPreference;
}

export const trainingChoice: TrainingChoice = $state({
  source: 'book',
  bookId: DEFAULT_BOOK,
  pasted: '',
  presetId: DEFAULT_PRESET.id,
  settings: { ...DEFAULT_PRESET.settings },
  sampleEvery: DEFAULT_PRESET.sampleEvery,
  kernels: 'auto',
});

/** The engine's own source files offered as "code" (the folder the reader is reading about). */
export const CODE_FOLDER = 'src/engine/';

/** The books the site serves (corpus/books/index.json), once listed. */
export const corpus: { books: BookEntry[] } = $state({ books: [] });

/** The text the reader chose, fetched or gathered now, with a label that says what it is. */
export async function chosenText(): Promise<{ label: string; text: string }> {
  const choice = trainingChoice;
  if (choice.source === 'pasted') return { label: 'your own text', text: choice.pasted };
  if (choice.source === 'code') {
    const files = Object.keys(SOURCES)
      .filter((path) => path.startsWith(CODE_FOLDER))
      .sort();
    const excerpts = await Promise.all(files.map((path) => SOURCES[path]()));
    // One block per file, headed by its path: the split holds out whole files for validation.
    const text = excerpts.map((excerpt) => `// ${excerpt.file}\n${excerpt.code}`).join('\n\n');
    return { label: `the engine's own source (${files.length} files of ${CODE_FOLDER})`, text };
  }
  const book = corpus.books.find((entry) => entry.id === choice.bookId);
  const response = await fetch(asset(`/corpus/books/${choice.bookId}.txt`));
  if (!response.ok) throw new Error(`the book could not be loaded (HTTP ${response.status})`);
  return { label: book?.title ?? choice.bookId, text: await response.text() };
}

/** The settings as the page's fields made them, for the end-to-end tests (read on demand). */
if (typeof window !== 'undefined') {
  (window as unknown as { __glassboxTrainerSettings: () => RunShape }).__glassboxTrainerSettings = () =>
    $state.snapshot(trainingChoice.settings);
}
