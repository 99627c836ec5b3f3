import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 13,
  slug: 'learning',
  title: 'Learning',
  summary: 'Cross-entropy, gradients, backpropagation and optimizers on a real loss surface.',
};
