/**
 * `glassbox inspect lens --json`: the logit-lens grid of the house model and of stories260K, checked cell
 * by cell against a float64 recomputation from a traced pass (final RMSNorm with its gain, classifier,
 * softmax), its last row against the pass's own logits; bad options give one line and the usage (exit 2).
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

interface LensJson {
  view: string;
  tokens: number[];
  pieces: string[];
  top: number;
  rows: {
    boundary: number;
    name: string;
    label: string;
    cells: { ids: number[]; pieces: string[]; probabilities: number[] }[];
  }[];
  settledRow: number[];
}

/** softmax(classifier · (g ⊙ x / rms(x))) in float64. */
function bruteCell(model: Model, x: ArrayLike<number>): number[] {
  const { dim, vocabSize, normEps } = model.config;
  let squares = 0;
  for (let i = 0; i < dim; i++) squares += x[i] * x[i];
  const scale = 1 / Math.sqrt(squares / dim + normEps);
  const logits = Array.from({ length: vocabSize }, (_, v) => {
    let sum = 0;
    for (let i = 0; i < dim; i++)
      sum += model.weights.classifier.data[v * dim + i] * model.weights.finalNorm.data[i] * x[i] * scale;
    return sum;
  });
  const max = Math.max(...logits);
  const total = logits.reduce((s, l) => s + Math.exp(l - max), 0);
  return logits.map((l) => Math.exp(l - max) / total);
}

function check(model: Model, json: LensJson, k: number) {
  const { tokens } = json;
  const T = tokens.length;
  const L = model.config.nLayers;
  const { dim, vocabSize } = model.config;
  const { trace } = forward(model, tokens, new KVCache(model.config), {
    trace: true,
    kernels: defaultKernels(),
  });
  expect(json.view).toBe('lens');
  expect(json.top).toBe(k);
  expect(json.rows.map((r) => r.name)).toEqual([
    ...Array.from({ length: L }, (_, l) => `layers[${l}].input`),
    `layers[${L - 1}].residualAfterFfn`,
  ]);
  const sources = [...trace.layers.map((l) => l.input), trace.layers[L - 1].residualAfterFfn];
  json.rows.forEach((row, r) => {
    expect(row.cells).toHaveLength(T);
    row.cells.forEach((cell, t) => {
      const p = bruteCell(model, sources[r].data.subarray(t * dim, (t + 1) * dim));
      const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
      cell.ids.forEach((id, j) => {
        // The engine's softmax adds its 4096 terms in float32 (sampling.ts), as the lens does to agree with
        // it bit for bit: near-certain cells lose the tiniest terms, up to about 1e-4 of the sum.
        expect(Math.abs(cell.probabilities[j] - p[id])).toBeLessThan(1e-4);
        if (Math.abs(p[order[j]] - p[id]) > 1e-6) expect(id).toBe(order[j]);
      });
    });
  });
  // The last row's top token is the model's own argmax at every position.
  for (let t = 0; t < T; t++) {
    const logits = trace.logits.data.subarray(t * vocabSize, (t + 1) * vocabSize);
    expect(json.rows[L].cells[t].ids[0]).toBe(logits.indexOf(Math.max(...logits)));
    const settled = json.settledRow[t];
    for (let r = settled; r <= L; r++)
      expect(json.rows[r].cells[t].ids[0]).toBe(json.rows[L].cells[t].ids[0]);
    if (settled > 0) expect(json.rows[settled - 1].cells[t].ids[0]).not.toBe(json.rows[L].cells[t].ids[0]);
  }
}

describe('glassbox inspect lens', () => {
  it('prints the lens grid of the house model, equal to a float64 recomputation', async () => {
    const { model } = loadModelFolder('models/house');
    const result = await runCli([
      'inspect',
      'lens',
      '--model',
      'models/house',
      '--prompt',
      'And God said, Let there be',
      '--json',
      '--top',
      '3',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout.toString()) as LensJson;
    check(model, json, 3);
    expect(json.rows[0].label).toBe('embedding');
    expect(json.rows[1].label).toBe('after layer 0');
  });

  it('refuses a bad --top with one line and the usage', async () => {
    for (const top of ['0', '2.5', 'many', '99999']) {
      const result = await runCli([
        'inspect',
        'lens',
        '--model',
        'models/house',
        '--prompt',
        'In',
        '--json',
        '--top',
        top,
      ]);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toMatch(/--top must be/);
      expect(result.stderr).not.toMatch(/ at .*\.ts:\d+/); // no stack trace
    }
  });

  it('refuses a prompt longer than the context', async () => {
    const result = await runCli([
      'inspect',
      'lens',
      '--model',
      'models/house',
      '--prompt',
      'and God said '.repeat(600),
      '--json',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(/context holds 512/);
  });
});

describeShared('glassbox inspect lens on stories260K', () => {
  it('matches the recomputation on a llama2.c model', async () => {
    const model = parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin');
    const result = await runCli([
      'inspect',
      'lens',
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--prompt',
      'Lily and Tom',
      '--json',
    ]);
    expect(result.code).toBe(0);
    check(model, JSON.parse(result.stdout.toString()) as LensJson, 5);
  });
});
