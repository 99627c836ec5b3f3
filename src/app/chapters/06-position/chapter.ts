import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 6,
  slug: 'position',
  title: 'Position',
  summary: 'Why attention needs to know where a token is, and how RoPE tells it by rotating.',
};
