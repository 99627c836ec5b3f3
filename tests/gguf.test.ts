/**
 * GGUF against llama.cpp's own Python package `gguf` (its reader, writer and dequantizers): the fixtures in
 * tests/fixtures/gguf were written and dequantized by it (scripts/gguf-fixtures.py), and the files glassbox
 * writes were read back by it. Nothing here compares glassbox with its own output, except where a test says
 * the bytes must not change.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Model } from '../src/engine/model.ts';
import { dequantize, float16ToFloat32, quantize, type QuantType } from '../src/engine/quant.ts';
import { ggmlTypeName, GgufType, parseGguf, serializeGguf, type GgufEntry } from '../src/formats/gguf.ts';
import { GGUF_WRITE_TYPES, parseGgufLlama, toGguf, type GgufWriteType } from '../src/formats/gguf-llama.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'gguf');
const fixture = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, name)));
const fixtureJson = <T>(name: string) => JSON.parse(readFileSync(join(FIXTURES, name), 'utf8')) as T;
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));
const float32s = (text: string) => {
  const bytes = fromBase64(text);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
};
const sha256 = (values: Float32Array) =>
  createHash('sha256')
    .update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))
    .digest('hex');

/** Bit-for-bit equality, so −0 and NaN compare as stored (toEqual would let −0 equal +0). */
function sameBits(ours: Float32Array, theirs: Float32Array): void {
  expect(ours.length).toBe(theirs.length);
  const a = new Uint32Array(ours.buffer, ours.byteOffset, ours.length);
  const b = new Uint32Array(theirs.buffer.slice(theirs.byteOffset, theirs.byteOffset + theirs.byteLength));
  const first = a.findIndex((bits, i) => bits !== b[i]);
  expect(first, `first difference at ${first}: ${ours[first]} vs ${theirs[first]}`).toBe(-1);
}

interface TypesFixture {
  tensors: Record<
    string,
    { type: string; shape: number[]; source?: string; quantized?: string; dequantized: string }
  >;
}

describe('block formats against the gguf package', () => {
  const file = parseGguf(fixture('types.gguf'), 'types.gguf');
  const { tensors } = fixtureJson<TypesFixture>('types.json');

  for (const [name, expected] of Object.entries(tensors)) {
    it(`${expected.type}: dequantized to the same float32 bits as gguf.quants.dequantize`, () => {
      const stored = file.tensors.get(name)!;
      expect(stored.type).toBe(name);
      expect(stored.shape).toEqual(expected.shape);
      sameBits(dequantize(stored), float32s(expected.dequantized));
    });
    if (expected.source) {
      it(`${expected.type}: quantized to the same bytes as gguf.quants.quantize`, () => {
        const ours = quantize(float32s(expected.source!), expected.shape, name as QuantType);
        expect(Buffer.from(ours.bytes).equals(Buffer.from(fromBase64(expected.quantized!)))).toBe(true);
      });
    }
  }
});

interface ModelFixture {
  vocab: number;
  tensors: Record<string, { type: string; shape: number[]; sha256: string; first: number[] }>;
}

const MODEL_FIELD: Record<string, (model: ReturnType<typeof parseGgufLlama>['model']) => Float32Array> = {
  'token_embd.weight': (m) => m.weights.tokenEmbedding.data,
  'output_norm.weight': (m) => m.weights.finalNorm.data,
  'output.weight': (m) => m.weights.classifier.data,
  'blk.0.attn_norm.weight': (m) => m.weights.layers[0].attnNorm.data,
  'blk.0.attn_q.weight': (m) => m.weights.layers[0].wq.data,
  'blk.0.attn_k.weight': (m) => m.weights.layers[0].wk.data,
  'blk.0.attn_v.weight': (m) => m.weights.layers[0].wv.data,
  'blk.0.attn_output.weight': (m) => m.weights.layers[0].wo.data,
  'blk.0.ffn_norm.weight': (m) => m.weights.layers[0].ffnNorm.data,
  'blk.0.ffn_gate.weight': (m) => m.weights.layers[0].wGate.data,
  'blk.0.ffn_up.weight': (m) => m.weights.layers[0].wUp.data,
  'blk.0.ffn_down.weight': (m) => m.weights.layers[0].wDown.data,
};

describe('Llama models written by the gguf package', () => {
  for (const name of ['tiny-llama', 'tiny-gpt2']) {
    it(`${name}.gguf: config from the metadata, every tensor equal to the package's dequantization`, () => {
      const { model, tokenizer, gguf } = parseGgufLlama(fixture(`${name}.gguf`), `${name}.gguf`);
      const expected = fixtureJson<ModelFixture>(`${name}.json`);
      expect(model.config).toEqual({
        dim: 32,
        hiddenDim: 48,
        nLayers: 1,
        nHeads: 2,
        nKvHeads: 1,
        vocabSize: expected.vocab,
        seqLen: 64,
        normEps: Math.fround(1e-5),
        ropeTheta: 10000,
        ropeLayout: 'interleaved',
        sharedClassifier: name === 'tiny-gpt2',
      });
      expect(tokenizer.vocabSize).toBe(expected.vocab);
      for (const [tensorName, want] of Object.entries(expected.tensors)) {
        expect(gguf.tensors.get(tensorName)!.type.toUpperCase()).toBe(want.type);
        expect(sha256(MODEL_FIELD[tensorName](model)), tensorName).toBe(want.sha256);
      }
      if (name === 'tiny-gpt2') expect(model.weights.classifier).toBe(model.weights.tokenEmbedding);
    });
  }

  it('the "llama" tokenizer: SentencePiece pieces with ▁ become the llama2.c tokenizer', () => {
    const { tokenizer } = parseGgufLlama(fixture('tiny-llama.gguf'), 'tiny-llama.gguf');
    expect(tokenizer.family).toBe('llama2c');
    // Pieces 259… are "▁", "e", "t", "h", "o", "n", "c", "▁t", "he", "▁the", "▁o", "on", "▁on", "ce", "▁once", "▁c";
    // a higher score merges first, so " the" comes from "▁t" + "he" and " once" from "▁on" + "ce".
    const ids = tokenizer.encode('the once', { bos: true, eos: false });
    expect(ids).toEqual([1, 268, 273]);
    expect(tokenizer.decode(ids)).toBe('the once');
    expect(tokenizer.encode('x', { bos: false, eos: false })).toEqual([259, 3 + 0x78]); // byte fallback
  });

  it('the "gpt2" tokenizer: byte-level tokens, merges and the llama-bpe pre-tokenizer become our BPE', () => {
    const { tokenizer } = parseGgufLlama(fixture('tiny-gpt2.gguf'), 'tiny-gpt2.gguf');
    expect(tokenizer.family).toBe('bpe');
    expect([tokenizer.bosId, tokenizer.eosId]).toEqual([256, 257]);
    // Merges: "Ġ t" → 258, "h e" → 259, "Ġt he" → 260, "o n" → 261.
    expect(tokenizer.encode('on the', { bos: true, eos: true })).toEqual([256, 261, 260, 257]);
    expect(tokenizer.pieceLabel(260)).toBe(' the');
  });
});

// ------------------------------------------------------------------------------- what glassbox writes

interface WrittenReport {
  files: Record<
    string,
    {
      metadata: Record<string, unknown>;
      tensors: Record<string, { type: string; shape: number[]; sha256: string }>;
    }
  >;
}

/** What the package's reader reports for a metadata value, from ours (long arrays as length, first 4, last). */
function asReported(entry: GgufEntry): unknown {
  const plain = (value: unknown) => (typeof value === 'bigint' ? Number(value) : value);
  if (entry.type !== GgufType.ARRAY) return plain(entry.value);
  const items = entry.value.map(plain);
  return items.length <= 8 ? items : { length: items.length, first: items.slice(0, 4), last: items.at(-1) };
}

describe('files glassbox writes, read back by the gguf package', () => {
  const report = fixtureJson<WrittenReport>('glassbox-written.json');

  for (const type of Object.keys(GGUF_WRITE_TYPES) as GgufWriteType[]) {
    const name = `glassbox-${type}.gguf`;
    it(`${name}: the package saw our metadata, tensor types, shapes and values`, () => {
      const seen = report.files[name];
      const ours = parseGguf(fixture(name), name);
      const oursMetadata = Object.fromEntries(
        [...ours.metadata].map(([key, entry]) => [key, asReported(entry)]),
      );
      // float32 metadata the package printed as float64 of the same float32.
      expect(oursMetadata).toEqual(seen.metadata);
      expect([...ours.tensors.keys()]).toEqual(Object.keys(seen.tensors));
      for (const [tensorName, tensor] of ours.tensors) {
        const theirs = seen.tensors[tensorName];
        expect(ggmlTypeName(tensor.type)).toBe(theirs.type);
        expect(tensor.shape).toEqual(theirs.shape);
        expect(sha256(dequantize(tensor)), tensorName).toBe(theirs.sha256);
      }
    });

    it(`${name}: glassbox quantize still writes exactly these bytes`, () => {
      const source = parseGgufLlama(fixture('tiny-gpt2.gguf'), 'tiny-gpt2.gguf');
      const { bytes } = toGguf(source.model, source.rawTokenizer, type, 'tiny-gpt2');
      expect(Buffer.from(bytes).equals(Buffer.from(fixture(name)))).toBe(true);
    });
  }

  it('reads back what it wrote: the same model and tokenizer (f32 exactly)', () => {
    const source = parseGgufLlama(fixture('tiny-llama.gguf'), 'tiny-llama.gguf');
    const again = parseGgufLlama(toGguf(source.model, source.rawTokenizer, 'f32').bytes, 'again.gguf');
    // The source keeps its f16/q8 matrices in their blocks; written as f32, their widened values come back.
    const dense = (model: Model) => ({
      config: model.config,
      weights: JSON.parse(
        JSON.stringify(model.weights, (key, value: unknown) =>
          key === 'quantized' ? undefined : value instanceof Float32Array ? [...value] : value,
        ),
      ) as unknown,
    });
    expect(source.model.weights.layers[0].wq.quantized).toBeDefined();
    expect(again.model.weights.layers[0].wq.quantized).toBeUndefined();
    expect(dense(again.model)).toEqual(dense(source.model));
    expect(again.tokenizer.encode('the once', { bos: true, eos: false })).toEqual([1, 268, 273]);
  });
});

// ------------------------------------------------------------------------------------ quantization error

describe('quantize round trips within the bound each format implies', () => {
  const random = (count: number, seed: number) => {
    let state = seed;
    return Float32Array.from({ length: count }, () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return (state / 2 ** 31 - 0.5) * 4 * (1 + (state % 7)); // blocks of different spreads
    });
  };
  const values = random(64 * 96, 7);
  const shape = [64, 96];
  /** Largest |x − dequantized| in each block of 32, with the block's stored scale (f16 at bytes 0–1). */
  const blockErrors = (type: QuantType) => {
    const stored = quantize(values, shape, type);
    const back = dequantize(stored);
    const blockBytes = { q8_0: 34, q4_0: 18, q4_1: 20 }[type as 'q8_0']!;
    const view = new DataView(stored.bytes.buffer);
    return Array.from({ length: values.length / 32 }, (_, b) => {
      let error = 0;
      let min = Infinity;
      let max = -Infinity;
      for (let i = 32 * b; i < 32 * b + 32; i++) {
        error = Math.max(error, Math.abs(values[i] - back[i]));
        min = Math.min(min, values[i]);
        max = Math.max(max, values[i]);
      }
      return { error, d: Math.abs(float16ToFloat32(view.getUint16(b * blockBytes, true))), min, max };
    });
  };
  // The scale itself is rounded to f16 (relative error ≤ 2^-11), which moves the largest q (127, 8 or 15) by
  // that much too: so each bound is half a step plus q·d·2^-11.
  it('q8_0: every value within d/2 (+ 127·d·2^-11 for the f16 scale)', () => {
    for (const { error, d } of blockErrors('q8_0'))
      expect(error).toBeLessThanOrEqual(d / 2 + 127 * d * 2 ** -11);
  });
  it('q4_0: within d/2, except the value opposite the extreme (q 16 clipped to 15): within d', () => {
    for (const { error, d } of blockErrors('q4_0')) expect(error).toBeLessThanOrEqual(d + 8 * d * 2 ** -11);
  });
  it('q4_1: within d/2 (+ the f16 rounding of d and of the minimum)', () => {
    for (const { error, d, min } of blockErrors('q4_1')) {
      expect(error).toBeLessThanOrEqual(d / 2 + 15 * d * 2 ** -11 + Math.abs(min) * 2 ** -11);
    }
  });
  it('f16 and bf16: relative error at most 2^-11 and 2^-8 (half their last place)', () => {
    for (const [type, relative] of [
      ['f16', 2 ** -11],
      ['bf16', 2 ** -8],
    ] as const) {
      const back = dequantize(quantize(values, shape, type));
      values.forEach((x, i) => expect(Math.abs(x - back[i])).toBeLessThanOrEqual(Math.abs(x) * relative));
    }
  });
  it('f32 is exact; rows that are not whole blocks are refused, K-quants are read-only', () => {
    expect(dequantize(quantize(values, shape, 'f32'))).toEqual(values);
    expect(() => quantize(values.subarray(0, 40), [1, 40], 'q8_0')).toThrow(
      /rows of 40 numbers are not whole q8_0 blocks of 32/,
    );
    expect(() => quantize(values.subarray(0, 256), [1, 256], 'q4_k')).toThrow(
      /reads q4_k but does not write it/,
    );
  });
});

it('toGguf refuses a weight too large for the type rather than write a file that would not load', () => {
  const source = parseGgufLlama(fixture('tiny-gpt2.gguf'), 'tiny-gpt2.gguf');
  source.model.weights.layers[0].wq.data[33] = 1e6;
  expect(() => toGguf(source.model, source.rawTokenizer, 'f16')).toThrow(
    'blk.0.attn_q.weight has values too large for f16 near [1, 1] (its float16 numbers end at 65504)',
  );
  expect(() => toGguf(source.model, source.rawTokenizer, 'q8_0')).not.toThrow(); // scale 1e6/127 fits f16
  source.model.weights.layers[0].wq.data[33] = 1e7;
  expect(() => toGguf(source.model, source.rawTokenizer, 'q8_0')).toThrow(
    /^blk\.0\.attn_q\.weight has values too large for q8_0 near \[1, 0\]/,
  );
});

it('llama-bpe takes a pre-token that is a whole token as that token (llama.cpp ignore_merges); gpt-2 merges', () => {
  const file = parseGguf(fixture('tiny-gpt2.gguf'), 'tiny-gpt2.gguf');
  const withPre = (pre: string) => {
    const metadata = new Map(file.metadata);
    metadata.set('tokenizer.ggml.pre', { type: GgufType.STRING, value: pre });
    // Without the merge "Ġt he", no merge builds token 260 " the" any more.
    metadata.set('tokenizer.ggml.merges', {
      type: GgufType.ARRAY,
      itemType: GgufType.STRING,
      value: ['Ġ t', 'h e', 'o n'],
    });
    return parseGgufLlama(serializeGguf(metadata, [...file.tensors.values()]), `${pre}.gguf`).tokenizer;
  };
  expect(withPre('llama-bpe').encode('on the', { bos: false, eos: false })).toEqual([261, 260]);
  expect(withPre('gpt-2').encode('on the', { bos: false, eos: false })).toEqual([261, 258, 259]);
});
