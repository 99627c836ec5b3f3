/**
 * JSON.parse with its costs bounded first. Refusing a file should cost little: a 20 MB config.json of nested
 * brackets took 1 GB of memory to parse before it could be refused, and a 44 MB tokenizer.json took 25 s.
 * So the text's length and its nesting depth are checked before parsing, in one pass that allocates nothing.
 */
import { FormatError } from './errors.ts';

export interface JsonLimits {
  /** Longest text accepted, in UTF-16 code units (for ASCII files, bytes). */
  maxLength: number;
  /** Deepest nesting of objects and arrays accepted. */
  maxDepth: number;
  /** What the file is, for messages: "config.json", "a tokenizer.json". */
  what: string;
}

/** Deepest [ / { nesting in a JSON text, not counting brackets inside strings. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** Parses `text` as JSON if it is within `limits`; every refusal is a FormatError naming `file`. */
export function parseBoundedJson(text: string, file: string, limits: JsonLimits): unknown {
  if (text.length > limits.maxLength) {
    throw new FormatError(
      file,
      `${text.length} characters is more than any ${limits.what} needs (the limit is ${limits.maxLength})`,
    );
  }
  const depth = jsonDepth(text);
  if (depth > limits.maxDepth) {
    throw new FormatError(
      file,
      `JSON nested ${depth} levels deep; a ${limits.what} needs at most ${limits.maxDepth}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FormatError(file, `not valid JSON (${(error as Error).message})`);
  }
}
