/**
 * The training loop keeps its bits: a short `glassbox train` run (through trainModel, the CLI's path) gives
 * exactly the losses and model file recorded in tests/fixtures/train-regression.json. The fixture was
 * recorded before the loop moved from src/cli/train/run.ts into src/engine/train/, so a refactor that changes
 * any number — an operation reordered, a sum split differently — fails here.
 *
 * To re-record (only when a change is meant to alter training's numbers, and say so in the commit):
 *   GLASSBOX_RECORD_TRAIN=1 npx vitest run tests/train-regression.test.ts
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TRAIN_SETTINGS, LOG_FILE, trainModel, type TrainSettings } from '../src/cli/train/run.ts';
import { TINY_TRAINING_MODEL, writeBlockText } from './helpers.ts';
import type { KernelPreference } from '../src/kernels/select.ts';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'train-regression.json');
const record = process.env.GLASSBOX_RECORD_TRAIN === '1';

interface RecordedRun {
  shards: number;
  kernels: KernelPreference;
  losses: number[];
  valLosses: Record<string, number>;
  modelSha256: string;
}

interface Fixture {
  comment: string;
  producedBy: string;
  runs: RecordedRun[];
}

const dir = mkdtempSync(join(tmpdir(), 'glassbox-train-regression-'));
const input = join(dir, 'text.txt');
writeBlockText(input, 40, (i) => [
  `Chapter ${i + 1}`,
  `The fox jumped over ${i + 2} fences and ${i * 3 + 1} walls.`,
  `Then it slept under ${i + 5} stars until morning.`,
]);

const tiny: TrainSettings = {
  ...DEFAULT_TRAIN_SETTINGS,
  input,
  ...TINY_TRAINING_MODEL,
  hidden: 40,
  steps: 30,
  warmupSteps: 5,
  evalEvery: 10,
  checkpointEvery: 10,
  seed: 11,
};

/** Both kernel families (their sums round differently), on one shard and on the default shard count. */
const cases: { shards: number; kernels: KernelPreference }[] = [
  { shards: 1, kernels: 'ts' },
  { shards: DEFAULT_TRAIN_SETTINGS.shards, kernels: 'ts' },
  { shards: 1, kernels: 'auto' },
  { shards: DEFAULT_TRAIN_SETTINGS.shards, kernels: 'auto' },
];

async function run(shards: number, kernels: KernelPreference): Promise<RecordedRun> {
  const out = join(dir, `run-${shards}-${kernels}`);
  const quiet = { log: () => {}, stopRequested: () => false };
  const result = await trainModel({ ...tiny, shards }, out, { resume: false, kernels }, quiet);
  const valLosses: Record<string, number> = {};
  for (const line of readFileSync(join(out, LOG_FILE), 'utf8').trim().split('\n')) {
    const { step, valLoss } = JSON.parse(line) as { step: number; valLoss?: number };
    if (valLoss !== undefined) valLosses[step] = valLoss;
  }
  const modelSha256 = createHash('sha256')
    .update(readFileSync(join(out, 'model.safetensors')))
    .digest('hex');
  return { shards, kernels, losses: result.losses, valLosses, modelSha256 };
}

describe('training regression fixture', () => {
  it('a short run gives the recorded losses and model bits, on one shard and on several', async () => {
    const runs: RecordedRun[] = [];
    for (const { shards, kernels } of cases) runs.push(await run(shards, kernels));
    if (record) {
      const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD']).toString().trim();
      const fixture: Fixture = {
        comment:
          'Recorded by tests/train-regression.test.ts with GLASSBOX_RECORD_TRAIN=1; the bits every later ' +
          'version of the training loop must reproduce.',
        producedBy: `commit ${commit}`,
        runs,
      };
      writeFileSync(FIXTURE, JSON.stringify(fixture, null, 2) + '\n');
    }
    const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Fixture;
    expect(runs.map((r) => r.losses.length)).toEqual(cases.map(() => tiny.steps));
    // One shard and two shards round differently, so the fixture really distinguishes them.
    expect(runs[0].modelSha256).not.toBe(runs[1].modelSha256);
    expect(runs).toEqual(fixture.runs);
  });
});
