import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findSymbol } from '../src/app/build/plugins.ts';
import { escapeHtml, highlight } from '../src/app/build/highlight.ts';

describe('the code excerpts the course shows', () => {
  it('finds a function with its doc comment, up to its closing brace', () => {
    const source = readFileSync('src/engine/forward.ts', 'utf8');
    const lines = source.split('\n');
    const { start, end } = findSymbol(source, 'forward', 'src/engine/forward.ts');
    expect(lines[start - 1]).toMatch(/^export function forward\(/);
    expect(lines[end - 1]).toBe('}');
    expect(lines.slice(start - 1, end).join('\n')).toContain('return { logits, trace }');
  });

  it('includes the doc comment above a declaration', () => {
    const source = ['/**', ' * Adds.', ' */', 'export function add(a, b) {', '  return a + b;', '}', ''].join(
      '\n',
    );
    expect(findSymbol(source, 'add', 'x.ts')).toEqual({ start: 1, end: 6 });
    expect(findSymbol('export const N = 3;\n', 'N', 'x.ts')).toEqual({ start: 1, end: 1 });
  });

  it('says which symbol is missing', () => {
    expect(() => findSymbol('const a = 1;', 'nothing', 'src/x.ts')).toThrow(
      'excerpt: no top-level declaration of "nothing" in src/x.ts',
    );
  });

  it('highlights without changing the text', () => {
    const code = "const x: Float32Array = new Float32Array(T); // a <b> & 'c'\nreturn `t${1}`;";
    const html = highlight(code);
    expect(html).toContain('<span class="tok-keyword">const</span>');
    expect(html).toContain('<span class="tok-type">Float32Array</span>');
    expect(html).not.toContain('<span class="tok-type">T</span>');
    expect(html).toContain(`<span class="tok-comment">// a &lt;b&gt; &amp; 'c'</span>`);
    const text = html.replace(/<[^>]+>/g, '');
    expect(text).toBe(escapeHtml(code));
    expect(html.split('\n')).toHaveLength(2);
  });
});
