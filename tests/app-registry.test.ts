/** The chapter registry (src/app/chapters/registry.ts): chapters are found as folders, checked, in order. */
import { readdirSync, existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_CHAPTERS, CHAPTERS, PLANNED, chaptersFrom } from '../src/app/chapters/registry.ts';

const FOLDER = 'src/app/chapters';
const declaration = (number: number, slug: string) => ({ number, slug, title: slug, summary: '' });

describe('the chapter registry', () => {
  it('finds every chapter folder, in number order, written exactly where a page.svx exists', () => {
    const folders = readdirSync(FOLDER, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
    expect(ALL_CHAPTERS.map((chapter) => chapter.folder)).toEqual(folders);
    for (const chapter of ALL_CHAPTERS) {
      expect(chapter.written).toBe(existsSync(`${FOLDER}/${chapter.folder}/page.svx`));
    }
    // Chapters 1–7 are written (later ones may be written out of order); none is both written and planned.
    const written = CHAPTERS.map((chapter) => chapter.number);
    expect(written.slice(0, 7)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(PLANNED.filter((chapter) => written.includes(chapter.number))).toEqual([]);
  });

  it('refuses a folder named unlike its declaration, a gap or repeat in the numbers, and a repeated slug', () => {
    expect(() => chaptersFrom({ './01-one/chapter.ts': declaration(1, 'two') }, [])).toThrow(
      /folder 01-one declares chapter 01-two/,
    );
    expect(() =>
      chaptersFrom(
        { './01-one/chapter.ts': declaration(1, 'one'), './03-three/chapter.ts': declaration(3, 'three') },
        [],
      ),
    ).toThrow(/expected number 2/);
    expect(() =>
      chaptersFrom(
        { './01-one/chapter.ts': declaration(1, 'one'), './02-one/chapter.ts': declaration(2, 'one') },
        [],
      ),
    ).toThrow(/two chapters are called "one"/);
  });

  it('marks a chapter written when its folder has a page', () => {
    const chapters = chaptersFrom(
      { './02-b/chapter.ts': declaration(2, 'b'), './01-a/chapter.ts': declaration(1, 'a') },
      ['./01-a/page.svx'],
    );
    expect(chapters.map((chapter) => [chapter.slug, chapter.written])).toEqual([
      ['a', true],
      ['b', false],
    ]);
  });
});
