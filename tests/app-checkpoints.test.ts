/**
 * The time-machine's index of the house model's checkpoints (src/app/lib/checkpoints.ts) and the course's
 * name for a checkpoint ("house@<step>", src/app/lib/train/model-id.ts): a malformed index is refused with a
 * message that names what is wrong; a site without one has no history.
 */
import { describe, expect, it } from 'vitest';
import {
  checkpointAt,
  checkpointLabel,
  historySummary,
  lastStep,
  loadCheckpointIndex,
  parseCheckpointIndex,
} from '../src/app/lib/checkpoints.ts';
import {
  houseCheckpointId,
  houseCheckpointStepOf,
  isHouseOrCheckpoint,
  trainedRunOf,
} from '../src/app/lib/train/model-id.ts';

const step = (n: number, file: string | null) => ({
  step: n,
  tokensSeen: n * 1024,
  file,
  bytes: file ? 1000 : 0,
  valLoss: { web: 5, brown: 6, all: 5.5 },
  samples: ['In the beginning …', 'The jury said …'],
});
const valid = () => ({
  seed: 7,
  prompts: ['In the beginning', 'The jury said'],
  steps: [step(0, null), step(10, 'step-000010.gguf'), step(100, 'step-000100.gguf'), step(1000, null)],
});
const parse = (value: unknown) => parseCheckpointIndex(JSON.stringify(value));

describe('the checkpoints index', () => {
  it('reads a valid index', () => {
    const index = parse(valid());
    expect(index.seed).toBe(7);
    expect(index.steps.map((entry) => entry.step)).toEqual([0, 10, 100, 1000]);
    expect(checkpointAt(index, 100)?.file).toBe('step-000100.gguf');
    expect(checkpointAt(index, 50)).toBeUndefined();
    expect(lastStep(index)).toBe(1000);
    expect(checkpointLabel(630, 3000)).toBe('the house model at step 630 of 3,000');
  });

  it('sums the history up for the prose: spacing, files, and the losses at the start, early on and at the end', () => {
    const index = parse(valid());
    index.steps[1].valLoss = { web: 4, brown: 4.2, all: 4.1 };
    index.steps[2].valLoss = { web: 3, brown: 3.4, all: 3.2 };
    index.steps[3].valLoss = { web: 2.5, brown: 2.9, all: 2.7 };
    expect(historySummary(index)).toEqual({
      count: 4,
      last: 1000,
      first: 10,
      second: 100,
      ratio: 10, // 10 → 100 → 1000
      files: 2,
      megabytes: 0.002,
      tokens: 1000 * 1024,
      untrained: 5.5,
      early: { step: 100, loss: 3.2 }, // the kept step nearest a tenth of 1,000
      final: 2.7,
      restarts: [], // the index names none: a run trained in one go
    });
    expect(historySummary(parse({ ...valid(), restarts: [501] })).restarts).toEqual([501]);
    // A one-source run has no "all": its one source's loss stands for it.
    const oneSource = parse({
      ...valid(),
      steps: valid().steps.map((entry) => ({ ...entry, valLoss: { web: entry.step === 0 ? 6 : 3 } })),
    });
    expect(historySummary(oneSource).untrained).toBe(6);
  });

  it('gives the usual spacing of a resumed run, whose last checkpoints follow the longer schedule', () => {
    // Steps 10 … 4,500 about 1.74× apart, then 4,800 and 9,000 from the run resumed to 9,000 steps.
    const kept = [0, 10, 17, 30, 53, 92, 160, 280, 490, 850, 1500, 2600, 4500, 4800, 9000];
    const index = parse({
      ...valid(),
      steps: kept.map((n) =>
        step(n, n === 0 || n === 9000 ? null : `step-${String(n).padStart(6, '0')}.gguf`),
      ),
    });
    // Thirteen factors, from 1.07 (4,500 → 4,800) to 1.88 (4,800 → 9,000); their median is 160 / 92.
    expect(historySummary(index).ratio).toBeCloseTo(160 / 92, 12);
    expect(historySummary(index).count).toBe(15);
  });

  it('refuses text that is not JSON', () => {
    expect(() => parseCheckpointIndex('{"seed": 7,')).toThrow(/index\.json: not JSON/);
  });

  it('names a missing field', () => {
    const { seed: _, ...noSeed } = valid();
    expect(() => parse(noSeed)).toThrow(/missing the field seed/);
    const noSamples = valid();
    delete (noSamples.steps[2] as Partial<ReturnType<typeof step>>).samples;
    expect(() => parse(noSamples)).toThrow('steps[2] is missing the field samples');
    const noSteps = { seed: 7 };
    expect(() => parse(noSteps)).toThrow(/missing the field steps/);
  });

  it('refuses restarts that are not step numbers', () => {
    expect(() => parse({ ...valid(), restarts: [501, -1] })).toThrow(
      'restarts must be a list of step numbers',
    );
    expect(() => parse({ ...valid(), restarts: 'at 501' })).toThrow(
      'restarts must be a list of step numbers',
    );
  });

  it('refuses steps that do not increase', () => {
    const index = valid();
    index.steps[2].step = 10;
    expect(() => parse(index)).toThrow('steps must increase: steps[2] is step 10, after step 10');
  });

  it('refuses a history that does not start at step 0, or files where there must be none', () => {
    const late = valid();
    late.steps[0] = step(5, null);
    expect(() => parse(late)).toThrow('the first step must be 0');
    const lastWithFile = valid();
    lastWithFile.steps[3].file = 'step-001000.gguf';
    expect(() => parse(lastWithFile)).toThrow(/steps\[3\] \(step 1000\) must have file null/);
    const noFile = valid();
    noFile.steps[1].file = null;
    expect(() => parse(noFile)).toThrow(/steps\[1\]\.file must name a \.gguf file/);
  });

  it('refuses a file name that leaves the checkpoints folder, and losses that are not numbers', () => {
    const escape = valid();
    escape.steps[1].file = '../model.gguf';
    expect(() => parse(escape)).toThrow(/steps\[1\]\.file must name a \.gguf file in checkpoints\//);
    const badLoss = valid();
    (badLoss.steps[1].valLoss as Record<string, unknown>).web = 'low';
    expect(() => parse(badLoss)).toThrow('steps[1].valLoss must map each source to a finite loss');
  });

  it('is no history when the site serves none, is fetched once, and is asked again after a failure', async () => {
    let calls = 0;
    const missing = (async () => {
      calls++;
      return new Response('not found', { status: 404 });
    }) as typeof fetch;
    expect(await loadCheckpointIndex('http://a.test', missing)).toBeUndefined();
    expect(await loadCheckpointIndex('http://a.test', missing)).toBeUndefined();
    expect(calls).toBe(1);
    const served = (async () => new Response(JSON.stringify(valid()))) as typeof fetch;
    expect((await loadCheckpointIndex('http://b.test', served))?.seed).toBe(7);
    const broken = (async () => new Response('{')) as typeof fetch;
    await expect(loadCheckpointIndex('http://c.test', broken)).rejects.toThrow(/not JSON/);
    const failing = (async () => new Response('', { status: 500 })) as typeof fetch;
    await expect(loadCheckpointIndex('http://d.test', failing)).rejects.toThrow(/HTTP 500/);
    // A failure is not remembered: the next call asks again, and gets the index.
    expect((await loadCheckpointIndex('http://c.test', served))?.seed).toBe(7);
  });
});

describe('the course’s name for a checkpoint', () => {
  it('reads house@N', () => {
    expect(houseCheckpointId(630)).toBe('house@630');
    expect(houseCheckpointStepOf('house@630')).toBe(630);
    expect(houseCheckpointStepOf('house@0')).toBe(0);
    for (const other of [
      'house',
      'house@',
      'house@-1',
      'house@01',
      'house@1.5',
      'house@1e3',
      'house@x',
      ' house@5',
    ])
      expect(houseCheckpointStepOf(other), other).toBeUndefined();
    expect(houseCheckpointStepOf('house@1234567890')).toBeUndefined();
    expect(isHouseOrCheckpoint('house')).toBe(true);
    expect(isHouseOrCheckpoint('house@30')).toBe(true);
    expect(isHouseOrCheckpoint('trained:run-a')).toBe(false);
    expect(trainedRunOf('house@30')).toBeUndefined();
  });
});

describe('the model folder’s history, as the build serves it', () => {
  it('lists the index, the files it names and the log; nothing without an index; warns on a missing file', async () => {
    const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { historyFiles } = await import('../src/app/build/plugins.ts');
    const folder = mkdtempSync(join(tmpdir(), 'glassbox-history-'));
    try {
      expect(historyFiles(folder)).toEqual([]);
      writeFileSync(join(folder, 'train-log.jsonl'), '{"step":1,"trainLoss":8}\n');
      expect(historyFiles(folder)).toEqual([]); // a log without a history is not shown, so not served
      mkdirSync(join(folder, 'checkpoints'));
      writeFileSync(join(folder, 'checkpoints', 'index.json'), JSON.stringify(valid()));
      const warnings: string[] = [];
      expect(historyFiles(folder, (message) => warnings.push(message))).toEqual([]);
      expect(warnings[0]).toMatch(/names files that are not there \(checkpoints\/step-000010\.gguf/);
      writeFileSync(join(folder, 'checkpoints', 'step-000010.gguf'), 'x');
      writeFileSync(join(folder, 'checkpoints', 'step-000100.gguf'), 'x');
      expect(historyFiles(folder)).toEqual([
        'train-log.jsonl',
        'checkpoints/index.json',
        'checkpoints/step-000010.gguf',
        'checkpoints/step-000100.gguf',
      ]);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
