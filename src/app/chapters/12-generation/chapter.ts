import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 12,
  slug: 'generation',
  title: 'Generation',
  summary: 'The loop that writes one token at a time, and how surprised the model is by each.',
};
