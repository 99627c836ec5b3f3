import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 7,
  slug: 'attention',
  title: 'Attention',
  summary: 'Queries, keys and values of your tokens: scores, the causal mask, softmax and the weighted sum.',
};
