import { error } from '@sveltejs/kit';
import { SOURCES, SOURCE_FILES } from '$lib/sources.ts';
import type { EntryGenerator, PageLoad } from './$types';

export const entries: EntryGenerator = () => SOURCE_FILES.map((file) => ({ file }));

export const load: PageLoad = async ({ params }) => {
  const source = SOURCES[params.file];
  if (!source) error(404, `${params.file} is not one of the engine's source files`);
  return { excerpt: await source() };
};
