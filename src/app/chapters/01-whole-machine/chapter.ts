import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 1,
  slug: 'whole-machine',
  title: 'The whole machine',
  summary: 'Your text in, a next token out: every stage with its real shapes.',
};
