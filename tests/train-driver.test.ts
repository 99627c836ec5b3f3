/**
 * The `glassbox train` driver: a run that stops and resumes ends bit-identical to one that never stopped;
 * its output folder is a model the rest of Glassbox loads; misuse gets specific messages.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectKernels } from '../src/kernels/select.ts';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import {
  CHECKPOINT_FILE,
  DEFAULT_TRAIN_SETTINGS,
  LOG_FILE,
  trainModel,
  type TrainSettings,
} from '../src/cli/train/run.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';

// The fastest kernels this runtime has, as the CLI and the course choose by default.
const kernels = selectKernels('auto');

const dir = mkdtempSync(join(tmpdir(), 'glassbox-train-'));
const input = join(dir, 'text.txt');
// Blank-line-separated blocks, as in our corpus; headings decide which blocks are held out.
const blocks = Array.from({ length: 60 }, (_, i) =>
  [
    `Book ${i + 1}`,
    `In the beginning there were ${i + 2} lamps.`,
    `And the lamps gave light to ${i + 3} rooms.`,
  ].join('\n'),
);
writeFileSync(input, blocks.join('\n\n') + '\n');

const settings: TrainSettings = {
  ...DEFAULT_TRAIN_SETTINGS,
  input,
  vocabSize: 300,
  dim: 16,
  layers: 2,
  heads: 2,
  kvHeads: 1,
  hidden: 24,
  seqLen: 16,
  batchSize: 4,
  steps: 20,
  warmupSteps: 4,
  evalEvery: 5,
  checkpointEvery: 5,
  seed: 7,
};
const quiet = (stopAfter = Infinity) => {
  let calls = 0;
  return { log: () => {}, stopRequested: () => ++calls >= stopAfter };
};

describe('glassbox train', () => {
  it('stopping at step 10 and resuming gives the same losses and weights as 20 uninterrupted steps', async () => {
    const straight = join(dir, 'straight');
    const full = await trainModel(settings, straight, { resume: false, kernels: 'auto' }, quiet());
    expect(full).toMatchObject({ stepsDone: 20, interrupted: false });
    expect(full.losses[19]).toBeLessThan(full.losses[0]);

    const stopped = join(dir, 'stopped');
    const first = await trainModel(settings, stopped, { resume: false, kernels: 'auto' }, quiet(10));
    expect(first).toMatchObject({ stepsDone: 10, interrupted: true });
    const second = await trainModel(
      { ...settings, steps: 999, dim: 64 }, // ignored: a resumed run keeps its own settings
      stopped,
      { resume: true, kernels: 'auto' },
      quiet(),
    );
    expect(second.stepsDone).toBe(20);
    expect([...first.losses, ...second.losses]).toEqual(full.losses);
    for (const file of ['model.safetensors', CHECKPOINT_FILE, LOG_FILE]) {
      const a = readFileSync(join(straight, file));
      const b = readFileSync(join(stopped, file));
      if (file === LOG_FILE) {
        const strip = (text: string) => text.replace(/"tokensPerSecond":[^,}]+/g, '');
        expect(strip(b.toString())).toBe(strip(a.toString()));
      } else {
        expect(b.equals(a)).toBe(true);
      }
    }
  });

  it('writes a Hugging Face folder that loads and runs, with a log and a loss plot', async () => {
    const out = join(dir, 'straight');
    const { model, tokenizer } = await loadModelAndTokenizer(out);
    expect(model.config).toMatchObject({
      dim: 16,
      nLayers: 2,
      nKvHeads: 1,
      ropeLayout: 'half',
      vocabSize: 300,
    });
    const tokens = tokenizer.encode('In the beginning', { bos: true, eos: false });
    const { logits } = forward(model, tokens, new KVCache(model.config), { kernels });
    expect(logits.every(Number.isFinite)).toBe(true);
    const log = readFileSync(join(out, LOG_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(log.map((l) => l.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(log.filter((l) => l.valLoss !== undefined).map((l) => l.step)).toEqual([5, 10, 15, 20]);
    expect(readFileSync(join(out, 'loss.svg'), 'utf8')).toMatch(/<svg[^>]*role="img"/);
  });

  it('refuses to overwrite a run without --resume, and names a damaged checkpoint', async () => {
    const out = join(dir, 'straight');
    await expect(trainModel(settings, out, { resume: false, kernels: 'auto' }, quiet())).rejects.toThrow(
      /exists: pass --resume/,
    );
    const damaged = join(dir, 'damaged');
    await trainModel({ ...settings, steps: 5 }, damaged, { resume: false, kernels: 'auto' }, quiet());
    const path = join(damaged, CHECKPOINT_FILE);
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    await expect(trainModel(settings, damaged, { resume: true, kernels: 'auto' }, quiet())).rejects.toThrow(
      path,
    );
    expect(existsSync(join(dir, 'nothing'))).toBe(false);
    await expect(
      trainModel(settings, join(dir, 'nothing'), { resume: true, kernels: 'auto' }, quiet()),
    ).rejects.toThrow(/there is no checkpoint to resume from/);
  });
});
