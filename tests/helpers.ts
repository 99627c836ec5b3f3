/**
 * What the test files share: a seeded random generator and random arrays, the largest difference between two arrays, and the
 * Node loader for a model folder (the house model, or the copy the built site serves) with the kernels the
 * CLI and the course choose by default, and the tiny training text and model the training tests run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { mulberry32 } from '../src/engine/init.ts';
import { parameterCount, type Model, type ModelConfig } from '../src/engine/model.ts';
import type { ModelInfo } from '../src/app/lib/worker/protocol.ts';
import { setLoaded } from '../src/app/lib/worker/state.ts';
import { parseHfLlama } from '../src/formats/hf-llama.ts';
import { selectKernels, type KernelSet } from '../src/kernels/select.ts';
import { bpeTokenizer, fromTokenizerJson } from '../src/tokenizers/bpe.ts';
import type { Tokenizer } from '../src/tokenizers/tokenizer.ts';

/**
 * A seeded generator of numbers in [0, 1), so every "random" input is the same on every run and a failure
 * reproduces: the engine's own mulberry32 (src/engine/init.ts), which also fills random models.
 */
export function seededRandom(seed: number): () => number {
  return mulberry32(seed);
}

/**
 * Values in [−scale, scale), about 5% of them exact zeros (the reference products skip zeros; the fast
 * kernels must not care).
 */
export function randomArray(length: number, random: () => number, scale = 1): Float32Array {
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) values[i] = random() < 0.05 ? 0 : (random() * 2 - 1) * scale;
  return values;
}

/** max_i |a_i − b_i|, after checking that the arrays have the same length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** The kernels `glassbox` and the course use unless told otherwise: the fastest this runtime has. */
export function defaultKernels(): KernelSet {
  return selectKernels('auto');
}

/**
 * A Hugging Face model folder (config.json, model.safetensors, tokenizer.json) parsed in Node the way the
 * course's worker parses the files it fetches, so Node's numbers can be compared with the page's.
 */
export function loadModelFolder(folder: string): { model: Model; tokenizer: Tokenizer } {
  const model = parseHfLlama(
    readFileSync(join(folder, 'config.json'), 'utf8'),
    new Uint8Array(readFileSync(join(folder, 'model.safetensors'))),
    { config: 'config.json', weights: 'model.safetensors' },
  );
  const tokenizer = bpeTokenizer(fromTokenizerJson(readFileSync(join(folder, 'tokenizer.json'), 'utf8')));
  return { model, tokenizer };
}

/**
 * Writes `count` blank-line-separated blocks of `lines(i)` to `path`: a training text whose blocks the corpus's
 * held-out rule can pick whole for validation, as it picks our corpus's chapters.
 */
export function writeBlockText(path: string, count: number, lines: (i: number) => string[]): void {
  const blocks = Array.from({ length: count }, (_, i) => lines(i).join('\n'));
  writeFileSync(path, blocks.join('\n\n') + '\n');
}

/** A model small enough to train in a test in well under a second: the shape the training tests share. */
export const TINY_TRAINING_MODEL = {
  vocabSize: 300,
  dim: 16,
  layers: 2,
  heads: 2,
  kvHeads: 1,
  seqLen: 16,
  batchSize: 4,
} as const;

/**
 * A small Llama configuration for tests on random weights — two layers, grouped-query attention (4 query heads
 * sharing 2 key/value heads), head width 8 — with `overrides` for what a test needs otherwise.
 */
export function smallConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return {
    dim: 32,
    hiddenDim: 56,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: 50,
    seqLen: 32,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeLayout: 'interleaved',
    sharedClassifier: false,
    ...overrides,
  };
}

/**
 * Loads `model` into the engine worker's state (src/app/lib/worker/state.ts), as the page's "load" does,
 * for tests that call a chapter's worker handlers directly; `info` overrides the model's description.
 */
export function loadIntoWorker(model: Model, tokenizer: Tokenizer, info: Partial<ModelInfo> = {}): void {
  setLoaded({
    model,
    tokenizer,
    info: {
      id: 'test',
      label: 'test model',
      config: model.config,
      parameters: parameterCount(model),
      tokenizer: tokenizer.kind,
      kernels: 'ts',
      bytes: 0,
      loadMs: 0,
      ...info,
    },
  });
}
