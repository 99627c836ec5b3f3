import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';
import { houseModelAssets, sourceExcerpts } from './src/app/build/plugins.ts';

/** The default model's folder; GLASSBOX_MODEL_DIR points the app at another (e.g. a training run's output). */
const modelFolder = process.env.GLASSBOX_MODEL_DIR ?? 'models/house';

/** Cross-origin isolation (SharedArrayBuffer for the engine's threads), in development as in `npm start`. */
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [sourceExcerpts(import.meta.dirname), houseModelAssets(modelFolder), sveltekit()],
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
