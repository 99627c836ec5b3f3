/**
 * Pre-tokenization: cutting text into pieces ("pre-tokens", roughly words) before BPE runs. BPE then works
 * inside each piece and never merges across two of them, which is why a trained vocabulary holds " the" and
 * "ing" but never "e t" or "the." — a merge across a word boundary would spend vocabulary on accidents of
 * word order.
 *
 * The pattern is GPT-4's (tiktoken's cl100k_base, also Llama 3's), alternative by alternative:
 *
 *   '(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])   English contractions with an ASCII apostrophe:
 *                                                         "don't" → "don" "'t"
 *   [^\r\n\p{L}\p{N}]?\p{L}+      a word, with at most one non-letter glued in front (usually the space):
 *                                 " world", "’s" (the curly apostrophe of "God’s" fits here)
 *   \p{N}{1,3}                    digits in groups of at most three: "12345" → "123" "45"
 *    ?[^\s\p{L}\p{N}]+[\r\n]*     punctuation, with an optional space before and newlines after: " “", ".\n"
 *   \s*[\r\n]+                    a run of whitespace that ends in newlines: "\n\n"
 *   \s+(?!\S)                     spaces not followed by a word: "a  b" → "a" " " " b" (the last space
 *                                 stays for the word, so " b" is the same piece as in "a b")
 *   \s+                           any other whitespace (at the end of the text)
 *
 * Every character matches some alternative (letters, numbers, whitespace and "everything else" are all
 * covered), so the pieces always concatenate back to the input: no text is ever lost.
 *
 * Written without inline flags ((?i:…)) and possessive quantifiers so that the same source is a valid
 * JavaScript `u`-mode regex and a valid Oniguruma regex for Hugging Face's tokenizers. The engines agree
 * except on what `\s` means at the edges: JavaScript counts U+FEFF (byte order mark) as whitespace and
 * U+0085 (next line) not; Oniguruma the other way round. Text with those characters can split differently.
 */
export const PRETOKENIZE_PATTERN =
  "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])" +
  '|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+' +
  '|\\p{N}{1,3}' +
  '| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*' +
  '|\\s*[\\r\\n]+' +
  '|\\s+(?!\\S)' +
  '|\\s+';

/** tiktoken's contraction alternatives, case-insensitive without the (?i:…) that JavaScript lacks. */
const CONTRACTIONS = "'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE])";

/**
 * The pre-tokenizer patterns a tokenizer.json may use, by name: those real byte-level tokenizers use, in the
 * JavaScript spelling (Oniguruma's (?i:…) and possessive quantifiers written out). Any other pattern is
 * refused, because a regex can backtrack without end: `(a|a)+$` on "aaaa…ab" takes 2^n steps, and a
 * tokenizer file must never be able to hang the CLI or the page's worker. These are safe: no alternative
 * repeats a group, and quantified classes follow one another at most twice.
 */
export const KNOWN_PATTERNS: ReadonlyMap<string, string> = new Map([
  [PRETOKENIZE_PATTERN, "Glassbox's own (cl100k/Llama 3)"],
  ["'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", 'GPT-2 (r50k/p50k)'],
  [
    `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s+$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s`,
    'cl100k (GPT-4)',
  ],
  [
    `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
    'Llama 3',
  ],
  [
    `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:${CONTRACTIONS})?` +
      `|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:${CONTRACTIONS})?` +
      `|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
    'o200k (GPT-4o)',
  ],
]);

/** Throws unless `pattern` is one of KNOWN_PATTERNS, saying which are accepted. */
export function requireKnownPattern(pattern: string): void {
  if (KNOWN_PATTERNS.has(pattern)) return;
  const shown = pattern.length > 60 ? `${pattern.slice(0, 57)}...` : pattern;
  throw new RangeError(
    `pre_tokenizer regex ${JSON.stringify(shown)} is not one this program knows to be safe ` +
      `(${[...KNOWN_PATTERNS.values()].join(', ')}): an unknown regex could take forever on some texts`,
  );
}

const compiled = new Map<string, RegExp>();

/** Compile a pre-tokenizer pattern (cached). Throws SyntaxError if JavaScript cannot compile it. */
export function compilePattern(pattern: string): RegExp {
  let regex = compiled.get(pattern);
  if (!regex) {
    regex = new RegExp(pattern, 'gu');
    compiled.set(pattern, regex);
  }
  return regex;
}

/** Cut text into pre-tokens. Their concatenation is the input, character for character. */
export function pretokenize(text: string, pattern: string = PRETOKENIZE_PATTERN): string[] {
  return Array.from(text.matchAll(compilePattern(pattern)), (match) => match[0]);
}
