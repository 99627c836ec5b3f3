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
import { dequantize, quantize, type QuantType } from '../src/engine/quant.ts';
import { parseGguf } from '../src/formats/gguf.ts';
import { parseGgufLlama } from '../src/formats/gguf-llama.ts';

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
