/**
 * The page's colour theme, for figures drawn on canvas: they read their colours from the CSS variables, so
 * they must redraw when the theme changes. app.html's head script keeps `<html data-theme>` current (the
 * reader's choice, else the system's, following it), so watching that one attribute covers both. A figure
 * reads `theme.version` in the effect that draws.
 */
export const theme = $state({ version: 0 });

if (typeof document !== 'undefined') {
  new MutationObserver(() => theme.version++).observe(document.documentElement, {
    attributes: true,
    attributeFilter: ['data-theme'],
  });
}
