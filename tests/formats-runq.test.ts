/**
 * llama2.c's runq int8 checkpoints (src/formats/runq.ts): written from random weights the way export.py
 * --version 2 writes them, read back, run, and refused with one specific line when broken; and the C library's
 * float32 sine and cosine that runq's RoPE uses (src/engine/libm-float32.ts), against this machine's C library.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { cosf, sinf } from '../src/engine/libm-float32.ts';
import type { Model, RunqWeight } from '../src/engine/model.ts';
import { FormatError } from '../src/formats/errors.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { parseRunqCheckpoint, serializeRunq } from '../src/formats/runq.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { byteMutations, Fuzzer, rng } from './fuzz-helpers.ts';
import { smallConfig } from './helpers.ts';

const config = smallConfig({ dim: 32, hiddenDim: 64, vocabSize: 40 });
const f32Model = randomModel(config, 7, 0.5);
const file = serializeRunq(f32Model, 8);
const tied = randomModel({ ...config, sharedClassifier: true }, 8, 0.5);

describe('runq files', () => {
  it('read back: the header, the float32 norms as written, every matrix within half a step of its weights', () => {
    const model = parseLlama2cCheckpoint(file, 'tiny-q8.bin'); // a .bin: the llama2.c loader hands it over
    expect(model.config).toEqual(config);
    expect(model.weights.layers[1].ffnNorm.data).toEqual(f32Model.weights.layers[1].ffnNorm.data);
    expect(model.weights.finalNorm.data).toEqual(f32Model.weights.finalNorm.data);
    const pairs: [string, Model['weights']['classifier'], Float32Array][] = [
      ['classifier', model.weights.classifier, f32Model.weights.classifier.data],
      ['layers[0].wDown', model.weights.layers[0].wDown, f32Model.weights.layers[0].wDown.data],
      ['layers[1].wq', model.weights.layers[1].wq, f32Model.weights.layers[1].wq.data],
    ];
    for (const [name, weight, original] of pairs) {
      const q = weight.quantized as RunqWeight;
      expect(q.type, name).toBe('runq');
      expect(q.groupSize).toBe(8);
      for (let i = 0; i < original.length; i++) {
        const scale = q.scales[Math.floor(i / 8)];
        // Each group's scale is its max |w| / 127, so every weight is within half a step of q·scale.
        expect(Math.abs(weight.data[i] - original[i])).toBeLessThanOrEqual(scale * 0.5 * (1 + 1e-6));
      }
    }
    // The embedding lookup reads the dequantized table, as runq.c does.
    const embedding = model.weights.tokenEmbedding.data;
    const original = f32Model.weights.tokenEmbedding.data;
    for (let i = 0; i < embedding.length; i++)
      expect(Math.abs(embedding[i] - original[i])).toBeLessThan(0.02);
  });

  it('a shared classifier multiplies the stored embedding table', () => {
    const model = parseRunqCheckpoint(serializeRunq(tied, 8), 'tied-q8.bin');
    expect(model.config.sharedClassifier).toBe(true);
    expect(model.weights.classifier.data).toEqual(model.weights.tokenEmbedding.data);
    expect(model.weights.classifier.quantized?.type).toBe('runq');
  });

  it('runs: logits near the float32 model, prefill equal to decoding token by token', () => {
    const model = parseRunqCheckpoint(file, 'tiny-q8.bin');
    const tokens = [1, 5, 9, 2, 33, 17, 8];
    const run = (m: Model) => forward(m, tokens, new KVCache(config), { kernels: referenceKernels }).logits;
    const quantized = run(model);
    const reference = run(f32Model);
    let diff = 0;
    let scale = 0;
    quantized.forEach((v, i) => {
      diff = Math.max(diff, Math.abs(v - reference[i]));
      scale = Math.max(scale, Math.abs(reference[i]));
    });
    // Int8 weights and activations on a random model with weights of std 0.5: measured 3% of the scale.
    expect(diff / scale).toBeLessThan(0.08);
    expect(diff).toBeGreaterThan(0);
    // runq quantizes each row of activations on its own, so prefill and decode compute the same numbers.
    const cache = new KVCache(config);
    tokens.forEach((token, t) => {
      const { logits } = forward(model, [token], cache, { kernels: referenceKernels });
      expect(logits).toEqual(quantized.subarray(t * config.vocabSize, (t + 1) * config.vocabSize));
    });
  });

  const broken = (edit: (bytes: Uint8Array, view: DataView) => void) => {
    const bytes = new Uint8Array(file);
    edit(bytes, new DataView(bytes.buffer));
    return () => parseRunqCheckpoint(bytes, 'broken-q8.bin');
  };
  it('refuses broken files with one specific line', () => {
    expect(() => parseRunqCheckpoint(file.subarray(0, file.length - 3), 'short-q8.bin')).toThrow(
      /^short-q8\.bin: file is \d+ bytes but its header \(dim 32, hidden 64, 2 layers, vocab 40, group size 8, classifier separate\) needs exactly \d+ bytes \(truncated\?\)$/,
    );
    expect(() => parseRunqCheckpoint(file.subarray(0, 100), 'header-q8.bin')).toThrow(
      /too short for runq's 256-byte header/,
    );
    expect(broken((_, view) => view.setInt32(37, 0, true))).toThrow(
      /group size 0 must be between 1 and 65536/,
    );
    expect(broken((_, view) => view.setInt32(37, 7, true))).toThrow(
      /token_embedding has 1280 values, not whole groups of 7/,
    );
    expect(broken((bytes) => (bytes[36] = 2))).toThrow(/shared_classifier flag is 2; it must be 0 or 1/);
    expect(broken((_, view) => view.setInt32(8 + 4 * 3, 5, true))).toThrow(
      /dim 32 is not divisible by nHeads 5/,
    );
    // The first scale of the embedding table: after the header, the norms and the table's int8 values.
    const firstScale = 256 + 4 * (2 * 2 * 32 + 32) + 40 * 32;
    expect(broken((_, view) => view.setFloat32(firstScale, NaN, true))).toThrow(
      /token_embedding scales\[0\]: a scale is NaN; it must be finite/,
    );
    expect(broken((_, view) => view.setInt32(4, 3, true))).toThrow(/not a runq file/);
    expect(() => parseRunqCheckpoint(file.subarray(0, 10), 'x')).toThrow(FormatError);
  });

  it('loads or throws FormatError for 1,000 truncated and mutated files', () => {
    const random = rng(0x8);
    const fuzzer = new Fuzzer();
    for (const [label, bytes] of byteMutations(file, random, 1000, 256)) {
      fuzzer.attempt(label, () => parseLlama2cCheckpoint(bytes, 'fuzz-q8.bin'));
    }
    fuzzer.report('runq tiny-q8.bin', 800);
  });
});

/** This machine's C library, if a C compiler is here: sinf and cosf of `count` float32 angles. */
function cLibrary(count: number): { x: number; sin: number; cos: number }[] | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'glassbox-libm-'));
  const source = join(dir, 'trig.c');
  writeFileSync(
    source,
    `#include <stdio.h>
#include <math.h>
#include <stdint.h>
int main(void) {
  uint32_t s = 7;
  for (int i = 0; i < ${count}; i++) {
    s = s * 1664525u + 1013904223u;
    float x = ((s >> 8) / 16777216.0f) * 1200.0f - 600.0f;
    if (i % 3 == 0) x /= 1000.0f;
    printf("%.9g %.9g %.9g\\n", x, sinf(x), cosf(x));
  }
  return 0;
}
`,
  );
  try {
    execFileSync('cc', ['-O2', '-o', join(dir, 'trig'), source, '-lm'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return execFileSync(join(dir, 'trig'), { encoding: 'utf8', maxBuffer: 64 << 20 })
    .trim()
    .split('\n')
    .map((line) => {
      const [x, sin, cos] = line.split(' ').map((v) => Math.fround(Number(v)));
      return { x, sin, cos };
    });
}

describe('sinf and cosf as the C library computes them', () => {
  const values = cLibrary(30000);
  const machine = `${process.platform}-${process.arch}`;
  // The reference is glibc on x86-64 (where llama2.c's outputs were made); other C libraries round otherwise.
  const comparable =
    values !== undefined && machine === 'linux-x64' && readFileSync('/proc/cpuinfo', 'utf8').includes(' fma');
  (comparable ? it : it.skip)(
    'equal to this machine’s sinf/cosf for 30,000 angles in ±600 (RoPE reaches ±seqLen)',
    () => {
      let different = 0;
      for (const { x, sin, cos } of values ?? []) if (sinf(x) !== sin || cosf(x) !== cos) different++;
      expect(different).toBe(0);
    },
  );

  it('and within one float32 step of the true sine and cosine', () => {
    for (const x of [0, 1e-5, 0.5, 0.785, 1, 2, 3.14159, 29.5, 119.9, 120, 255, 511, -7.25, -300.5]) {
      const step = (v: number) => Math.max(2 ** -149, 2 ** (Math.floor(Math.log2(Math.abs(v) || 1)) - 23));
      const xf = Math.fround(x);
      expect(Math.abs(sinf(xf) - Math.sin(xf))).toBeLessThanOrEqual(step(Math.sin(xf)));
      expect(Math.abs(cosf(xf) - Math.cos(xf))).toBeLessThanOrEqual(step(Math.cos(xf)));
    }
  });
});
