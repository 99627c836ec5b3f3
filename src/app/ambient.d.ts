// Imports handled by the app's Vite plugins (src/app/build/plugins.ts).
declare module '*&excerpt' {
  const excerpt: import('./build/plugins.ts').Excerpt;
  export default excerpt;
}

/** Whether the house model the site was built with has a history (checkpoints/index.json): see plugins.ts. */
declare module 'virtual:glassbox-house-history' {
  const hasHistory: boolean;
  export default hasHistory;
}
