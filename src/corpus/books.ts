/**
 * The corpus cut into books, for the page's trainer (chapter 14): the reader trains on one book of the
 * World English Bible or one category of the Brown corpus, small enough to learn from in minutes. Both
 * corpora are blank-line-separated blocks whose first line is a heading ("Mark 3", "Brown A01 (press:
 * reportage)"), so a book is the blocks whose headings name it, joined as they were: the train/validation
 * split (split.ts) then works on a book as on the whole corpus. Pure and browser-safe.
 */

export interface Book {
  /** File-name-safe key, e.g. "web-mark" or "brown-a". */
  id: string;
  /** e.g. "Mark (World English Bible)" or "Press: reportage (Brown corpus)". */
  title: string;
  text: string;
}

/**
 * The book a block's heading belongs to: "Mark 3" → Mark, "Jude" → Jude, "Brown A01 (press: reportage)" →
 * category A, press: reportage.
 */
function bookOf(heading: string): { key: string; name: string } | undefined {
  const brown = /^Brown ([A-R])\d+ \(([^)]*)\)$/.exec(heading);
  if (brown) {
    const name = brown[2].charAt(0).toUpperCase() + brown[2].slice(1);
    return { key: `brown-${brown[1].toLowerCase()}`, name: `${name} (Brown corpus)` };
  }
  // "Mark 3", or a one-chapter book's bare name ("Jude").
  const bible = /^(.+?)(?: \d+)?$/.exec(heading);
  if (bible) {
    const key = `web-${bible[1].toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
    return { key, name: `${bible[1]} (World English Bible)` };
  }
  return undefined;
}

/** The books of a corpus text, in the order they first appear; blocks without a known heading are skipped. */
export function corpusBooks(text: string): Book[] {
  const books = new Map<string, { title: string; blocks: string[] }>();
  for (const block of text.split(/\n\s*\n/)) {
    const trimmed = block.trim();
    if (!trimmed) continue;
    const book = bookOf(trimmed.split('\n', 1)[0]);
    if (!book) continue;
    let entry = books.get(book.key);
    if (!entry) books.set(book.key, (entry = { title: book.name, blocks: [] }));
    entry.blocks.push(trimmed);
  }
  return [...books].map(([id, { title, blocks }]) => ({ id, title, text: blocks.join('\n\n') }));
}
