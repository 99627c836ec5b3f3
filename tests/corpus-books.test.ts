/**
 * The corpus cut into books (chapter 14's texts): every block lands in exactly one book, in order, and the
 * books of the real corpus files are the Bible's books and the Brown corpus's categories.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { corpusBooks } from '../src/corpus/books.ts';

const corpus = (name: string) => gunzipSync(readFileSync(`corpus/${name}`)).toString('utf8');

describe('corpus books', () => {
  it('groups blocks by their heading’s book (a one-chapter book has no number), keeping their order and text', () => {
    const text = 'Mark 1\nverse a\nverse b\n\nRuth 1\nverse c\n\nMark 2\nverse d\n\nJude\nverse e';
    expect(corpusBooks(text)).toEqual([
      {
        id: 'web-mark',
        title: 'Mark (World English Bible)',
        text: 'Mark 1\nverse a\nverse b\n\nMark 2\nverse d',
      },
      { id: 'web-ruth', title: 'Ruth (World English Bible)', text: 'Ruth 1\nverse c' },
      { id: 'web-jude', title: 'Jude (World English Bible)', text: 'Jude\nverse e' },
    ]);
  });

  it('finds the books of the World English Bible and the 15 categories of the Brown corpus, losing no block', () => {
    const bible = corpus('web.txt.gz');
    const books = corpusBooks(bible);
    // The module's 80 books (corpus/README.md), with Psalm 151 among the Psalms: 79.
    expect(books).toHaveLength(79);
    expect(books[0].title).toBe('Genesis (World English Bible)');
    expect(books.find((book) => book.id === 'web-jude')?.text.startsWith('Jude\n')).toBe(true);
    const blocks = (text: string) => text.split(/\n\s*\n/).filter((block) => block.trim()).length;
    expect(books.reduce((sum, book) => sum + blocks(book.text), 0)).toBe(blocks(bible));

    const brown = corpusBooks(corpus('brown.txt.gz'));
    expect(brown.map((book) => book.id)).toEqual([...'abcdefghjklmnpr'].map((letter) => `brown-${letter}`));
    expect(brown[0].title).toBe('Press: reportage (Brown corpus)');
  });
});
