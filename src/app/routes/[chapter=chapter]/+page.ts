/** Any written chapter, by its slug: the registry finds its folder and its page. */
import { error } from '@sveltejs/kit';
import { CHAPTERS, chapterBySlug, loadChapterPage } from '../../chapters/registry.ts';
import type { EntryGenerator, PageLoad } from './$types';

/** Prerender every written chapter. */
export const entries: EntryGenerator = () => CHAPTERS.map((chapter) => ({ chapter: chapter.slug }));

export const load: PageLoad = async ({ params }) => {
  const chapter = chapterBySlug(params.chapter);
  if (!chapter) error(404, `There is no chapter called "${params.chapter}".`);
  return { chapter, Page: await loadChapterPage(chapter) };
};
