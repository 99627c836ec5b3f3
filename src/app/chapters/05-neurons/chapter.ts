import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 5,
  slug: 'neurons',
  title: 'Neurons and matrix multiplication',
  summary: 'One neuron with sliders, then a real matrix × vector product from the model, row by row.',
};
