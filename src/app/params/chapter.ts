/** `/[chapter=chapter]` matches only the slugs of written chapters; anything else is the 404 page. */
import type { ParamMatcher } from '@sveltejs/kit';
import { chapterBySlug } from '../chapters/registry.ts';

export const match: ParamMatcher = (slug) => chapterBySlug(slug) !== undefined;
