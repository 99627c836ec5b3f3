import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 2,
  slug: 'text-to-bytes',
  title: 'Text to bytes',
  summary: 'Characters, code points and the UTF-8 bytes the model starts from.',
};
