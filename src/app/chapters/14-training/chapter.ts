import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 14,
  slug: 'training',
  title: 'Training a model',
  summary: 'Train a tiny model live in your browser and watch its loss, samples and attention form.',
};
