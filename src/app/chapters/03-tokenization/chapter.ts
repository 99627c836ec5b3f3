import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 3,
  slug: 'tokenization',
  title: 'Tokenization',
  summary: 'Bytes merged into tokens: GPT-4o’s tokenizer, ours, and how BPE learns its merges.',
};
