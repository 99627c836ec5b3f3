import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 8,
  slug: 'heads',
  title: 'Many heads',
  summary: 'Every head of every layer, what each one looks for, and what grouped-query attention saves.',
};
