// Imports handled by the app's Vite plugins (src/app/build/plugins.ts).
declare module '*&excerpt' {
  const excerpt: import('./build/plugins.ts').Excerpt;
  export default excerpt;
}
