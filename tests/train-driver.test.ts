/**
 * The `glassbox train` driver: a run that stops and resumes ends bit-identical to one that never stopped;
 * its output folder is a model the rest of Glassbox loads; misuse gets specific messages.
 */
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectKernels } from '../src/kernels/select.ts';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { commitHooks } from '../src/cli/train/files.ts';
import {
  CHECKPOINT_FILE,
  DEFAULT_TRAIN_SETTINGS,
  LOG_FILE,
  SNAPSHOT_FOLDER,
  snapshotFile,
  snapshotSteps,
  tokenize,
  TRAINING_SUMMARY_FILE,
  trainModel,
  trainValidationSplit,
  type TrainSettings,
} from '../src/cli/train/run.ts';
import { houseValidationLoss } from '../src/cli/train/evaluate.ts';
import { sequentialBatches } from '../src/engine/train/data.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { fifo, runCli, unwritableFolder } from './cli-helpers.ts';
import { TINY_TRAINING_MODEL, writeBlockText } from './helpers.ts';

// The fastest kernels this runtime has, as the CLI and the course choose by default.
const kernels = selectKernels('auto');

const dir = mkdtempSync(join(tmpdir(), 'glassbox-train-'));
const input = join(dir, 'text.txt');
writeBlockText(input, 60, (i) => [
  `Book ${i + 1}`,
  `In the beginning there were ${i + 2} lamps.`,
  `And the lamps gave light to ${i + 3} rooms.`,
]);

const settings: TrainSettings = {
  ...DEFAULT_TRAIN_SETTINGS,
  input,
  ...TINY_TRAINING_MODEL,
  hidden: 24,
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
      /holds an earlier run.s files \(checkpoint.safetensors.*\): pass --resume/,
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

describe('glassbox train: the output folder and resuming', () => {
  const straight = join(dir, 'straight');
  const withoutSpeed = (text: string) => text.replace(/"tokensPerSecond":[^,}]+/g, '');
  const logSteps = (folder: string) =>
    readFileSync(join(folder, LOG_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).step as number);
  const temporaries = (folder: string) => readdirSync(folder).filter((name) => /\.tmp-\d+$/.test(name));

  it('a run that fails before its first checkpoint leaves no tokenizer.json; the next run trains its own', async () => {
    const out = join(dir, 'failed-first');
    const tiny = join(dir, 'tiny.txt');
    writeFileSync(tiny, 'A short text.\n'.repeat(20));
    await expect(
      trainModel({ ...settings, input: tiny, seqLen: 128 }, out, { resume: false, kernels: 'auto' }, quiet()),
    ).rejects.toThrow(/tokens cannot fill/);
    expect(readdirSync(out)).toEqual([]);
    await trainModel(
      { ...settings, vocabSize: 280, steps: 5 },
      out,
      { resume: false, kernels: 'auto' },
      quiet(),
    );
    const { tokenizer } = await loadModelAndTokenizer(out);
    expect(tokenizer.vocabSize).toBe(280);
  });

  it("an earlier run's files are refused without --force; with it they are replaced; --tokenizer always wins", async () => {
    const out = join(dir, 'stale');
    mkdirSync(out);
    copyFileSync(join(straight, 'tokenizer.json'), join(out, 'tokenizer.json')); // a 300-token leftover
    const fresh = { ...settings, vocabSize: 270, steps: 5 };
    await expect(trainModel(fresh, out, { resume: false, kernels: 'auto' }, quiet())).rejects.toThrow(
      `${out} holds an earlier run's files (tokenizer.json): pass --resume to continue that run, --force to replace it`,
    );
    await trainModel(fresh, out, { resume: false, force: true, kernels: 'auto' }, quiet());
    expect((await loadModelAndTokenizer(out)).tokenizer.vocabSize).toBe(270);

    const given = join(dir, 'given');
    const tokenizerFile = join(straight, 'tokenizer.json');
    await trainModel(
      { ...fresh, tokenizer: tokenizerFile },
      given,
      { resume: false, kernels: 'auto' },
      quiet(),
    );
    expect(readFileSync(join(given, 'tokenizer.json'), 'utf8')).toBe(readFileSync(tokenizerFile, 'utf8'));
  });

  it('a crash at any file commit leaves a log that is never behind the checkpoint; resuming is bit-exact', async () => {
    const renamesPerRun = 4 * 7; // four saves of seven files
    for (let crashAt = 1; crashAt <= renamesPerRun; crashAt++) {
      const out = join(dir, `crash-${crashAt}`);
      let renames = 0;
      commitHooks.beforeRename = () => {
        if (++renames === crashAt) throw new Error('simulated kill');
      };
      try {
        await expect(trainModel(settings, out, { resume: false, kernels: 'auto' }, quiet())).rejects.toThrow(
          'simulated kill',
        );
      } finally {
        commitHooks.beforeRename = undefined;
      }
      expect(temporaries(out)).toHaveLength(1); // what a kill leaves
      const checkpoint = join(out, CHECKPOINT_FILE);
      if (existsSync(checkpoint)) {
        const step = (await loadCheckpointStep(checkpoint)) as number;
        expect(Math.max(...logSteps(out)), `crash ${crashAt}`).toBeGreaterThanOrEqual(step);
        await trainModel(settings, out, { resume: true, kernels: 'auto' }, quiet());
      } else {
        await trainModel(settings, out, { resume: false, force: true, kernels: 'auto' }, quiet());
      }
      expect(temporaries(out), `crash ${crashAt}`).toEqual([]);
      expect(logSteps(out), `crash ${crashAt}`).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(withoutSpeed(readFileSync(join(out, LOG_FILE), 'utf8'))).toBe(
        withoutSpeed(readFileSync(join(straight, LOG_FILE), 'utf8')),
      );
      expect(readFileSync(checkpoint).equals(readFileSync(join(straight, CHECKPOINT_FILE)))).toBe(true);
    }
  });

  it('resuming cuts the log back to the checkpoint at once', async () => {
    const out = join(dir, 'log-ahead');
    await trainModel(settings, out, { resume: false, kernels: 'auto' }, quiet(10));
    const extra = { step: 11, lr: 0, trainLoss: 1, gradNorm: 1, tokensPerSecond: 1 };
    writeFileSync(
      join(out, LOG_FILE),
      readFileSync(join(out, LOG_FILE), 'utf8') + JSON.stringify(extra) + '\n',
    );
    await trainModel(settings, out, { resume: true, kernels: 'auto' }, quiet(1));
    expect(logSteps(out)).toEqual(Array.from({ length: 11 }, (_, i) => i + 1)); // 10, then one new step 11
  });

  it('--resume works from another directory, warns about an edited text, and honours --steps', async () => {
    const text = join(dir, 'moving.txt');
    copyFileSync(input, text);
    const out = join(dir, 'resume-cli');
    const small = ['--vocab-size', '300', '--dim', '16', '--layers', '2', '--heads', '2', '--kv-heads', '1'];
    const shape = [
      ...small,
      '--hidden',
      '24',
      '--seq-len',
      '16',
      '--batch',
      '4',
      '--steps',
      '10',
      '--threads',
      '1',
    ];
    const first = await runCli(['train', '--input', relative(process.cwd(), text), '--out', out, ...shape]);
    expect(first.stderr).toMatch(/done: 10 steps/);
    const stored = JSON.parse(readFileSync(join(out, TRAINING_SUMMARY_FILE), 'utf8')).settings;
    expect(stored.input).toBe(text); // absolute, so the run can be resumed from anywhere

    writeFileSync(text, readFileSync(text, 'utf8').replace(/lamps/g, 'lanterns'));
    const more = await runCli(['train', '--resume', '--out', out, '--steps', '15', '--threads', '1']);
    expect(more.code).toBe(0);
    expect(more.stderr).toMatch(/warning: .*moving\.txt has changed since this run started/);
    expect(more.stderr).toMatch(/--steps 15: training on to step 15 \(the run was set for 10\)/);
    expect(logSteps(out)).toHaveLength(15);

    const backwards = await runCli(['train', '--resume', '--out', out, '--steps', '12']);
    expect(backwards.stderr).toMatch(/--steps 12: the run is already at step 15/);
    const changed = await runCli(['train', '--resume', '--out', out, '--dim', '32', '--lr', '0.1']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(/--dim, --lr cannot change when resuming/);
  });

  it('an output folder that is a file or FIFO, or cannot be written, is refused before any work', async () => {
    for (const [path, message] of [
      [input, /cannot use it as the output folder: it is not a regular file|it is a/],
      [fifo(join(dir, 'out.fifo')), /it is a FIFO/],
      [join(unwritableFolder(), 'run'), /permission denied/],
      [join(dir, 'no', 'such', 'run'), /the folder .* does not exist/],
    ] as const) {
      const result = await runCli(['train', '--input', input, '--out', path]);
      expect(result.code, path).toBe(1);
      expect(result.stderr, path).toMatch(message);
      expect(result.stderr.startsWith(`glassbox: ${path}: `), result.stderr).toBe(true);
    }
  });

  it('a model too large for a checkpoint is refused before training', async () => {
    const result = await runCli(['train', '--input', input, '--out', join(dir, 'huge'), '--dim=65536']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/its checkpoint must stay under 2 GiB/);
  });
});

async function loadCheckpointStep(path: string): Promise<number> {
  const { parseSafetensors } = await import('../src/formats/safetensors.ts');
  return Number(parseSafetensors(new Uint8Array(readFileSync(path)), path).metadata.optimizerStep);
}

describe('glassbox train: several texts, and snapshots along the way', () => {
  const second = join(dir, 'second.txt');
  writeBlockText(second, 40, (i) => [
    `Report ${i + 1}`,
    `The committee met on day ${i + 4} and voted ${i + 2} to ${i + 1}.`,
    `Its chairman said the budget was ${i + 7} million dollars.`,
  ]);

  it('holds out each text alike and reports each one, their position-weighted mean as the validation loss', async () => {
    const out = join(dir, 'two-texts');
    await trainModel(
      { ...settings, input: [input, second], steps: 10 },
      out,
      { resume: false, kernels: 'auto' },
      quiet(),
    );
    const log = readFileSync(join(out, LOG_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const last = log.at(-1);
    expect(Object.keys(last.valLossBySource)).toEqual(['text', 'second']);
    // Recomputed here from the saved model, each text split and tokenized on its own.
    const { model, tokenizer } = await loadModelAndTokenizer(out);
    const losses = [input, second].map((path) => {
      const text = readFileSync(path, 'utf8');
      const val = tokenize(tokenizer, trainValidationSplit(text).val);
      const batches = sequentialBatches(val, settings.batchSize, settings.seqLen);
      const positions = batches.reduce((n, b) => n + b.batchSize * b.seqLen, 0);
      return { loss: houseValidationLoss(model, tokenizer, text, settings), positions };
    });
    expect(last.valLossBySource.text).toBeCloseTo(losses[0].loss, 5);
    expect(last.valLossBySource.second).toBeCloseTo(losses[1].loss, 5);
    const weighted =
      (losses[0].loss * losses[0].positions + losses[1].loss * losses[1].positions) /
      (losses[0].positions + losses[1].positions);
    expect(last.valLoss).toBeCloseTo(weighted, 5);
    const summary = JSON.parse(readFileSync(join(out, TRAINING_SUMMARY_FILE), 'utf8'));
    expect(summary.sources.map((s: { name: string }) => s.name)).toEqual(['text', 'second']);
    expect(summary.trainTokens).toBe(
      summary.sources.reduce((n: number, s: { trainTokens: number }) => n + s.trainTokens, 0),
    );
  });

  it('snapshotSteps: log-spaced from 10 to the last step, rounded, the last always kept', () => {
    expect(snapshotSteps(12, 20_000)).toEqual([
      10, 20, 40, 79, 160, 320, 630, 1300, 2500, 5000, 10_000, 20_000,
    ]);
    expect(snapshotSteps(3, 20)).toEqual([10, 14, 20]);
    expect(snapshotSteps(5, 3)).toEqual([3]);
    expect(snapshotSteps(0, 100)).toEqual([]);
  });

  it('keeps the model at each snapshot step: the same bytes a run stopped there saved as its model', async () => {
    const out = join(dir, 'snapshots');
    await trainModel({ ...settings, snapshots: 3 }, out, { resume: false, kernels: 'auto' }, quiet());
    expect(readdirSync(join(out, SNAPSHOT_FOLDER))).toEqual([10, 14, 20].map(snapshotFile));
    const final = readFileSync(join(out, SNAPSHOT_FOLDER, snapshotFile(20)));
    expect(final.equals(readFileSync(join(out, 'model.safetensors')))).toBe(true);
    const atTen = join(dir, 'ten-steps');
    await trainModel({ ...settings, steps: 20 }, atTen, { resume: false, kernels: 'auto' }, quiet(10));
    const snapshot = readFileSync(join(out, SNAPSHOT_FOLDER, snapshotFile(10)));
    expect(snapshot.equals(readFileSync(join(atTen, 'model.safetensors')))).toBe(true);
  });
});
