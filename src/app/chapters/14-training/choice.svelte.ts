/**
 * What the reader chose to train (chapter 14): the text's source, the preset and its settings, the kernels.
 * Kept for the tab's life, so that leaving the chapter and coming back finds the same choice.
 */
import type { KernelPreference, RunShape } from '$lib/train/protocol.ts';
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

/** The settings as the page's fields made them, for the end-to-end tests (read on demand). */
if (typeof window !== 'undefined') {
  (window as unknown as { __glassboxTrainerSettings: () => RunShape }).__glassboxTrainerSettings = () =>
    $state.snapshot(trainingChoice.settings);
}
