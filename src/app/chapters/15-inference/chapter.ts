import type { ChapterDeclaration } from '../registry.ts';

export const chapter: ChapterDeclaration = {
  number: 15,
  slug: 'inference',
  title: 'Inference engineering',
  summary: 'The KV cache, prefill and decode, batching and throughput, measured live.',
};
