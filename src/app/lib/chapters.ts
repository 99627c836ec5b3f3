/** The chapters, in reading order: the table of contents, previous/next and progress all read this list. */
export interface Chapter {
  slug: string;
  number: number;
  title: string;
  /** One line for the table of contents. */
  summary: string;
}

export const CHAPTERS: readonly Chapter[] = [
  {
    slug: 'whole-machine',
    number: 1,
    title: 'The whole machine',
    summary: 'Your text in, a next token out: every stage with its real shapes.',
  },
  {
    slug: 'text-to-bytes',
    number: 2,
    title: 'Text to bytes',
    summary: 'Characters, code points and the UTF-8 bytes the model starts from.',
  },
  {
    slug: 'tokenization',
    number: 3,
    title: 'Tokenization',
    summary: 'Bytes merged into tokens: GPT-4o’s tokenizer, ours, and how BPE learns its merges.',
  },
  {
    slug: 'embeddings',
    number: 4,
    title: 'Embeddings',
    summary: 'Each token becomes a row of a learned table: your rows, their neighbours, the whole map.',
  },
  {
    slug: 'neurons',
    number: 5,
    title: 'Neurons and matrix multiplication',
    summary: 'One neuron with sliders, then a real matrix × vector product from the model, row by row.',
  },
  {
    slug: 'position',
    number: 6,
    title: 'Position',
    summary: 'Why attention needs to know where a token is, and how RoPE tells it by rotating.',
  },
];

export function chapterBySlug(slug: string): Chapter | undefined {
  return CHAPTERS.find((chapter) => chapter.slug === slug);
}

export function neighbours(slug: string): { previous?: Chapter; next?: Chapter } {
  const at = CHAPTERS.findIndex((chapter) => chapter.slug === slug);
  if (at < 0) return {};
  return { previous: CHAPTERS[at - 1], next: CHAPTERS[at + 1] };
}
