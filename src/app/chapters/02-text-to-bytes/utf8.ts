/**
 * Text → characters → code points → UTF-8 bytes: the data behind chapter 2's figures. Pure functions of
 * the text (no model involved: this is what happens before the tokenizer sees anything).
 */

export interface CodePointView {
  codePoint: number;
  /** The character itself, or a visible stand-in for invisible ones (␣ for a space, ZWJ, …). */
  label: string;
  /** "U+00E9" */
  hex: string;
  /** Its UTF-8 encoding: 1 to 4 bytes. */
  bytes: number[];
}

export interface CharacterView {
  /** One user-perceived character (a grapheme cluster): what the cursor jumps over. */
  text: string;
  codePoints: CodePointView[];
  /** Offset of its first byte in the UTF-8 encoding of the whole text. */
  byteOffset: number;
}

export interface TextView {
  characters: CharacterView[];
  codePointCount: number;
  byteCount: number;
  /** How many code points take 1, 2, 3 and 4 bytes (index 0 = 1 byte). */
  byLength: [number, number, number, number];
}

const encoder = new TextEncoder();

/** Names for characters that would otherwise be invisible in a figure. */
const INVISIBLE: Record<number, string> = {
  0x09: '⇥',
  0x0a: '⏎',
  0x0d: 'CR',
  0x20: '␣',
  0xa0: 'NBSP',
  0x200b: 'ZWSP',
  0x200c: 'ZWNJ',
  0x200d: 'ZWJ',
  0xfe0e: 'VS15',
  0xfe0f: 'VS16',
  0xfeff: 'BOM',
};

export function codePointHex(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** A label that can be seen: the character, a name for an invisible one, or ◌ + a combining mark. */
export function visibleLabel(codePoint: number): string {
  if (INVISIBLE[codePoint]) return INVISIBLE[codePoint];
  const char = String.fromCodePoint(codePoint);
  if (/\p{M}/u.test(char)) return `◌${char}`;
  if (/\p{C}|\p{Z}/u.test(char)) return codePointHex(codePoint);
  return char;
}

/** The UTF-8 bytes of one code point (a lone surrogate encodes as U+FFFD, as TextEncoder does). */
export function utf8Bytes(codePoint: number): number[] {
  return Array.from(encoder.encode(String.fromCodePoint(codePoint)));
}

const segmenter =
  typeof Intl.Segmenter === 'function' ? new Intl.Segmenter('en', { granularity: 'grapheme' }) : undefined;

function graphemes(text: string): string[] {
  return segmenter ? Array.from(segmenter.segment(text), (s) => s.segment) : Array.from(text);
}

export function describeText(text: string): TextView {
  const characters: CharacterView[] = [];
  const byLength: [number, number, number, number] = [0, 0, 0, 0];
  let byteOffset = 0;
  let codePointCount = 0;
  for (const grapheme of graphemes(text)) {
    const codePoints = Array.from(grapheme, (char) => {
      // A lone surrogate cannot be encoded; TextEncoder writes U+FFFD instead, and so do we.
      const raw = char.codePointAt(0)!;
      const codePoint = raw >= 0xd800 && raw <= 0xdfff ? 0xfffd : raw;
      const bytes = utf8Bytes(codePoint);
      byLength[bytes.length - 1]++;
      return { codePoint, label: visibleLabel(codePoint), hex: codePointHex(codePoint), bytes };
    });
    characters.push({ text: grapheme, codePoints, byteOffset });
    byteOffset += codePoints.reduce((sum, cp) => sum + cp.bytes.length, 0);
    codePointCount += codePoints.length;
  }
  return { characters, codePointCount, byteCount: byteOffset, byLength };
}

export interface BitGroup {
  byte: number;
  /** The fixed bits that say what kind of byte this is: 0, 110, 1110, 11110 (lead) or 10 (continuation). */
  marker: string;
  /** The bits that carry the code point. */
  payload: string;
}

/**
 * How UTF-8 spreads a code point's bits over its bytes: the lead byte's marker says how many bytes follow,
 * each continuation byte starts with 10, and the payload bits, read in order, are the code point in binary.
 */
export function utf8BitGroups(codePoint: number): BitGroup[] {
  return utf8Bytes(codePoint).map((byte, i, all) => {
    const markerLength = i > 0 ? 2 : all.length === 1 ? 1 : all.length + 1;
    const bits = byte.toString(2).padStart(8, '0');
    return { byte, marker: bits.slice(0, markerLength), payload: bits.slice(markerLength) };
  });
}

export function hexByte(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
}
