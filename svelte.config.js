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

/**
 * Scripts only from the site itself (plus SvelteKit's hashed start-up script), WebAssembly compiled from
 * them, the kernels' worker threads from blob URLs; styles may be inline (KaTeX and figures use style
 * attributes); nothing loads from anywhere else.
 * @type {import('@sveltejs/kit').CspDirectives}
 */
export const CONTENT_SECURITY_POLICY = {
  'default-src': ['self'],
  'script-src': ['self', 'wasm-unsafe-eval'],
  'worker-src': ['self', 'blob:'],
  'style-src': ['self', 'unsafe-inline'],
  'img-src': ['self', 'data:', 'blob:'],
  'font-src': ['self', 'data:'],
  'connect-src': ['self'],
  'object-src': ['none'],
  'base-uri': ['self'],
  'form-action': ['self'],
};

/** @type {import('@sveltejs/kit').Config} */
const config = {
  extensions: ['.svelte', '.svx'],
  preprocess: [vitePreprocess(), mdsvex({ extensions: ['.svx'], remarkPlugins: [remarkMath, remarkKatex] })],
  kit: {
    adapter: adapter({ pages: 'dist/app', assets: 'dist/app', fallback: '404.html', strict: true }),
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
    // The Content-Security-Policy of every page: SvelteKit adds the hashes of its own inline start-up script
    // and, on prerendered pages, writes the policy into a <meta> tag, so it holds on any static host too.
    // serve.js adds what a <meta> cannot carry (frame-ancestors). See CONTENT_SECURITY_POLICY.
    csp: { mode: 'hash', directives: CONTENT_SECURITY_POLICY },
  },
};

export default config;
