import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';
import { corpusBookAssets, houseModelAssets, sourceExcerpts } from './src/app/build/plugins.ts';

/** The default model's folder; GLASSBOX_MODEL_DIR points the app at another (e.g. a training run's output). */
const modelFolder = process.env.GLASSBOX_MODEL_DIR ?? 'models/house';

/**
 * The headers `npm start` sends (src/app/serve.js), in development and preview too: cross-origin isolation
 * (SharedArrayBuffer for the engine's threads), no framing, no sniffing. The rest of the
 * Content-Security-Policy comes from SvelteKit (svelte.config.js: a header in development, a <meta> in the
 * prerendered pages).
 */
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "frame-ancestors 'none'; base-uri 'self'; object-src 'none'",
  'X-Frame-Options': 'DENY',
};

export default defineConfig({
  plugins: [
    sourceExcerpts(import.meta.dirname),
    houseModelAssets(modelFolder),
    // The house model's draft, fetched by chapter 15 only (speculative decoding).
    houseModelAssets('models/house-draft', 'models/house-draft'),
    // The corpus cut into books, fetched by chapter 14's trainer only when the reader picks one.
    corpusBookAssets(),
    sveltekit(),
  ],
  worker: { format: 'es' },
  build: {
    target: 'es2022',
    reportCompressedSize: false,
    // Rolldown's report of slow plugins is noise here (SvelteKit's prerendering is most of the build).
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  server: { headers: isolation, fs: { allow: ['.'] } },
  preview: { headers: isolation },
});
