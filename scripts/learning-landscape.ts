/**
 * Chapter 13's loss landscape, computed once from the committed house model and shipped beside the chapter
 * (src/app/chapters/13-learning/landscape.json): the loss of one fixed held-out batch (the first tokens of
 * the first held-out chapter of the house corpus, the text `glassbox train` validated on) on the plane
 * θ + a·d1 + b·d2 through the trained weights, with d1, d2 filter-normalised random directions from the
 * seeds recorded in the file, on an n × n grid; and the four optimisers' race from the page's default start
 * and learning rate. Computing the grid takes a minute on one core, too long for a page; the page's worker
 * rebuilds the same plane from the seeds and recomputes any point live (the optimisers' steps, and
 * tests/analysis-learning.test.ts, which checks grid points and race steps against a live recomputation).
 *
 *   npm run build && node dist/scripts/learning-landscape.js
 */
import { writeFileSync } from 'node:fs';
import { format, resolveConfig } from 'prettier';
import { join } from 'node:path';
import {
  DIRECTION_SEEDS,
  gridCoordinates,
  LossPlane,
  OPTIMISERS,
  Race,
  textBatch,
} from '../src/analysis/learning.ts';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { readTextFile } from '../src/cli/text-input.ts';
import { tokenize, trainValidationSplit } from '../src/cli/train/run.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { LANDSCAPE_SETTINGS } from '../src/app/chapters/13-learning/landscape-settings.ts';

const root = process.cwd();
const { model, tokenizer } = await loadModelAndTokenizer(join(root, 'models', 'house'));
const text = await readTextFile(join(root, 'corpus', 'web.txt.gz'));
const heldOut = trainValidationSplit(text).val[0];
const tokens = Array.from(tokenize(tokenizer, [heldOut]).slice(0, LANDSCAPE_SETTINGS.positions + 1));
const kernels = selectKernels('auto');
const plane = new LossPlane(model.config, model.weights, textBatch(tokens), kernels, DIRECTION_SEEDS);
const { range, size } = LANDSCAPE_SETTINGS;
const coordinates = gridCoordinates(range, size);
const started = performance.now();
const losses: number[] = [];
for (const b of coordinates) {
  for (const a of coordinates) losses.push(plane.loss(a, b));
  process.stderr.write(`\rrow ${losses.length / size} of ${size}`);
}
process.stderr.write(`\n${((performance.now() - started) / 1000).toFixed(1)} s for ${size * size} points\n`);
const race = new Race(plane, LANDSCAPE_SETTINGS.race, LANDSCAPE_SETTINGS.bound);
for (let step = 0; step < LANDSCAPE_SETTINGS.raceSteps; step++) race.step();
const round = (x: number) => (Number.isFinite(x) ? Number(x.toPrecision(9)) : null);
const file = {
  about:
    'scripts/learning-landscape.ts: the house model’s loss on a held-out batch over θ + a·d1 + b·d2 (filter-normalised random directions, Li et al. 2018), and the optimisers’ race at the default settings',
  directionSeeds: DIRECTION_SEEDS,
  text: tokenizer.decode(tokens),
  tokens,
  range,
  size,
  /** losses[row · size + col] at a = coordinates[col], b = coordinates[row]. */
  losses: losses.map(round),
  race: {
    ...LANDSCAPE_SETTINGS.race,
    steps: LANDSCAPE_SETTINGS.raceSteps,
    paths: Object.fromEntries(
      OPTIMISERS.map(({ name }) => [
        name,
        race.paths[name].map((p) => [round(p.a), round(p.b), round(p.loss)]),
      ]),
    ),
  },
};
// Written as the repository's formatter writes JSON, so that `prettier --check` passes on the new file.
const out = join(root, 'src', 'app', 'chapters', '13-learning', 'landscape.json');
writeFileSync(out, await format(JSON.stringify(file), { ...(await resolveConfig(out)), parser: 'json' }));
