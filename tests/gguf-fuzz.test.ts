/**
 * Fuzzing the GGUF loader, as tests/formats-fuzz.test.ts does the others: a file the gguf package wrote
 * (tests/fixtures/gguf/tiny-llama.gguf), truncated at every field boundary, its counts, lengths, types,
 * offsets and shapes set to hostile values, and its bytes flipped. Every variant must load or throw one
 * FormatError naming the file, quickly, without a large allocation. Seeded, so a failure can be replayed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../src/formats/errors.ts';
import { GgufType, parseGguf, serializeGguf } from '../src/formats/gguf.ts';
import { parseGgufLlama } from '../src/formats/gguf-llama.ts';
import { byteMutations, EXTREME_U64, Fuzzer, rng } from './fuzz-helpers.ts';

const FILE = 'fuzz.gguf';
const base = new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures', 'gguf', 'tiny-llama.gguf')));

/** Where each field of the file is, found by walking it the way the format says (not with our parser). */
function fieldMap(bytes: Uint8Array) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 24;
  const boundaries = [4, 8, 16, 24];
  const u64 = () => Number(view.getBigUint64(at, true));
  const string = () => {
    const start = at;
    const length = u64();
    at += 8 + length;
    return { start, text: new TextDecoder().decode(bytes.subarray(start + 8, start + 8 + length)) };
  };
  const scalarBytes = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
  const skipScalar = (type: number) =>
    type === GgufType.STRING ? void string() : void (at += scalarBytes[type]);
  const keys: { name: string; keyAt: number; typeAt: number; valueAt: number; countAt?: number }[] = [];
  for (let i = 0; i < Number(view.getBigUint64(16, true)); i++) {
    const key = string();
    const typeAt = at;
    const type = view.getUint32(at, true);
    at += 4;
    const entry = {
      name: key.text,
      keyAt: key.start,
      typeAt,
      valueAt: at,
      countAt: undefined as number | undefined,
    };
    if (type === GgufType.ARRAY) {
      const itemType = view.getUint32(at, true);
      entry.countAt = at + 4;
      const count = Number(view.getBigUint64(at + 4, true));
      at += 12;
      for (let j = 0; j < count; j++) skipScalar(itemType);
    } else {
      skipScalar(type);
    }
    keys.push(entry);
    boundaries.push(key.start, typeAt, at);
  }
  const tensors: { name: string; dimsAt: number; dims: number; typeAt: number; offsetAt: number }[] = [];
  for (let i = 0; i < Number(view.getBigUint64(8, true)); i++) {
    const name = string();
    const dims = view.getUint32(at, true);
    const entry = {
      name: name.text,
      dimsAt: at,
      dims,
      typeAt: at + 4 + 8 * dims,
      offsetAt: at + 8 + 8 * dims,
    };
    at = entry.offsetAt + 8;
    tensors.push(entry);
    boundaries.push(name.start, entry.dimsAt, entry.typeAt, entry.offsetAt, at);
  }
  const dataStart = Math.ceil(at / 32) * 32;
  return { keys, tensors, boundaries, dataStart };
}

const map = fieldMap(base);

function edited(edit: (view: DataView, bytes: Uint8Array) => void): Uint8Array {
  const copy = new Uint8Array(base);
  edit(new DataView(copy.buffer), copy);
  return copy;
}

function hostileVariants(): [string, Uint8Array][] {
  const variants: [string, Uint8Array][] = [];
  const add = (label: string, edit: (view: DataView, bytes: Uint8Array) => void) =>
    variants.push([label, edited(edit)]);
  // The magic and the version: other formats, old and big-endian GGUF.
  for (const magic of ['GGUG', 'GGML', 'ggjt', '\0\0\0\0', 'FUGG']) {
    add(`magic ${JSON.stringify(magic)}`, (_, bytes) => bytes.set(new TextEncoder().encode(magic)));
  }
  for (const version of [0, 1, 4, 0x03000000, 2 ** 32 - 1])
    add(`version ${version}`, (view) => view.setUint32(4, version, true));
  // Counts and lengths: huge, slightly off, zero.
  const u64s = (original: bigint) => [...EXTREME_U64, original + 1n, original - 1n];
  for (const [field, at] of [
    ['tensor count', 8],
    ['metadata count', 16],
  ] as const) {
    for (const value of u64s(new DataView(base.buffer).getBigUint64(at, true))) {
      add(`${field} ${value}`, (view) => view.setBigUint64(at, value & (2n ** 64n - 1n), true));
    }
  }
  for (const key of map.keys) {
    for (const value of [2n ** 63n, 2n ** 40n, 2n ** 32n + 1n, 0n]) {
      add(`key ${key.name} length ${value}`, (view) => view.setBigUint64(key.keyAt, value, true));
      if (key.countAt !== undefined)
        add(`${key.name} count ${value}`, (view) => view.setBigUint64(key.countAt!, value, true));
    }
    for (const type of [9, 13, 255, 8, 7, 6, 4])
      add(`${key.name} type ${type}`, (view) => view.setUint32(key.typeAt, type, true));
  }
  // Tensor descriptions: dimensions, types (unknown, removed, unsupported), offsets past the end or misaligned.
  for (const tensor of map.tensors) {
    for (const dims of [0, 5, 2 ** 31])
      add(`${tensor.name} n_dims ${dims}`, (view) => view.setUint32(tensor.dimsAt, dims, true));
    for (const size of [0n, 1n, 33n, 2n ** 32n, 2n ** 62n]) {
      add(`${tensor.name} dim0 ${size}`, (view) => view.setBigUint64(tensor.dimsAt + 4, size, true));
    }
    for (const type of [4, 5, 13, 15, 99, 2 ** 32 - 1, 0, 12, 14]) {
      add(`${tensor.name} ggml type ${type}`, (view) => view.setUint32(tensor.typeAt, type, true));
    }
    for (const delta of [1n, 16n, 32n, 2n ** 40n, 2n ** 63n]) {
      add(`${tensor.name} offset +${delta}`, (view) =>
        view.setBigUint64(tensor.offsetAt, view.getBigUint64(tensor.offsetAt, true) + delta, true),
      );
    }
  }
  // Metadata that disagrees with the tensors' shapes, or cannot describe a model.
  const u32Keys = map.keys.filter(
    (key) =>
      key.name.startsWith('llama.') &&
      new DataView(base.buffer).getUint32(key.typeAt, true) === GgufType.UINT32,
  );
  for (const key of u32Keys) {
    for (const value of [0, 1, 3, 7, 64, 2 ** 31, 2 ** 32 - 1])
      add(`${key.name} = ${value}`, (view) => view.setUint32(key.valueAt, value, true));
  }
  for (const key of map.keys.filter(
    (k) => new DataView(base.buffer).getUint32(k.typeAt, true) === GgufType.FLOAT32,
  )) {
    for (const value of [NaN, Infinity, 0, -1, 1e30])
      add(`${key.name} = ${value}`, (view) => view.setFloat32(key.valueAt, value, true));
  }
  // Non-finite scales: an f16 inf/NaN in the first block of every quantized tensor.
  for (const tensor of map.tensors) {
    const offset = Number(new DataView(base.buffer).getBigUint64(tensor.offsetAt, true));
    for (const bits of [0x7c00, 0x7e00]) {
      add(`${tensor.name} first half = ${bits.toString(16)}`, (view) =>
        view.setUint16(map.dataStart + offset, bits, true),
      );
    }
  }
  // Truncation at every field boundary, and one byte either side.
  for (const boundary of map.boundaries) {
    for (const at of [boundary - 1, boundary, boundary + 1])
      variants.push([`truncate at ${at}`, base.subarray(0, at)]);
  }
  return variants;
}

describe('fuzz: GGUF loader on tiny-llama.gguf', () => {
  it('loads or throws one FormatError naming the file, fast, for 3,000+ damaged files', () => {
    const random = rng(0x6607);
    const fuzzer = new Fuzzer();
    const variants = [...hostileVariants(), ...byteMutations(base, random, 2200, map.dataStart)];
    let largestGrowth = 0;
    const memoryBefore = process.memoryUsage().arrayBuffers;
    for (const [label, bytes] of variants) {
      fuzzer.attempt(label, () => {
        try {
          return parseGgufLlama(bytes, FILE);
        } catch (error) {
          if (error instanceof FormatError) {
            // One line, naming the file.
            expect(
              error.message.startsWith(`${FILE}: `) && !error.message.includes('\n'),
              error.message,
            ).toBe(true);
          }
          throw error;
        }
      });
      largestGrowth = Math.max(largestGrowth, process.memoryUsage().arrayBuffers - memoryBefore);
    }
    fuzzer.report('GGUF tiny-llama.gguf', 3000);
    // The file is 36 kB: nothing a variant asks for may cost more than a few MB.
    expect(largestGrowth).toBeLessThan(64 << 20);
  });

  it('the specific lines for the hostile cases the issue names', () => {
    const message = (bytes: Uint8Array) => {
      try {
        parseGgufLlama(bytes, FILE);
      } catch (error) {
        return (error as Error).message;
      }
      return 'loaded';
    };
    const q = map.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect(message(edited((_, b) => b.set([0x47, 0x47, 0x4d, 0x4c])))).toBe(
      `${FILE}: not a GGUF file: it starts with bytes [47 47 4d 4c], not "GGUF"`,
    );
    expect(message(edited((v) => v.setBigUint64(8, 2n ** 40n, true)))).toMatch(
      /^fuzz\.gguf: the header promises \d+ metadata entries and 1099511627776 tensors, more than the 36160-byte file can hold$/,
    );
    expect(message(edited((v) => v.setBigUint64(q.offsetAt, 2n ** 20n, true)))).toMatch(
      /^fuzz\.gguf: tensor "blk\.0\.attn_q\.weight" \(Q4_0 \[32, 32\], 576 bytes at data offset 1048576\) reaches past the end of the \d+-byte data section$/,
    );
    expect(
      message(edited((v) => v.setBigUint64(q.offsetAt, v.getBigUint64(q.offsetAt, true) + 1n, true))),
    ).toMatch(
      /^fuzz\.gguf: tensor "blk\.0\.attn_q\.weight" starts at data offset \d+, not a multiple of the alignment 32$/,
    );
    expect(message(edited((v) => v.setUint32(q.typeAt, 13, true)))).toBe(
      `${FILE}: tensor "blk.0.attn_q.weight" is Q5_K, which glassbox does not read (it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K)`,
    );
    expect(message(edited((v) => v.setUint32(q.typeAt, 99, true)))).toBe(
      `${FILE}: tensor "blk.0.attn_q.weight" has type id 99, which is not a ggml type`,
    );
    const heads = map.keys.find((k) => k.name === 'llama.feed_forward_length')!;
    expect(message(edited((v) => v.setUint32(heads.valueAt, 64, true)))).toBe(
      `${FILE}: tensor blk.0.ffn_gate.weight has shape [48, 32], but the metadata (dim 32, hidden 64, heads 2/1, vocab 275) implies [64, 32]`,
    );
  });

  it('refuses other architectures, tokenizers and pre-tokenizers by name', () => {
    const file = parseGguf(base, 'tiny-llama.gguf');
    const rewrite = (key: string, value: string) => {
      const metadata = new Map(file.metadata);
      metadata.set(key, { type: GgufType.STRING, value });
      const tensors = [...file.tensors.values()];
      return serializeGguf(metadata, tensors, file.alignment);
    };
    expect(() => parseGgufLlama(rewrite('general.architecture', 'qwen2'), FILE)).toThrow(
      `${FILE}: general.architecture is "qwen2"; glassbox reads Llama models only ("llama")`,
    );
    expect(() => parseGgufLlama(rewrite('tokenizer.ggml.model', 'bert'), FILE)).toThrow(
      `${FILE}: tokenizer.ggml.model is "bert"; glassbox reads "llama" (SentencePiece) and "gpt2" (BPE)`,
    );
    const gpt2 = parseGguf(
      new Uint8Array(readFileSync(join(import.meta.dirname, 'fixtures', 'gguf', 'tiny-gpt2.gguf'))),
      'x',
    );
    const metadata = new Map(gpt2.metadata);
    metadata.set('tokenizer.ggml.pre', { type: GgufType.STRING, value: 'qwen2' });
    expect(() => parseGgufLlama(serializeGguf(metadata, [...gpt2.tensors.values()]), FILE)).toThrow(
      `${FILE}: tokenizer.ggml.pre is "qwen2", a pre-tokenizer glassbox does not run (it runs gpt-2, llama-bpe, llama3, llama-v3, gpt-4o)`,
    );
    metadata.set('general.alignment', { type: GgufType.UINT32, value: 3 });
    expect(() => parseGgufLlama(serializeGguf(metadata, [...gpt2.tensors.values()]), FILE)).toThrow(
      `${FILE}: general.alignment must be a u32 power of two, got u32 3`,
    );
  });
});
