/**
 * The model loaders and the safetensors saver: exact values on the real stories260K checkpoints, specific
 * messages for specific damage, and small hand-built files for the cases the real ones cannot show.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedShapes } from '../src/engine/model.ts';
import type { LayerWeights, Model, ModelConfig, Tensor } from '../src/engine/model.ts';
import { FormatError } from '../src/formats/errors.ts';
import { parseHfLlama, permuteForHalfRope, toHfLlama } from '../src/formats/hf-llama.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { findTokenizerFile, loadModel, MAX_MODEL_FILE_BYTES } from '../src/formats/node.ts';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  parseSafetensors,
  serializeSafetensors,
} from '../src/formats/safetensors.ts';
import { describeShared, readOracleJson, STORIES260K, STORIES260K_HF, TOK512 } from './shared.ts';

// ---------------------------------------------------------------------------------------------- helpers

/** A fresh, private copy of a file (mutating it cannot affect other tests). */
const readBytes = (path: string) => new Uint8Array(readFileSync(path));

/** Runs fn, which must throw a FormatError; returns its message. */
function formatErrorMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FormatError);
    return (error as FormatError).message;
  }
  throw new Error('expected a FormatError, but nothing was thrown');
}

/** Index of the first float whose bits differ (so -0 ≠ 0), or -1: "bit-exact" means -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const aBits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const bBits = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < aBits.length; i++) if (aBits[i] !== bBits[i]) return i;
  return -1;
}

const LAYER_KEYS: (keyof LayerWeights)[] = [
  'attnNorm', 'wq', 'wk', 'wv', 'wo', 'ffnNorm', 'wGate', 'wUp', 'wDown',
]; // prettier-ignore

/** Every tensor of a model under a readable name, for whole-model comparisons. */
function namedTensors(model: Model): Map<string, Tensor> {
  const w = model.weights;
  const out = new Map<string, Tensor>([
    ['tokenEmbedding', w.tokenEmbedding],
    ['finalNorm', w.finalNorm],
    ['classifier', w.classifier],
  ]);
  w.layers.forEach((layer, l) => LAYER_KEYS.forEach((key) => out.set(`layers[${l}].${key}`, layer[key])));
  return out;
}

function expectModelsBitEqual(actual: Model, expected: Model): void {
  expect(actual.config).toEqual(expected.config);
  const a = namedTensors(actual);
  for (const [name, tensor] of namedTensors(expected)) {
    expect(a.get(name)!.shape, name).toEqual(tensor.shape);
    expect(firstBitDifference(a.get(name)!.data, tensor.data), name).toBe(-1);
  }
}

/** A small model with deterministic, distinct weights (no file needed). */
function tinyModel(overrides: Partial<ModelConfig> = {}): Model {
  const config: ModelConfig = {
    dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 10, seqLen: 4,
    normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', sharedClassifier: true, ...overrides,
  }; // prettier-ignore
  const shapes = expectedShapes(config);
  let seed = 0;
  const tensor = (shape: number[]): Tensor => {
    const data = new Float32Array(shape.reduce((p, s) => p * s, 1));
    for (let i = 0; i < data.length; i++) data[i] = Math.fround(Math.sin(++seed * 0.37) * 0.5);
    return { data, shape };
  };
  const tokenEmbedding = tensor(shapes.tokenEmbedding);
  const layers = Array.from({ length: config.nLayers }, () => {
    const layer = {} as LayerWeights;
    for (const key of LAYER_KEYS) layer[key] = tensor(shapes.layer[key]);
    return layer;
  });
  const finalNorm = tensor(shapes.finalNorm);
  const classifier = config.sharedClassifier ? tokenEmbedding : tensor(shapes.classifier);
  return { config, weights: { tokenEmbedding, layers, finalNorm, classifier } };
}

/** An independent writer of the llama2.c layout (run.c's memory_map_weights order), for the tests only. */
function llama2cBytes(model: Model): Uint8Array {
  const c = model.config;
  const hs = c.dim / c.nHeads;
  const w = model.weights;
  const stacked = (key: keyof LayerWeights) => w.layers.map((layer) => layer[key].data);
  const parts: Float32Array[] = [
    w.tokenEmbedding.data,
    ...(['attnNorm', 'wq', 'wk', 'wv', 'wo', 'ffnNorm', 'wGate', 'wDown', 'wUp'] as const).flatMap(stacked),
    w.finalNorm.data,
    new Float32Array(c.seqLen * hs), // the legacy freq_cis_real and freq_cis_imag halves
    ...(c.sharedClassifier ? [] : [w.classifier.data]),
  ];
  const header = new Int32Array([
    c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.sharedClassifier ? c.vocabSize : -c.vocabSize, c.seqLen,
  ]); // prettier-ignore
  const out = new Uint8Array(28 + 4 * parts.reduce((n, p) => n + p.length, 0));
  out.set(new Uint8Array(header.buffer), 0);
  let offset = 28;
  for (const part of parts) {
    out.set(new Uint8Array(part.buffer, part.byteOffset, part.byteLength), offset);
    offset += part.byteLength;
  }
  return out;
}

/** Overwrites header field i (0 = dim … 6 = seq_len) of a llama2.c file copy. */
function withHeaderField(bytes: Uint8Array, field: number, value: number): Uint8Array {
  const copy = new Uint8Array(bytes);
  new DataView(copy.buffer).setInt32(4 * field, value, true);
  return copy;
}

/** A safetensors file from a header object (or raw header text) and a data buffer, with no validation. */
function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json =
    typeof header === 'string'
      ? new TextEncoder().encode(header)
      : new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const f32Bytes = (...values: number[]) => new Uint8Array(new Float32Array(values).buffer);
const u16Bytes = (...values: number[]) => new Uint8Array(new Uint16Array(values).buffer);

// ---------------------------------------------------------------------------------------------- float16 / bfloat16

describe('float16 and bfloat16 widening', () => {
  it('decodes hand-computed float16 values', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0xc000)).toBe(-2);
    expect(float16ToFloat32(0x7bff)).toBe(65504); // the largest float16
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24); // the smallest subnormal
    expect(float16ToFloat32(0x03ff)).toBe(1023 * 2 ** -24); // the largest subnormal
    expect(float16ToFloat32(0x0400)).toBe(2 ** -14); // the smallest normal
    expect(float16ToFloat32(0x3555)).toBe(0.333251953125); // 1/3 rounded to 10 fraction bits
    expect(Object.is(float16ToFloat32(0x8000), -0)).toBe(true);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
    expect(float16ToFloat32(0xfc00)).toBe(-Infinity);
    expect(float16ToFloat32(0x7e00)).toBeNaN();
  });

  it('decodes hand-computed bfloat16 values', () => {
    expect(bfloat16ToFloat32(0x3f80)).toBe(1);
    expect(bfloat16ToFloat32(0xc000)).toBe(-2);
    expect(bfloat16ToFloat32(0x4049)).toBe(3.140625); // pi with 7 fraction bits
    expect(bfloat16ToFloat32(0x7f7f)).toBe(Math.fround(2 ** 127 * (2 - 2 ** -7))); // the largest bfloat16
    expect(bfloat16ToFloat32(0x0001)).toBe(2 ** -133); // the smallest subnormal
    expect(Object.is(bfloat16ToFloat32(0x8000), -0)).toBe(true);
  });

  it('widens F16 and BF16 tensors of a file to float32', () => {
    const f16 = u16Bytes(0x3c00, 0xc000, 0x7bff, 0x0001);
    const bf16 = u16Bytes(0x3f80, 0xc000, 0x4049, 0x8000);
    const file = rawSafetensors(
      {
        half: { dtype: 'F16', shape: [2, 2], data_offsets: [0, 8] },
        brain: { dtype: 'BF16', shape: [4], data_offsets: [8, 16] },
      },
      new Uint8Array([...f16, ...bf16]),
    );
    const { tensors } = parseSafetensors(file, 'mixed.safetensors');
    expect(tensors.get('half')).toEqual({
      dtype: 'F16',
      shape: [2, 2],
      data: new Float32Array([1, -2, 65504, 2 ** -24]),
    });
    expect([...tensors.get('brain')!.data]).toEqual([1, -2, 3.140625, -0]);
    expect(Object.is(tensors.get('brain')!.data[3], -0)).toBe(true);
  });

  it('rejects an F16 infinity like any other non-finite weight', () => {
    const file = rawSafetensors(
      { x: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } },
      u16Bytes(0x3c00, 0x7c00),
    );
    expect(formatErrorMessage(() => parseSafetensors(file, 'inf.safetensors'))).toMatch(
      /"x" holds Infinity at \[1\]/,
    );
  });
});

// ---------------------------------------------------------------------------------------------- safetensors

describe('safetensors save and load', () => {
  const awkward = new Float32Array([
    0,
    -0,
    1,
    -1,
    1.401298464324817e-45 /* smallest subnormal */,
    -1.1754942106924411e-38 /* largest subnormal */,
    1.1754943508222875e-38 /* smallest normal */,
    3.4028234663852886e38 /* max */,
    Math.fround(Math.PI),
    -1e-30,
  ]);

  it('round-trips bit-exactly, including -0 and subnormals, with metadata', () => {
    const tensors = {
      b: { data: awkward, shape: [2, 5] },
      a: { data: new Float32Array([7]), shape: [] },
      e: { data: new Float32Array(0), shape: [3, 0] },
    };
    const bytes = serializeSafetensors(tensors, { format: 'pt', note: 'ünïcode ✓' });
    const parsed = parseSafetensors(bytes, 'round-trip.safetensors');
    expect(parsed.metadata).toEqual({ format: 'pt', note: 'ünïcode ✓' });
    expect([...parsed.tensors.keys()]).toEqual(['a', 'b', 'e']); // sorted name order
    expect(firstBitDifference(parsed.tensors.get('b')!.data, awkward)).toBe(-1);
    expect(parsed.tensors.get('b')!.shape).toEqual([2, 5]);
    expect(parsed.tensors.get('a')!.shape).toEqual([]);
    expect(parsed.tensors.get('e')!.data.length).toBe(0);
  });

  it('writes a space-padded header of a multiple of 8 bytes, and the same bytes for the same tensors', () => {
    const one = { x: { data: awkward, shape: [10] }, y: { data: new Float32Array([1, 2, 3]), shape: [3] } };
    const bytes = serializeSafetensors(one);
    const headerLength = new DataView(bytes.buffer).getUint32(0, true);
    expect(headerLength % 8).toBe(0);
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(0);
    expect(bytes[8 + headerLength - 1]).toBe(0x20);
    const reordered = { y: one.y, x: one.x };
    expect(serializeSafetensors(reordered)).toEqual(bytes);
  });

  it('refuses to save non-finite values (the loader would refuse them), naming the tensor and index', () => {
    const nan = new Float32Array([1, 2, NaN]);
    expect(() => serializeSafetensors({ w: { data: nan, shape: [3] } })).toThrow(/"w" holds NaN at \[2\]/);
    const inf = new Float32Array([1, -Infinity]);
    expect(() => serializeSafetensors({ w: { data: inf, shape: [1, 2] } })).toThrow(/-Infinity at \[0, 1\]/);
    expect(() => serializeSafetensors({ w: { data: inf, shape: [3] } })).toThrow(/3 elements but data has 2/);
  });

  it('reads a file that starts at an odd address (copying instead of viewing)', () => {
    const bytes = serializeSafetensors({ x: { data: awkward, shape: [10] } });
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const parsed = parseSafetensors(shifted.subarray(1), 'odd.safetensors');
    expect(firstBitDifference(parsed.tensors.get('x')!.data, awkward)).toBe(-1);
  });

  const entry = (begin: number, end: number, shape = [(end - begin) / 4]) => ({
    dtype: 'F32',
    shape,
    data_offsets: [begin, end],
  });
  const data16 = f32Bytes(1, 2, 3, 4);
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than the length field', new Uint8Array(5), /5 bytes, too short for the 8-byte/],
    ['a header length of 2^40', (() => { const b = rawSafetensors({}); new DataView(b.buffer).setUint32(4, 256, true); return b; })(), /header length field says 1099511627778 bytes, more than the 100000000-byte limit/],
    ['a header length past the end of the file', (() => { const b = rawSafetensors({}); new DataView(b.buffer).setUint32(0, 4000, true); return b; })(), /says 4000 bytes, but the file has only 2 bytes after it/],
    ['a header that is not UTF-8', rawSafetensors('{"__":1}').map((byte, i) => (i === 10 ? 0xff : byte)) /* {"\xff_":1} */, /not valid UTF-8/],
    ['a header that is not JSON', rawSafetensors('{"a": [1, }'), /not valid JSON/],
    ['a header that is an array', rawSafetensors([1, 2]), /header must be a JSON object, got \[1,2\]/],
    ['an F64 tensor', rawSafetensors({ x: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, data16), /"x" has dtype F64, which this loader does not read \(it reads F32, F16 and BF16\)/],
    ['an unknown dtype', rawSafetensors({ x: { dtype: 'F33', shape: [4], data_offsets: [0, 16] } }, data16), /unknown dtype "F33"/],
    ['a negative shape', rawSafetensors({ x: entry(0, 16, [-4]) }, data16), /must hold non-negative integers, found -4/],
    ['a string in the shape', rawSafetensors({ x: entry(0, 16, ['4' as unknown as number]) }, data16), /found "4"/],
    ['a shape that does not match the bytes', rawSafetensors({ x: entry(0, 16, [2, 3]) }, data16), /shape \[2,3\] of F32 needs 24 bytes, but data_offsets \[0, 16\] hold 16 bytes/],
    ['a huge shape', rawSafetensors({ x: entry(0, 16, [2 ** 40, 2 ** 40]) }, data16), /needs more than 2\^53 bytes/],
    ['offsets past the data', rawSafetensors({ x: entry(0, 32) }, data16), /\[0, 32\] reach past the end of the 16-byte data buffer/],
    ['negative offsets', rawSafetensors({ x: { dtype: 'F32', shape: [4], data_offsets: [-16, 0] } }, data16), /must be non-negative integers/],
    ['overlapping tensors', rawSafetensors({ a: entry(0, 12), b: entry(8, 16) }, data16), /tensors "a" \[0, 12\) and "b" \[8, 16\) overlap/],
    ['a hole between tensors', rawSafetensors({ a: entry(0, 4), b: entry(8, 16) }, data16), /bytes \[4, 8\) of the data buffer belong to no tensor/],
    ['bytes after the last tensor', rawSafetensors({ a: entry(0, 8) }, data16), /data buffer is 16 bytes but the tensors cover only the first 8/],
    ['non-string metadata', rawSafetensors({ __metadata__: { n: 1 }, a: entry(0, 16) }, data16), /__metadata__.n must be a string, got 1/],
    ['a NaN weight', rawSafetensors({ a: entry(0, 16, [2, 2]) }, f32Bytes(1, 2, NaN, 4)), /"a" holds NaN at \[1, 0\]/],
  ]; // prettier-ignore
  it.each(cases)('says exactly what is wrong with %s', (_, bytes, message) => {
    expect(formatErrorMessage(() => parseSafetensors(bytes, 'bad.safetensors'))).toMatch(
      /^bad\.safetensors: /,
    );
    expect(formatErrorMessage(() => parseSafetensors(bytes, 'bad.safetensors'))).toMatch(message);
  });
});

// ---------------------------------------------------------------------------------------------- llama2.c (synthetic)

describe('llama2.c checkpoints (hand-built)', () => {
  it('reads a shared-classifier model as views on the input, and an unshared one', () => {
    const shared = tinyModel();
    const bytes = llama2cBytes(shared);
    const loaded = parseLlama2cCheckpoint(bytes, 'tiny.bin');
    expectModelsBitEqual(loaded, shared);
    expect(loaded.weights.classifier).toBe(loaded.weights.tokenEmbedding);
    expect(loaded.weights.layers[1].wDown.data.buffer).toBe(bytes.buffer); // no copy

    const unshared = tinyModel({ sharedClassifier: false });
    const loadedUnshared = parseLlama2cCheckpoint(llama2cBytes(unshared), 'tiny-unshared.bin');
    expectModelsBitEqual(loadedUnshared, unshared);
    expect(loadedUnshared.weights.classifier).not.toBe(loadedUnshared.weights.tokenEmbedding);
  });

  it('copies when the floats are not 4-byte aligned', () => {
    const bytes = llama2cBytes(tinyModel());
    const shifted = new Uint8Array(bytes.length + 2);
    shifted.set(bytes, 2);
    const loaded = parseLlama2cCheckpoint(shifted.subarray(2), 'odd.bin');
    expectModelsBitEqual(loaded, tinyModel());
    expect(loaded.weights.tokenEmbedding.data.buffer).not.toBe(shifted.buffer);
  });

  const good = llama2cBytes(tinyModel());
  const goodUnshared = llama2cBytes(tinyModel({ sharedClassifier: false }));
  const header = '(dim=8, hidden_dim=12, n_layers=2, n_heads=2, n_kv_heads=1, vocab_size=10, seq_len=4)';
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than the header', good.subarray(0, 20), /20 bytes, too short for the 28-byte llama2.c header/],
    ['a truncated file', good.subarray(0, good.length - 4), new RegExp(`file is ${good.length - 4} bytes but the header \\(dim=8, .*seq_len=4\\) needs ${good.length} bytes`)],
    ['trailing bytes', new Uint8Array([...good, 0, 0, 0]), /3 unexpected bytes follow the last weight/],
    ['an unshared classifier under a positive vocab_size', withHeaderField(goodUnshared, 5, 10), /plus exactly one more \[vocab, dim\] matrix.*positive vocab_size.*vocab_size -10/],
    ['a negative vocab_size without a classifier', withHeaderField(good, 5, -10), /ends exactly where the classifier would start.*vocab_size should be 10/],
    ['dim not divisible by n_heads', withHeaderField(good, 3, 3), /n_heads=3.*: dim 8 is not divisible by n_heads 3/],
    ['a negative dim', withHeaderField(good, 0, -3), /dim must be a positive integer at most 65536, got -3/],
    ['a negative layer count', withHeaderField(good, 2, -1), /n_layers must be a positive integer at most 1024, got -1/],
    ['a zero vocabulary', withHeaderField(good, 5, 0), /vocab_size must be a positive integer .* got 0/],
    ['an int32-max seq_len', withHeaderField(good, 6, 2 ** 31 - 1), /seq_len must be a positive integer at most 1048576, got 2147483647/],
    ['the most negative vocab_size', withHeaderField(good, 5, -(2 ** 31)), /vocab_size .* got 2147483648/],
    ['a header asking for terabytes', withHeaderField(withHeaderField(withHeaderField(good, 0, 65536), 1, 262144), 2, 1024), /needs 263883330945052 bytes/],
    ['more kv heads than heads', withHeaderField(good, 4, 4), /n_heads 2 is not a multiple of n_kv_heads 4/],
    ['a NaN weight', (() => { const b = new Uint8Array(good); new DataView(b.buffer).setFloat32(28 + 4 * (80 + 16 + 2 * 64 + 5), NaN, true); return b; })(), /weight layers\[0\]\.wk \(llama2.c wk\[0\]\)\[0, 5\] is NaN \(file byte offset 944\)/],
    ['an infinite classifier weight', (() => { const b = new Uint8Array(goodUnshared); new DataView(b.buffer).setFloat32(b.length - 4, -Infinity, true); return b; })(), /classifier \(llama2.c wcls\)\[9, 7\] is -Infinity/],
    ['a safetensors file', serializeSafetensors({ x: { data: new Float32Array(8), shape: [8] } }), /this is a safetensors file, not a llama2.c checkpoint/],
    ['a GGUF file', new Uint8Array([...new TextEncoder().encode('GGUF'), ...good.subarray(4)]), /GGUF file/],
    ['an ak42 version 1 file', new Uint8Array([0x32, 0x34, 0x6b, 0x61, 1, 0, 0, 0, ...good]), /versioned llama2.c export \(magic "ak42", version 1\)/],
  ]; // prettier-ignore
  it.each(cases)('says exactly what is wrong with %s', (_, bytes, message) => {
    const text = formatErrorMessage(() => parseLlama2cCheckpoint(bytes, 'bad.bin'));
    expect(text).toMatch(/^bad\.bin: /);
    expect(text).toMatch(message);
  });

  it('quotes the whole header when the size is wrong', () => {
    expect(formatErrorMessage(() => parseLlama2cCheckpoint(good.subarray(0, 100), 'short.bin'))).toContain(
      header,
    );
  });
});

// ---------------------------------------------------------------------------------------------- Hugging Face (synthetic)

describe('Hugging Face Llama (hand-built)', () => {
  const files = { config: 'config.json', weights: 'model.safetensors' };
  const model = tinyModel({ sharedClassifier: false });
  const { configJson, safetensors } = toHfLlama(model);
  const config = JSON.parse(configJson) as Record<string, unknown>;
  const withConfig = (changes: Record<string, unknown>) => JSON.stringify({ ...config, ...changes });

  it('round-trips an interleaved model: q/k are permuted, everything else is bit-exact', () => {
    const loaded = parseHfLlama(configJson, safetensors, files);
    expect(loaded.config).toEqual({ ...model.config, ropeLayout: 'half' });
    const expected: Model = structuredClone(model);
    expected.config.ropeLayout = 'half';
    expected.weights.layers.forEach((layer, l) => {
      layer.wq = permuteForHalfRope(model.weights.layers[l].wq, model.config.nHeads);
      layer.wk = permuteForHalfRope(model.weights.layers[l].wk, model.config.nKvHeads);
    });
    expectModelsBitEqual(loaded, expected);
    // A 'half' model is written as it is, so a second round trip changes nothing.
    const again = toHfLlama(loaded);
    expectModelsBitEqual(parseHfLlama(again.configJson, again.safetensors, files), loaded);
  });

  it('permutes each head as HF does: rows [0, 2, 4, …, 1, 3, 5, …]', () => {
    const rows = 2 * 8; // two heads of size 8, one column holding the row number
    const w = { data: Float32Array.from({ length: rows }, (_, i) => i), shape: [rows, 1] };
    expect([...permuteForHalfRope(w, 2).data]).toEqual([
      0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15,
    ]);
  });

  const cases: [string, string, Uint8Array, RegExp][] = [
    ['rope_scaling', withConfig({ rope_scaling: { type: 'linear', factor: 2 } }), safetensors, /config\.json: rope_scaling \{"type":"linear","factor":2\} is not supported/],
    ['a head_dim that differs', withConfig({ head_dim: 8 }), safetensors, /head_dim 8 differs from hidden_size \/ num_attention_heads = 4/],
    ['another model_type', withConfig({ model_type: 'mistral' }), safetensors, /model_type is "mistral"; this loader reads Llama models only/],
    ['a string for a number', withConfig({ hidden_size: '8' }), safetensors, /hidden_size must be a number, got "8" \(string\)/],
    ['a missing field', withConfig({ vocab_size: undefined }), safetensors, /missing the required field vocab_size/],
    ['a fractional size', withConfig({ num_hidden_layers: 1.5 }), safetensors, /num_hidden_layers must be a positive integer, got 1.5/],
    ['heads that do not divide hidden_size', withConfig({ num_attention_heads: 3, num_key_value_heads: 1 }), safetensors, /config\.json: Llama config: hidden_size 8 is not divisible by num_attention_heads 3/],
    ['invalid JSON', '{"hidden_size": 8,', safetensors, /config\.json: not valid JSON/],
    ['gelu', withConfig({ hidden_act: 'gelu' }), safetensors, /hidden_act "gelu" is not supported/],
    ['a tied config over an untied file', withConfig({ tie_word_embeddings: true }), safetensors, /lm_head\.weight is present and differs from model\.embed_tokens\.weight/],
    ['an untied config without lm_head', configJson, toHfLlama(tinyModel()).safetensors, /missing tensor lm_head\.weight \(config\.json says tie_word_embeddings is false/],
    ['one layer too many', withConfig({ num_hidden_layers: 3 }), safetensors, /missing tensor model\.layers\.2\.input_layernorm\.weight \(and 8 more/],
    ['one layer too few', withConfig({ num_hidden_layers: 1 }), safetensors, /unexpected tensor\(s\) that a Llama model with this config does not have: model\.layers\.1\./],
    ['a wrong vocab size', withConfig({ vocab_size: 11 }), safetensors, /model\.safetensors: tensor model\.embed_tokens\.weight has shape \[10, 8\], but config\.json \(.*vocab_size=11\) implies \[11, 8\]/],
  ]; // prettier-ignore
  it.each(cases)('says exactly what is wrong with %s', (_, configText, weights, message) => {
    expect(formatErrorMessage(() => parseHfLlama(configText, weights, files))).toMatch(message);
  });

  it('names a missing tensor and a mis-shaped one', () => {
    const hf = parseSafetensors(safetensors, 'model.safetensors').tensors;
    const without: Record<string, Tensor> = {};
    for (const [name, t] of hf) if (name !== 'model.norm.weight') without[name] = t;
    expect(formatErrorMessage(() => parseHfLlama(configJson, serializeSafetensors(without), files))).toMatch(
      /^model\.safetensors: missing tensor model\.norm\.weight$/,
    );
    const reshaped = { ...without, 'model.norm.weight': { data: new Float32Array(8), shape: [1, 8] } };
    expect(formatErrorMessage(() => parseHfLlama(configJson, serializeSafetensors(reshaped), files))).toMatch(
      /tensor model\.norm\.weight has shape \[1, 8\], but config\.json .* implies \[8\]/,
    );
  });
});

// ---------------------------------------------------------------------------------------------- shared checkpoints

describeShared('stories260K checkpoints (../shared)', () => {
  const hfDir = STORIES260K_HF;
  const hfFiles = { config: join(hfDir, 'config.json'), weights: join(hfDir, 'model.safetensors') };
  // Read in beforeAll: a skipped suite's body still runs (to collect tests) when ../shared is absent.
  let binBytes: Uint8Array, bin: Model, hfConfigText: string, hfBytes: Uint8Array, hf: Model;
  beforeAll(() => {
    binBytes = readBytes(STORIES260K);
    bin = parseLlama2cCheckpoint(binBytes, STORIES260K);
    hfConfigText = readFileSync(hfFiles.config, 'utf8');
    hfBytes = readBytes(hfFiles.weights);
    hf = parseHfLlama(hfConfigText, hfBytes, hfFiles);
  });

  /** The .bin model as HF stores it: q/k rows permuted, rotate-half RoPE. */
  function binInHfLayout(): Model {
    const layers = bin.weights.layers.map((layer) => ({
      ...layer,
      wq: permuteForHalfRope(layer.wq, bin.config.nHeads),
      wk: permuteForHalfRope(layer.wk, bin.config.nKvHeads),
    }));
    return { config: { ...bin.config, ropeLayout: 'half' }, weights: { ...bin.weights, layers } };
  }

  it('reads stories260K.bin with the published config, as views on the file bytes', () => {
    expect(bin.config).toEqual({
      dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512,
      normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'interleaved', sharedClassifier: true,
    }); // prettier-ignore
    expect(bin.weights.classifier).toBe(bin.weights.tokenEmbedding);
    expect(bin.weights.tokenEmbedding.data.buffer).toBe(binBytes.buffer);
    expect(bin.weights.layers).toHaveLength(5);
    expect(bin.weights.layers[4].wk.shape).toEqual([32, 64]);
    expect(bin.weights.layers[4].wDown.shape).toEqual([64, 172]);
  });

  it('row 1 of the embedding table equals the float64 oracle trace embedding of token 1 (within 1e-7)', () => {
    const trace = readOracleJson<{ steps: { input_token: number; trace: { embedding: number[] } }[] }>(
      'logits/once_upon_a_time_trace_numpy_f64.json',
    );
    expect(trace.steps[0].input_token).toBe(1);
    const expected = trace.steps[0].trace.embedding;
    const row = bin.weights.tokenEmbedding.data.subarray(64, 128);
    expect(expected).toHaveLength(64);
    for (let i = 0; i < 64; i++)
      expect(Math.abs(row[i] - expected[i]), `embedding[1][${i}]`).toBeLessThan(1e-7);
  });

  it('reads the HF checkpoint: the same weights, with q/k permuted for rotate-half RoPE (bit-exact)', () => {
    expect(hf.config).toEqual({ ...bin.config, ropeLayout: 'half' });
    expect(hf.weights.classifier).toBe(hf.weights.tokenEmbedding);
    expectModelsBitEqual(hf, binInHfLayout());
  });

  it('toHfLlama(stories260K.bin) reproduces the shared model.safetensors tensors exactly', () => {
    const exported = toHfLlama(bin);
    const mine = parseSafetensors(exported.safetensors, 'exported.safetensors');
    const theirs = parseSafetensors(hfBytes, hfFiles.weights);
    expect([...mine.tensors.keys()].sort()).toEqual([...theirs.tensors.keys()].sort());
    for (const [name, tensor] of theirs.tensors) {
      expect(mine.tensors.get(name)!.shape, name).toEqual(tensor.shape);
      expect(firstBitDifference(mine.tensors.get(name)!.data, tensor.data), name).toBe(-1);
    }
    expect(mine.metadata).toEqual({ format: 'pt' });
    const sharedConfig = JSON.parse(hfConfigText) as Record<string, unknown>;
    const myConfig = JSON.parse(exported.configJson) as Record<string, unknown>;
    for (const [key, value] of Object.entries(myConfig)) {
      if (key in sharedConfig) expect(value, key).toEqual(sharedConfig[key]);
    }
  });

  it('save → load round-trips both models bit-exactly', () => {
    const fromBin = toHfLlama(bin);
    expectModelsBitEqual(parseHfLlama(fromBin.configJson, fromBin.safetensors, hfFiles), binInHfLayout());
    const fromHf = toHfLlama(hf);
    expectModelsBitEqual(parseHfLlama(fromHf.configJson, fromHf.safetensors, hfFiles), hf);
  });

  it('reads the int8 runq file as runq does: its header, group size 8, int8 matrices', () => {
    const q8 = readBytes(join(STORIES260K, '..', 'stories260K-q8.bin'));
    const model = parseLlama2cCheckpoint(q8, 'stories260K-q8.bin');
    expect(model.config).toEqual(parseLlama2cCheckpoint(binBytes, 'stories260K.bin').config);
    expect(model.weights.layers[4].wDown.quantized).toMatchObject({
      type: 'runq',
      groupSize: 8,
      shape: [64, 172],
    });
    // A version other than 0 and 2 is still refused by name.
    const v3 = new Uint8Array(q8);
    new DataView(v3.buffer).setInt32(4, 3, true);
    expect(formatErrorMessage(() => parseLlama2cCheckpoint(v3, 'v3.bin'))).toMatch(
      /^v3\.bin: this is a versioned llama2\.c export \(magic "ak42", version 3\)/,
    );
  });

  it('says how short a truncated stories260K.bin is', () => {
    expect(formatErrorMessage(() => parseLlama2cCheckpoint(binBytes.subarray(0, 1000), 'cut.bin'))).toBe(
      'cut.bin: file is 1000 bytes but the header (dim=64, hidden_dim=172, n_layers=5, n_heads=8, n_kv_heads=4, ' +
        'vocab_size=512, seq_len=512) needs 1056540 bytes (truncated, or not a llama2.c checkpoint)',
    );
  });

  it('reports a NaN planted in the real weights by tensor and index', () => {
    const copy = new Uint8Array(binBytes);
    const wqStart = 28 + 4 * (512 * 64 + 5 * 64); // token embedding, then rms_att for all 5 layers
    new DataView(copy.buffer).setFloat32(wqStart + 4 * (64 * 64 + 3 * 64 + 10), NaN, true); // layer 1, row 3, col 10
    expect(formatErrorMessage(() => parseLlama2cCheckpoint(copy, 'nan.bin'))).toMatch(
      /^nan\.bin: weight layers\[1\]\.wq \(llama2\.c wq\[1\]\)\[3, 10\] is NaN/,
    );
  });

  describe('loading from disk (node.ts)', () => {
    let scratch = '';
    beforeAll(() => {
      scratch = mkdtempSync(join(tmpdir(), 'glassbox-formats-'));
    });
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));

    it('loads a .bin, an HF directory, and an HF config.json path', async () => {
      expectModelsBitEqual(await loadModel(STORIES260K), bin);
      expectModelsBitEqual(await loadModel(hfDir), hf);
      expectModelsBitEqual(await loadModel(hfFiles.config), hf);
      expectModelsBitEqual(await loadModel(hfFiles.weights), hf);
    });

    it('names what is missing and where', async () => {
      await expect(loadModel(join(scratch, 'nothing.bin'))).rejects.toThrow(
        /nothing\.bin: no such file or directory/,
      );
      const exported = toHfLlama(tinyModel());
      const dir = mkdtempSync(join(scratch, 'hf-'));
      writeFileSync(join(dir, 'model.safetensors'), exported.safetensors);
      await expect(loadModel(dir)).rejects.toThrow(
        new RegExp(
          `missing config\\.json \\(the hyper-parameters\\): looked for ${join(dir, 'config.json')}`,
        ),
      );
      rmSync(join(dir, 'model.safetensors'));
      writeFileSync(join(dir, 'config.json'), exported.configJson);
      await expect(loadModel(dir)).rejects.toThrow(
        /missing the safetensors weights: looked for .*model\.safetensors/,
      );
      writeFileSync(join(dir, 'model.safetensors'), exported.safetensors);
      const fromFolder = await loadModel(dir);
      expect(fromFolder.config.dim).toBe(8);
      // Naming the folder's config.json loads the same model as naming the folder.
      const fromConfigFile = await loadModel(join(dir, 'config.json'));
      expect(fromConfigFile.config).toEqual(fromFolder.config);
      expect(fromConfigFile.weights.tokenEmbedding.data).toEqual(fromFolder.weights.tokenEmbedding.data);
    });

    it('refuses a file over the size limit before reading it', async () => {
      const huge = join(scratch, 'huge.bin');
      writeFileSync(huge, '');
      truncateSync(huge, MAX_MODEL_FILE_BYTES + 1); // sparse: takes no disk space
      await expect(loadModel(huge)).rejects.toThrow(
        /huge\.bin: file is 2147483648 bytes \(2\.0 GiB\).*refuses files over/,
      );
    });

    it('finds the tokenizer beside a model', () => {
      expect(findTokenizerFile(STORIES260K)).toBe(TOK512);
      expect(findTokenizerFile(hfDir)).toBeUndefined();
      expect(findTokenizerFile(join(scratch, 'missing.bin'))).toBeUndefined();
    });
  });
});
