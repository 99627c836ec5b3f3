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
];

export function chapterBySlug(slug: string): Chapter | undefined {
  return CHAPTERS.find((chapter) => chapter.slug === slug);
}

export function neighbours(slug: string): { previous?: Chapter; next?: Chapter } {
  const at = CHAPTERS.findIndex((chapter) => chapter.slug === slug);
  if (at < 0) return {};
  return { previous: CHAPTERS[at - 1], next: CHAPTERS[at + 1] };
}
