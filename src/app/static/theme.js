// The theme, applied before the first paint (no flash of the other one): the reader's choice if they made
// one, else the system's, followed when the system's changes. A file rather than an inline script, so that
// the Content-Security-Policy needs no exception for it.
(() => {
  let chosen = null;
  try {
    chosen = localStorage.getItem('glassbox.theme');
  } catch {
    // Storage unavailable: follow the system.
  }
  const system = matchMedia('(prefers-color-scheme: dark)');
  const apply = () => {
    const theme = document.documentElement.dataset.themeChoice ?? chosen;
    document.documentElement.dataset.theme =
      theme === 'light' || theme === 'dark' ? theme : system.matches ? 'dark' : 'light';
  };
  apply();
  system.addEventListener('change', apply);
})();
