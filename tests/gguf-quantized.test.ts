/**
 * GGUF matrices in q8_0, q4_0, q4_1, f16 and bf16 stay in their blocks and run as stored: the house model
 * written by toGguf (what `glassbox quantize` writes), read back, run, and held to the same file run with every
 * matrix widened to float32 — the difference is then only ggml's quantization of the activations.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model, Weight } from '../src/engine/model.ts';
import { quantizeModel } from '../src/engine/quant-matmul.ts';
import { parseGgufLlama, toGguf, type GgufWriteType } from '../src/formats/gguf-llama.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { fromTokenizerJson } from '../src/tokenizers/bpe.ts';
import { runCli } from './cli-helpers.ts';
import { loadModelFolder } from './helpers.ts';
import { denseModel } from '../src/engine/quant-matmul.ts';

const { model: house, tokenizer } = loadModelFolder('models/house');
const raw = {
  kind: 'gpt2' as const,
  tokenizer: fromTokenizerJson(readFileSync('models/house/tokenizer.json', 'utf8')),
};
const tokens = tokenizer.encode('And God said, Let there be light: and there was light.', {
  bos: true,
  eos: false,
});

const logitsOf = (model: Model) =>
  forward(model, tokens, new KVCache(model.config), { kernels: referenceKernels }).logits;

function relativeChange(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

describe('GGUF blocks kept and run directly', () => {
  // Largest logit change over the largest logit, quantized activations against float32 ones, measured on the
  // house model and these tokens: f16 and bf16 0 (a widened row summed in float64 is exactly the float32
  // path); q8_0 0.87%, q4_0 1.2%, q4_1 1.0% (ggml's int8 activations against the same weights). ~2× room.
  const BOUNDS: Record<Exclude<GgufWriteType, 'f32'>, number> = {
    f16: 1e-6,
    bf16: 1e-6,
    q8_0: 0.02,
    q4_0: 0.025,
    q4_1: 0.025,
  };
  for (const type of Object.keys(BOUNDS) as (keyof typeof BOUNDS)[]) {
    it(`${type}: matrices stay ${type}; logits within ${BOUNDS[type]} of the widened model's; as quantizeModel`, () => {
      const { model } = parseGgufLlama(toGguf(house, raw, type).bytes, `house-${type}.gguf`);
      expect(model.weights.layers[2].wUp.quantized?.type).toBe(type);
      expect(model.weights.classifier.quantized?.type).toBe(type); // tied: the embedding table's own blocks
      expect((model.weights.layers[2].ffnNorm as Weight).quantized).toBeUndefined();
      const direct = logitsOf(model);
      const change = relativeChange(direct, logitsOf(denseModel(model)));
      expect(change).toBeLessThan(BOUNDS[type]);
      // The same blocks as quantizeModel stores; the file's q/k rows are only reordered for its RoPE layout
      // (measured: 0, or 1.2e-7 for bf16).
      expect(relativeChange(direct, logitsOf(quantizeModel(house, type)))).toBeLessThan(1e-6);
    });
  }

  it('glassbox generate runs a q4_0 GGUF file directly, the same text on both kernel sets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-gguf-q4-'));
    const path = join(dir, 'house-q4_0.gguf');
    writeFileSync(path, toGguf(house, raw, 'q4_0').bytes);
    const run = (kernels: string) =>
      runCli([
        'generate',
        '--model',
        path,
        '--prompt',
        'In the beginning',
        '--steps',
        '24',
        '--temperature',
        '0',
        '--kernels',
        kernels,
      ]);
    const [ts, wasm] = [await run('ts'), await run('wasm')];
    expect(ts.code).toBe(0);
    expect(ts.stdout.toString('utf8')).toMatch(/^In the beginning/);
    expect(wasm.stdout.toString('utf8')).toBe(ts.stdout.toString('utf8'));
  });
});
