/**
 * Maths typeset at build time: remark-math finds `$…$` and `$$…$$` in a chapter's Markdown; this plugin
 * replaces each with the HTML KaTeX renders for it, so the page ships typeset maths and no KaTeX script.
 * The HTML goes through Svelte's `{@html …}`, because KaTeX's output contains braces that Svelte would
 * otherwise read as expressions.
 */
import katex from 'katex';

/** @param {{ type: string, value?: string, children?: unknown[] }} node @param {(node: any) => void} visit */
function walk(node, visit) {
  visit(node);
  for (const child of node.children ?? []) walk(/** @type {any} */ (child), visit);
}

export function remarkKatex() {
  /** @param {any} tree */
  return (tree) => {
    walk(tree, (node) => {
      if (node.type !== 'inlineMath' && node.type !== 'math') return;
      const displayMode = node.type === 'math';
      const html = katex.renderToString(node.value, {
        displayMode,
        throwOnError: true,
        output: 'htmlAndMathml',
      });
      node.type = 'html';
      node.value = displayMode
        ? `<div class="math-display">{@html ${JSON.stringify(html)}}</div>`
        : `{@html ${JSON.stringify(html)}}`;
      delete node.data;
      delete node.children;
    });
  };
}
