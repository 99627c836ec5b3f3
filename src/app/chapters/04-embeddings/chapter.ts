import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 4,
  slug: 'embeddings',
  title: 'Embeddings',
  summary: 'Each token becomes a row of a learned table: your rows, their neighbours, the whole map.',
};
