/**
 * Splitting the Bible corpus (corpus/web.txt.gz, made by scripts/corpus.ts) into training and validation
 * text. The corpus is a list of chapters, each a heading line ("Genesis 1") followed by one verse per line,
 * with a blank line between chapters. We hold out whole chapters, never single verses: neighbouring verses
 * share names and phrases, so a verse-level split would let the model "see" most of every validation
 * chapter while training.
 *
 * The rule, stated so it can be re-implemented anywhere:
 *   a chapter is held out for validation when FNV-1a-32( UTF-8 of `glassbox-val:` + heading ) mod 100 < 5.
 * A hash of the heading (rather than "every 20th chapter") spreads the held-out chapters over all books
 * without lining up with any structure of the text, and a chapter's fate never changes when other chapters
 * are added or removed. Pure and browser-safe: no Node imports.
 */

/** Mixed into every hash so that the split can be changed deliberately (and only deliberately). */
export const VALIDATION_SEED = 'glassbox-val:';
/** Percentage of chapters (in expectation) held out. */
export const VALIDATION_PERCENT = 5;

export interface Chapter {
  /** First line of the block, e.g. "Genesis 1" or "Psalm 23". */
  heading: string;
  /** The whole block: heading line and verse lines, without a trailing newline. */
  text: string;
}

export interface CorpusSplit {
  train: string;
  val: string;
  trainChapters: Chapter[];
  valChapters: Chapter[];
}

/** The 32-bit FNV-1a hash of some bytes: tiny, well known, and identical in every language. */
export function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** True when the chapter with this heading belongs to the validation set. */
export function isValidationChapter(heading: string): boolean {
  const hash = fnv1a32(new TextEncoder().encode(VALIDATION_SEED + heading));
  return hash % 100 < VALIDATION_PERCENT;
}

/** Cut the corpus into chapters (blocks separated by a blank line). */
export function parseChapters(corpus: string): Chapter[] {
  return corpus
    .replace(/\r\n/g, '\n')
    .split(/\n{2,}/)
    .map((block) => block.trim())
    .filter((block) => block.length > 0)
    .map((block) => ({ heading: block.split('\n', 1)[0], text: block }));
}

/** Join chapters back into corpus layout: blank line between chapters, newline at the end. */
export function joinChapters(chapters: Chapter[]): string {
  return chapters.length === 0 ? '' : chapters.map((chapter) => chapter.text).join('\n\n') + '\n';
}

/** Deterministically split the corpus by chapter; both parts keep the corpus layout and order. */
export function splitCorpus(corpus: string): CorpusSplit {
  const trainChapters: Chapter[] = [];
  const valChapters: Chapter[] = [];
  for (const chapter of parseChapters(corpus)) {
    (isValidationChapter(chapter.heading) ? valChapters : trainChapters).push(chapter);
  }
  return { train: joinChapters(trainChapters), val: joinChapters(valChapters), trainChapters, valChapters };
}
