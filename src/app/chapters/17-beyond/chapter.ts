import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 17,
  slug: 'beyond',
  title: 'Scale and beyond',
  summary: 'From our model to frontier models, post-training, and models that read images and act.',
};
