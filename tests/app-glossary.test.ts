/**
 * The glossary and the chapters agree: every term is marked (`<Term id=…>`) exactly once, on the page of the
 * chapter the glossary names, and every mark names a term of the glossary.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GLOSSARY } from '../src/app/lib/glossary.ts';

const ROOT = 'src/app/chapters';
/** The page of a chapter folder, or '' for a planned chapter (no page yet). */
const pageOf = (folder: string) => {
  const path = join(ROOT, folder, 'page.svx');
  return existsSync(path) ? readFileSync(path, 'utf8') : '';
};
const marks = readdirSync(ROOT, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .flatMap((entry) => {
    const page = pageOf(entry.name);
    const slug = entry.name.replace(/^\d+-/, '');
    return [...page.matchAll(/<Term id="([^"]+)"/g)].map((match) => ({ slug, id: match[1] }));
  });

describe('the glossary', () => {
  it('has each term marked once, in the chapter it names', () => {
    for (const [id, entry] of Object.entries(GLOSSARY)) {
      const found = marks.filter((mark) => mark.id === id);
      expect(found, id).toEqual([{ slug: entry.chapter, id }]);
    }
  });
  it('never starts a line of a page with <Term> (mdsvex would read it as a block and end the paragraph)', () => {
    for (const entry of readdirSync(ROOT)) {
      expect(pageOf(entry).match(/^\s*<Term /m), entry).toBeNull();
    }
  });
  it('knows every term a chapter marks', () => {
    for (const mark of marks) expect(Object.keys(GLOSSARY), `${mark.slug}: ${mark.id}`).toContain(mark.id);
  });
});
