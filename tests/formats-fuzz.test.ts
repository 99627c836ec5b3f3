/**
 * Fuzzing the loaders: thousands of truncated and mutated checkpoints, each of which must either load or throw
 * a FormatError: never a RangeError, SyntaxError or TypeError leaking out, never a huge allocation, never a
 * hang. Seeded, so a failure names a variant that can be replayed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectedShapes } from '../src/engine/model.ts';
import type { LayerWeights, Model, ModelConfig, Tensor } from '../src/engine/model.ts';
import { jsonDepth } from '../src/formats/bounded-json.ts';
import { FormatError } from '../src/formats/errors.ts';
import { parseHfLlama, toHfLlama } from '../src/formats/hf-llama.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { parseSafetensors } from '../src/formats/safetensors.ts';
import { fromTokenizerJson } from '../src/tokenizers/bpe.ts';
import { byteMutations, EXTREME_INT32, EXTREME_U64, Fuzzer, rng, type Rng } from './fuzz-helpers.ts';
import { describeShared, STORIES260K, STORIES260K_HF } from './shared.ts';

// ---------------------------------------------------------------------------------------------- llama2.c

describeShared('fuzz: llama2.c loader on stories260K.bin', () => {
  it('loads or throws FormatError for 1,250 truncated and mutated files', () => {
    const base = new Uint8Array(readFileSync(STORIES260K));
    const random = rng(0x260);
    const fuzzer = new Fuzzer();
    const check = (label: string, bytes: Uint8Array) =>
      fuzzer.attempt(label, () => parseLlama2cCheckpoint(bytes, 'fuzz.bin'));

    for (const [label, bytes] of byteMutations(base, random, 800, 28)) check(label, bytes);

    const setField = (bytes: Uint8Array, field: number, value: number) =>
      new DataView(bytes.buffer, bytes.byteOffset).setInt32(4 * field, value, true);
    for (let field = 0; field < 7; field++) {
      const original = new DataView(base.buffer).getInt32(4 * field, true);
      for (const value of [...EXTREME_INT32, original + 1, original - 1, original * 2, -original]) {
        const copy = new Uint8Array(base);
        setField(copy, field, value);
        check(`header field ${field} = ${value}`, copy);
      }
    }
    for (let i = 0; i < 250; i++) {
      const copy = new Uint8Array(base);
      const edits: string[] = [];
      for (let e = 0; e < 2 + random.below(3); e++) {
        const field = random.below(7);
        const value = random.below(2)
          ? random.pick(EXTREME_INT32)
          : random.below(2 ** 31) * random.pick([1, -1]);
        setField(copy, field, value);
        edits.push(`${field}=${value}`);
      }
      check(`header fields ${edits.join(' ')}`, copy);
    }
    for (let i = 0; i < 100; i++) {
      const copy = new Uint8Array(base);
      const index = random.below((base.length - 28) / 4);
      const value = random.pick([NaN, Infinity, -Infinity, 3.4e38, -0, 1e-45]);
      new DataView(copy.buffer).setFloat32(28 + 4 * index, value, true);
      check(`float ${index} = ${value}`, copy);
    }
    // Other formats' magic numbers over the real file.
    for (const magic of [[0x32, 0x34, 0x6b, 0x61, 2, 0, 0, 0], [0x32, 0x34, 0x6b, 0x61, 9, 0, 0, 0], [0x47, 0x47, 0x55, 0x46], [0x50, 0x4b, 3, 4]]) {
      const copy = new Uint8Array(base);
      copy.set(magic);
      check(`magic ${magic.join(',')}`, copy);
    } // prettier-ignore

    fuzzer.report('llama2.c stories260K.bin', 1000);
  });
});

// ---------------------------------------------------------------------------------------------- safetensors

/** A small model with deterministic weights (so this suite runs even without ../shared). */
function smallModel(): Model {
  const config: ModelConfig = {
    dim: 8, hiddenDim: 12, nLayers: 2, nHeads: 2, nKvHeads: 1, vocabSize: 10, seqLen: 16,
    normEps: 1e-5, ropeTheta: 10000, ropeLayout: 'half', sharedClassifier: false,
  }; // prettier-ignore
  const shapes = expectedShapes(config);
  let seed = 1;
  const tensor = (shape: number[]): Tensor => ({
    data: Float32Array.from({ length: shape.reduce((p, s) => p * s, 1) }, () => Math.cos(seed++)),
    shape,
  });
  const layers = Array.from({ length: config.nLayers }, () => {
    const layer = {} as LayerWeights;
    for (const key of Object.keys(shapes.layer) as (keyof LayerWeights)[])
      layer[key] = tensor(shapes.layer[key]);
    return layer;
  });
  return {
    config,
    weights: {
      tokenEmbedding: tensor(shapes.tokenEmbedding),
      layers,
      finalNorm: tensor(shapes.finalNorm),
      classifier: tensor(shapes.classifier),
    },
  };
}

interface Split {
  header: Record<string, unknown>;
  data: Uint8Array;
}

function split(bytes: Uint8Array): Split {
  const length = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<
    string,
    unknown
  >;
  return { header, data: bytes.subarray(8 + length) };
}

function join8(
  headerBytes: Uint8Array,
  data: Uint8Array,
  lengthField = BigInt(headerBytes.length),
): Uint8Array {
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthField, true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

const encode = (text: string) => new TextEncoder().encode(text);

/** Structural edits of the JSON header: the mistakes (and attacks) a byte flip rarely produces. */
function headerMutations(base: Uint8Array, random: Rng, count: number): [string, Uint8Array][] {
  const { header, data } = split(base);
  const names = Object.keys(header).filter((name) => name !== '__metadata__');
  const junk: unknown[] = [
    null, true, 0, -1, 1.5, 1e308, -1e308, 2 ** 53, 2 ** 64, '', '64', 'F32', [], {}, [null], [-1], [1e300],
    [2 ** 53, 2 ** 53], [2 ** 31, 2 ** 31], ['0', '4'], [1, 2, 3], { a: 1 }, [[[[[]]]]],
  ]; // prettier-ignore
  const variants: [string, Uint8Array][] = [];
  const withHeader = (label: string, edited: unknown) =>
    variants.push([label, join8(encode(JSON.stringify(edited)), data)]);

  // Whole-header replacements.
  for (const replacement of [null, 42, '"x"', [], [header], 'deep', 'bom', 'invalid-utf8', 'trailing-junk', 'empty']) {
    let headerBytes: Uint8Array;
    if (replacement === 'deep') headerBytes = encode(`{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`);
    else if (replacement === 'bom') headerBytes = encode(`\ufeff${JSON.stringify(header)}`);
    else if (replacement === 'invalid-utf8') headerBytes = new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d]); // {"\xc3(":1}
    else if (replacement === 'trailing-junk') headerBytes = encode(`${JSON.stringify(header)} }`);
    else if (replacement === 'empty') headerBytes = new Uint8Array(0);
    else headerBytes = encode(JSON.stringify(replacement));
    variants.push([`header = ${replacement === null ? 'null' : String(replacement).slice(0, 20)}`, join8(headerBytes, data)]);
  } // prettier-ignore
  for (const lengthField of EXTREME_U64) {
    variants.push([
      `length field = ${lengthField}`,
      join8(encode(JSON.stringify(header)), data, lengthField),
    ]);
  }

  while (variants.length < count) {
    const edited = structuredClone(header);
    const name = random.pick(names);
    const entry = edited[name] as Record<string, unknown>;
    const [begin, end] = entry.data_offsets as number[];
    const kind = random.below(12);
    if (kind === 0)
      entry.dtype = random.pick(['F64', 'I8', 'U8', 'BOOL', 'F16', 'BF16', 'f32', '', 'F8_E4M3', 7, null]);
    else if (kind === 1) entry.shape = random.pick(junk);
    else if (kind === 2) (entry.shape as unknown[])[random.below(2)] = random.pick(junk);
    else if (kind === 3) entry.data_offsets = random.pick(junk);
    else if (kind === 4) entry.data_offsets = [begin + random.pick([-8, -4, -1, 1, 4]), end];
    else if (kind === 5) entry.data_offsets = [begin, end + random.pick([-8, -4, -1, 1, 4, 2 ** 40])];
    else if (kind === 6) entry.data_offsets = [end, begin];
    else if (kind === 7)
      entry.data_offsets = (edited[random.pick(names)] as Record<string, unknown>).data_offsets;
    else if (kind === 8) delete edited[name];
    else if (kind === 9) edited[`${name}.extra`] = { ...entry };
    else if (kind === 10)
      edited.__metadata__ = random.pick([{ a: 1 }, [], 'x', { a: { b: 'c' } }, { format: 'pt' }, null]);
    else delete entry[random.pick(['dtype', 'shape', 'data_offsets'])];
    withHeader(`${name}: edit ${kind}`, edited);
  }
  return variants;
}

function fuzzSafetensors(
  name: string,
  base: Uint8Array,
  configText: string,
  seed: number,
  count: number,
): void {
  const random = rng(seed);
  const fuzzer = new Fuzzer();
  const files = { config: 'config.json', weights: 'fuzz.safetensors' };
  const headerLength = new DataView(base.buffer, base.byteOffset).getUint32(0, true);
  const variants = [
    ...byteMutations(base, random, Math.ceil(count * 0.55), 8 + headerLength),
    ...headerMutations(base, random, Math.ceil(count * 0.5)),
  ];
  expect(variants.length).toBeGreaterThanOrEqual(count);
  for (const [label, bytes] of variants) {
    fuzzer.attempt(label, () => parseSafetensors(bytes, files.weights));
    fuzzer.attempt(`${label} as HF`, () => parseHfLlama(configText, bytes, files));
  }
  // config.json damage, against the intact weights.
  const config = JSON.parse(configText) as Record<string, unknown>;
  const fields = Object.keys(config);
  const values: unknown[] = [
    null,
    undefined,
    0,
    -1,
    1,
    2,
    2 ** 31,
    1e308,
    0.5,
    '64',
    'llama',
    true,
    [],
    {},
    { type: 'linear' },
  ];
  for (let i = 0; i < Math.ceil(count * 0.1); i++) {
    const edited = { ...config, [random.pick(fields)]: random.pick(values) };
    const text =
      random.below(10) === 0 ? JSON.stringify(edited).slice(0, random.below(200)) : JSON.stringify(edited);
    fuzzer.attempt(`config ${text.slice(0, 60)}`, () => parseHfLlama(text, base, files));
  }
  fuzzer.report(name, 2 * count);
}

describe('fuzz: safetensors and HF loaders on a small serialized model', () => {
  it('loads or throws FormatError for 1,000+ damaged files', () => {
    const { configJson, safetensors } = toHfLlama(smallModel());
    fuzzSafetensors('small safetensors', safetensors, configJson, 0x5afe, 1000);
  });
});

describeShared('fuzz: safetensors and HF loaders on stories260K-hf', () => {
  it('loads or throws FormatError for 1,000+ damaged files', () => {
    const base = new Uint8Array(readFileSync(join(STORIES260K_HF, 'model.safetensors')));
    const configText = readFileSync(join(STORIES260K_HF, 'config.json'), 'utf8');
    fuzzSafetensors('stories260K-hf', base, configText, 0x260f, 1000);
  });
});

describe('fuzz: oversized and deeply nested JSON is refused before it is parsed', () => {
  const { configJson, safetensors } = toHfLlama(smallModel());
  const files = { config: 'config.json', weights: 'model.safetensors' };
  // The cases: a 20 MB config.json of nested brackets took 1 GB to refuse; a 44 MB tokenizer.json 25 s.
  const cases: [string, () => unknown, RegExp][] = [
    [
      '20 MB of nested brackets as config.json',
      () => parseHfLlama('['.repeat(20e6), safetensors, files),
      /more than any config\.json needs/,
    ],
    [
      'nesting 1,000 deep in a small config.json',
      () => parseHfLlama('['.repeat(1000) + ']'.repeat(1000), safetensors, files),
      /nested 1000 levels deep/,
    ],
    [
      'a config.json padded to 2 MB',
      () => parseHfLlama(configJson + ' '.repeat(2 << 20), safetensors, files),
      /more than any config\.json needs/,
    ],
    [
      'a 44 MB tokenizer.json',
      () => fromTokenizerJson(`{"model": {"vocab": {${'"a": 1, '.repeat(5.5e6)}}}}`, 'big.json'),
      /big\.json: .*more than any tokenizer\.json needs/,
    ],
    [
      'a tokenizer.json nested 100,000 deep',
      () => fromTokenizerJson('{"a":'.repeat(1e5) + '1' + '}'.repeat(1e5), 'deep.json'),
      /deep\.json: JSON nested 100000 levels deep/,
    ],
  ];
  for (const [name, load, message] of cases) {
    it(`${name}: a FormatError within 300 ms`, () => {
      const start = performance.now();
      expect(load).toThrow(FormatError);
      expect(load).toThrow(message);
      expect((performance.now() - start) / 2).toBeLessThan(300);
    });
  }

  it('brackets inside strings do not count as nesting', () => {
    expect(jsonDepth('{"a": "[[[[{{{{", "b": ["\\"[["]}')).toBe(2);
  });
});
