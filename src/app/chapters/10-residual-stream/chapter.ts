import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 10,
  slug: 'residual-stream',
  title: 'Residual stream and normalization',
  summary: 'RMSNorm step by step, the stream across the layers, and what each layer would predict.',
};
