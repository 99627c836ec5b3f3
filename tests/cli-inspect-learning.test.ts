/**
 * `glassbox inspect learning --json` on the house model: each token's loss is a float64 log-softmax of the
 * engine's logits, their mean is the trainer's loss, the weight's backprop gradient is the trainer's, and the
 * finite difference at h = 1e-2 lands within truncation and float32 rounding of it (see
 * tests/analysis-learning.test.ts for the tolerance); a weight or tensor that does not exist is one line and
 * the usage (exit 2).
 */
import { describe, expect, it } from 'vitest';
import { parameterNamed, textBatch } from '../src/analysis/learning.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { TrainingModel } from '../src/engine/train/model.ts';
import { zerosLike } from '../src/engine/train/parameters.ts';
import { runCli } from './cli-helpers.ts';
import { defaultKernels, loadModelFolder } from './helpers.ts';

const HOUSE = 'models/house';

interface LearningJson {
  view: string;
  tokens: number[];
  losses: number[];
  mean: number;
  trainerLoss: number;
  parameter: string;
  row: number;
  col: number;
  value: number;
  backprop: number;
  differences: { h: number; estimate: number }[];
}

describe('glassbox inspect learning', () => {
  const { model } = loadModelFolder(HOUSE);
  const kernels = defaultKernels();
  const base = [
    'inspect',
    'learning',
    '--model',
    HOUSE,
    '--prompt',
    'And God said, Let there be light',
    '--json',
  ];

  it('prints the per-token losses, the trainer’s loss and one weight’s gradient two ways', async () => {
    const result = await runCli([...base, '--parameter', 'layers.1.wUp', '--row', '17', '--col', '40']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout.toString()) as LearningJson;
    expect(json.view).toBe('learning');
    const { tokens } = json;
    const V = model.config.vocabSize;
    const { logits } = forward(model, tokens, new KVCache(model.config), { logits: 'all', kernels });
    json.losses.forEach((loss, i) => {
      const row = Array.from(logits.subarray(i * V, (i + 1) * V));
      const max = Math.max(...row);
      const brute = Math.log(row.reduce((sum, z) => sum + Math.exp(z - max), 0)) - (row[tokens[i + 1]] - max);
      expect(loss).toBeCloseTo(brute, 5);
    });
    expect(json.mean).toBeCloseTo(json.losses.reduce((a, b) => a + b) / json.losses.length, 12);
    const trainer = new TrainingModel(model.config, model.weights, { kernels });
    // The CLI's kernels may sum in another order than these (threads): float32 rounding of a loss ≈ 7.
    expect(json.trainerLoss).toBeCloseTo(trainer.forward(textBatch(tokens)), 5);
    expect(json.trainerLoss).toBeCloseTo(json.mean, 5);
    const gradients = zerosLike(model.weights);
    trainer.backward(gradients);
    const index = 17 * model.config.dim + 40;
    const backprop = parameterNamed(gradients, 'layers.1.wUp').data[index];
    expect(json.value).toBe(model.weights.layers[1].wUp.data[index]);
    expect(Math.abs(json.backprop - backprop)).toBeLessThan(1e-7 + 1e-4 * Math.abs(backprop));
    const at = json.differences.find((d) => d.h === 1e-2)!;
    expect(Math.abs(at.estimate - backprop)).toBeLessThan(1e-3 + 1e-2 * Math.abs(backprop));
  });

  it('refuses a tensor, row or column that does not exist, with one line and the usage', async () => {
    const cases: [string[], RegExp][] = [
      [['--parameter', 'layers.9.wq'], /^glassbox: --parameter layers.9.wq does not exist/],
      [['--row', '128'], /^glassbox: --row 128 does not exist: the model has rows of layers.0.wq 0…127/],
      [['--parameter', 'finalNorm', '--row', '1'], /^glassbox: --row 1 does not exist/],
    ];
    for (const [extra, message] of cases) {
      const result = await runCli([...base, ...extra]);
      expect(result.code, extra.join(' ')).toBe(2);
      expect(result.stderr.split('\n')[0]).toMatch(message);
      expect(result.stderr).toMatch(/Usage/);
    }
  });
});
