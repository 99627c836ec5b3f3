/**
 * The course app: SvelteKit with Svelte 5, prerendered to a static site (adapter-static), chapters written
 * in Markdown with embedded components (mdsvex, `.svx` files), maths typeset with KaTeX at build time.
 * The app lives in src/app so that the engine in src/engine stays a plain TypeScript library beside it;
 * everything SvelteKit generates goes under dist/ (already ignored by git, ESLint and Prettier).
 */
import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';
import { mdsvex } from 'mdsvex';
import remarkMath from 'remark-math';
import { remarkKatex } from './src/app/lib/markdown/remark-katex.js';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  extensions: ['.svelte', '.svx'],
  preprocess: [vitePreprocess(), mdsvex({ extensions: ['.svx'], remarkPlugins: [remarkMath, remarkKatex] })],
  kit: {
    adapter: adapter({ pages: 'dist/app', assets: 'dist/app', fallback: undefined, strict: true }),
    outDir: 'dist/.svelte-kit',
    files: {
      routes: 'src/app/routes',
      lib: 'src/app/lib',
      appTemplate: 'src/app/app.html',
      assets: 'src/app/static',
      hooks: { client: 'src/app/hooks.client', server: 'src/app/hooks.server', universal: 'src/app/hooks' },
      params: 'src/app/params',
      serviceWorker: 'src/app/service-worker',
    },
    prerender: { handleHttpError: 'fail', handleMissingId: 'fail' },
  },
};

export default config;
