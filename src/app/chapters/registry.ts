/// <reference types="vite/client" />
/**
 * The chapters, found rather than listed: every folder `NN-slug/` beside this file is a chapter. Its
 * `chapter.ts` declares the number, slug, title and summary; a `page.svx` makes it written (readable),
 * otherwise it is planned and only named in the "coming next" line. A chapter's folder also holds its
 * figures, its pure analysis module and, when its figures ask the engine worker anything, `worker.ts`
 * (handlers registered under the chapter's slug; see lib/worker/server.ts). Adding a chapter is adding a
 * folder: the table of contents, the pages, previous/next and progress all read the lists below.
 */
/// <reference types="vite/client" />
import type { Component } from 'svelte';

export interface ChapterDeclaration {
  number: number;
  /** The chapter's address, e.g. "embeddings" for /embeddings; also its worker namespace. */
  slug: string;
  title: string;
  /** One line for the table of contents. */
  summary: string;
}

export interface Chapter extends ChapterDeclaration {
  /** The folder, e.g. "04-embeddings". */
  folder: string;
  /** True when the folder has its page; planned chapters only appear in the "coming next" line. */
  written: boolean;
}

type PageModule = { default: Component };

const declarations = import.meta.glob<ChapterDeclaration>('./*/chapter.ts', {
  eager: true,
  import: 'chapter',
});
const pages = import.meta.glob<PageModule>('./*/page.svx');

/** The folder of a module path such as "./04-embeddings/chapter.ts". */
function folderOf(path: string): string {
  return path.split('/')[1];
}

/**
 * The chapters in reading order, checked: each folder is named `NN-slug` after its own declaration, and
 * numbers run 1, 2, 3 … without a gap or a repeat, and no two chapters share a slug (their address and
 * worker namespace).
 */
export function chaptersFrom(
  found: Record<string, ChapterDeclaration>,
  pagePaths: readonly string[],
): Chapter[] {
  const written = new Set(pagePaths.map(folderOf));
  const chapters = Object.entries(found)
    .map(([path, declaration]) => ({ ...declaration, folder: folderOf(path), written: false }))
    .map((chapter) => ({ ...chapter, written: written.has(chapter.folder) }))
    .sort((a, b) => a.number - b.number);
  const slugs = new Set<string>();
  chapters.forEach((chapter, i) => {
    if (slugs.has(chapter.slug))
      throw new Error(`two chapters are called "${chapter.slug}": slugs must differ`);
    slugs.add(chapter.slug);
    const expected = `${String(chapter.number).padStart(2, '0')}-${chapter.slug}`;
    if (chapter.folder !== expected) {
      throw new Error(`chapter folder ${chapter.folder} declares chapter ${expected}: rename one of them`);
    }
    if (chapter.number !== i + 1) {
      throw new Error(
        `chapter ${chapter.folder}: expected number ${i + 1} (chapters are numbered 1, 2, 3 …)`,
      );
    }
  });
  return chapters;
}

/** Every chapter of the course, written or planned. */
export const ALL_CHAPTERS: readonly Chapter[] = chaptersFrom(declarations, Object.keys(pages));

/** The chapters a reader can open, in order: the table of contents, previous/next and progress. */
export const CHAPTERS: readonly Chapter[] = ALL_CHAPTERS.filter((chapter) => chapter.written);

/** The chapters still to come, in order, for the "coming next" line. */
export const PLANNED: readonly Chapter[] = ALL_CHAPTERS.filter((chapter) => !chapter.written);

export function chapterBySlug(slug: string): Chapter | undefined {
  return CHAPTERS.find((chapter) => chapter.slug === slug);
}

export function neighbours(slug: string): { previous?: Chapter; next?: Chapter } {
  const at = CHAPTERS.findIndex((chapter) => chapter.slug === slug);
  if (at < 0) return {};
  return { previous: CHAPTERS[at - 1], next: CHAPTERS[at + 1] };
}

/** The page of a written chapter (loaded when it is opened). */
export async function loadChapterPage(chapter: Chapter): Promise<Component> {
  const load = pages[`./${chapter.folder}/page.svx`];
  if (!load) throw new Error(`chapter ${chapter.folder} has no page.svx`);
  return (await load()).default;
}
