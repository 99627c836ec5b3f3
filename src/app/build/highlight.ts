/**
 * A small TypeScript highlighter, run at build time: it splits source text into comments, strings,
 * numbers, keywords and the rest, and returns HTML with one <span class="tok-…"> per token. Enough for
 * readable excerpts of the engine; the page ships the finished HTML, not a highlighter.
 */
const KEYWORDS = new Set(
  (
    'as async await break case catch class const continue default do else export extends false for from ' +
    'function if import in instanceof interface let new null of return satisfies static switch this throw ' +
    'true try type typeof undefined void while yield readonly private keyof'
  ).split(' '),
);

const TOKEN = new RegExp(
  [
    String.raw`(?<comment>\/\/[^\n]*|\/\*[\s\S]*?\*\/)`,
    String.raw`(?<string>'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|\`(?:\\.|[^\`\\])*\`)`,
    String.raw`(?<number>\b\d[\d_]*(?:\.\d+)?(?:e[+-]?\d+)?n?\b|\b0x[\da-f_]+n?\b)`,
    String.raw`(?<word>[A-Za-z_$][\w$]*)`,
  ].join('|'),
  'gi',
);

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** Highlighted HTML for `source`; a multi-line comment or string is split at line ends so that each
 * line of the result can be wrapped on its own (the caller splits the result at "\n"). */
export function highlight(source: string): string {
  let html = '';
  let last = 0;
  for (const match of source.matchAll(TOKEN)) {
    html += escapeHtml(source.slice(last, match.index));
    last = match.index + match[0].length;
    const groups = match.groups!;
    const kind = groups.comment
      ? 'comment'
      : groups.string
        ? 'string'
        : groups.number
          ? 'number'
          : KEYWORDS.has(match[0])
            ? 'keyword'
            : /^[A-Z][A-Z0-9_]*[a-z]/.test(match[0]) // PascalCase names are types; T or MAX_BYTES are not
              ? 'type'
              : undefined;
    const text = escapeHtml(match[0]);
    html += kind
      ? text
          .split('\n')
          .map((line) => `<span class="tok-${kind}">${line}</span>`)
          .join('\n')
      : text;
  }
  return html + escapeHtml(source.slice(last));
}
