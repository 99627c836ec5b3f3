import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 9,
  slug: 'feed-forward',
  title: 'The feed-forward block',
  summary: 'SwiGLU’s gate, up and down projections on a real token, and its most active neurons.',
};
