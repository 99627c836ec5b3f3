import { describe, expect, it } from 'vitest';
import {
  codePointHex,
  describeText,
  utf8BitGroups,
  visibleLabel,
} from '../src/app/chapters/02-text-to-bytes/utf8.ts';

describe('chapter 2: text → code points → UTF-8 bytes', () => {
  it('counts characters, code points and bytes as TextEncoder does', () => {
    for (const text of ['', 'hello', 'naïve café', '日本語', '👍🏽 ok', '👩‍💻', 'e\u0301', 'a\nb\tc']) {
      const view = describeText(text);
      expect(view.byteCount).toBe(new TextEncoder().encode(text).length);
      expect(view.codePointCount).toBe(Array.from(text).length);
      const bytes = view.characters.flatMap((c) => c.codePoints.flatMap((cp) => cp.bytes));
      expect(bytes).toEqual(Array.from(new TextEncoder().encode(text)));
      expect(view.byLength.reduce((a, b) => a + b, 0)).toBe(view.codePointCount);
    }
  });

  it('groups code points into the characters a reader sees', () => {
    const family = describeText('👩‍💻!');
    expect(family.characters.map((c) => c.text)).toEqual(['👩‍💻', '!']);
    expect(family.characters[0].codePoints.map((cp) => cp.hex)).toEqual(['U+1F469', 'U+200D', 'U+1F4BB']);
    expect(family.characters[1].byteOffset).toBe(11);
    const thumb = describeText('👍🏽');
    expect(thumb.characters).toHaveLength(1);
    expect(thumb.byteCount).toBe(8);
    expect(thumb.byLength).toEqual([0, 0, 0, 2]);
  });

  it('makes invisible characters visible', () => {
    expect(visibleLabel(0x20)).toBe('␣');
    expect(visibleLabel(0x200d)).toBe('ZWJ');
    expect(visibleLabel(0x301)).toBe('◌\u0301');
    expect(visibleLabel(0x7)).toBe('U+0007');
    expect(codePointHex(0xe9)).toBe('U+00E9');
  });

  it('encodes a lone surrogate as U+FFFD, like TextEncoder', () => {
    const view = describeText('a\ud800b');
    expect(view.characters.map((c) => c.codePoints[0].hex)).toEqual(['U+0061', 'U+FFFD', 'U+0062']);
    expect(view.byteCount).toBe(new TextEncoder().encode('a\ud800b').length);
  });

  it('splits the bits into UTF-8 markers and payload', () => {
    expect(utf8BitGroups(0x41)).toEqual([{ byte: 0x41, marker: '0', payload: '1000001' }]);
    const e = utf8BitGroups(0xe9); // é = 11101001 → 110 00011, 10 101001
    expect(e.map((g) => g.marker)).toEqual(['110', '10']);
    expect(e.map((g) => g.payload).join('')).toBe((0xe9).toString(2).padStart(11, '0'));
    const emoji = utf8BitGroups(0x1f44d);
    expect(emoji.map((g) => g.marker)).toEqual(['11110', '10', '10', '10']);
    expect(parseInt(emoji.map((g) => g.payload).join(''), 2)).toBe(0x1f44d);
  });
});
