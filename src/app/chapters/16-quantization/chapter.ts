import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 16,
  slug: 'quantization',
  title: 'Quantization',
  summary: 'From 32-bit floats to 4-bit groups: sizes, errors and changed outputs, measured.',
};
