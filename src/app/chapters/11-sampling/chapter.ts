import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 11,
  slug: 'sampling',
  title: 'Logits, softmax and sampling',
  summary: 'The whole next-token distribution and how temperature, top-k, top-p and min-p cut it.',
};
