/**
 * `glassbox inspect neurons --json`: the most active feed-forward neurons of the house model (and
 * stories260K) against a sort of the traced activations, and each neuron's promoted and suppressed tokens
 * against a float64 scoring of the whole vocabulary through the final gain and the classifier; bad layers,
 * positions and counts give one line and the usage (exit 2).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { runCli } from './cli-helpers.ts';
import { defaultKernels, loadModelFolder } from './helpers.ts';
import { describeShared, STORIES260K, TOK512 } from './shared.ts';

interface Scored {
  id: number;
  piece: string;
  score: number;
}

interface NeuronsJson {
  view: string;
  tokens: number[];
  position: number;
  top: number;
  layers: {
    layer: number;
    neurons: { neuron: number; activation: number; promoted: Scored[]; suppressed: Scored[] }[];
  }[];
}

function check(model: Model, json: NeuronsJson, layers: number[], position: number, k: number) {
  const { hiddenDim, dim, vocabSize } = model.config;
  const { trace } = forward(model, json.tokens, new KVCache(model.config), {
    trace: true,
    kernels: defaultKernels(),
  });
  expect(json.view).toBe('neurons');
  expect(json.position).toBe(position);
  expect(json.layers.map((l) => l.layer)).toEqual(layers);
  for (const { layer, neurons } of json.layers) {
    const act = trace.layers[layer].ffnActivation.data.subarray(
      position * hiddenDim,
      (position + 1) * hiddenDim,
    );
    const order = Array.from(act.keys()).sort((a, b) => Math.abs(act[b]) - Math.abs(act[a]));
    expect(neurons.map((n) => n.neuron)).toEqual(order.slice(0, k));
    for (const n of neurons) {
      expect(n.activation).toBeCloseTo(act[n.neuron], 5);
      const wDown = model.weights.layers[layer].wDown.data;
      const scores = Array.from({ length: vocabSize }, (_, v) => {
        let sum = 0;
        for (let i = 0; i < dim; i++)
          sum +=
            model.weights.classifier.data[v * dim + i] *
            model.weights.finalNorm.data[i] *
            wDown[i * hiddenDim + n.neuron];
        return sum;
      });
      const ranked = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]);
      expect(n.promoted.map((p) => p.id)).toEqual(ranked.slice(0, 5));
      expect(n.suppressed.map((p) => p.id)).toEqual([...ranked].reverse().slice(0, 5));
      n.promoted.forEach((p) => expect(p.score).toBeCloseTo(scores[p.id], 8));
    }
  }
}

describe('glassbox inspect neurons', () => {
  const { model } = loadModelFolder('models/house');
  const base = [
    'inspect',
    'neurons',
    '--model',
    'models/house',
    '--prompt',
    'And God said, Let there be',
    '--json',
  ];

  it('lists the top neurons of every layer at the last position by default', async () => {
    const result = await runCli(base);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout.toString()) as NeuronsJson;
    check(model, json, [0, 1, 2, 3], json.tokens.length - 1, 10);
  });

  it('takes --layer, --position and --top', async () => {
    const result = await runCli([...base, '--layer', '2', '--position', '3', '--top', '4']);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout.toString()) as NeuronsJson;
    check(model, json, [2], 3, 4);
  });

  it('refuses a layer, position or count that does not exist, with one line and the usage', async () => {
    const cases: [string[], RegExp][] = [
      [['--layer', '4'], /^glassbox: --layer 4 does not exist: the model has layers 0…3/],
      [['--layer=-1'], /^glassbox: --layer -1 does not exist/],
      [['--position', '8'], /^glassbox: --position 8 does not exist: the prompt has positions 0…7/],
      [['--position', 'last'], /^glassbox: --position must be a number/],
      [['--top', '0'], /^glassbox: --top must be a whole number from 1 to 384/],
    ];
    for (const [extra, message] of cases) {
      const result = await runCli([...base, ...extra]);
      expect(result.code, extra.join(' ')).toBe(2);
      expect(result.stderr.split('\n')[0]).toMatch(message);
      expect(result.stderr).toMatch(/Usage/);
      expect(result.stderr).not.toMatch(/ at .*\.ts:\d+/);
    }
  });
});

describeShared('glassbox inspect neurons on stories260K', () => {
  it('agrees with the recomputation on a llama2.c model', async () => {
    const model = parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin');
    const result = await runCli([
      'inspect',
      'neurons',
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--prompt',
      'Lily and Tom',
      '--json',
      '--layer',
      '4',
      '--top',
      '3',
    ]);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout.toString()) as NeuronsJson;
    check(model, json, [4], json.tokens.length - 1, 3);
  });
});
