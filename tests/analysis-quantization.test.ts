/**
 * src/analysis/quantization.ts against independent recomputation: histogram counts by brute force; the
 * group-wise quantizer at groups of 32 equal to llama.cpp's q8_0 / q4_0 / q4_1 blocks (src/engine/quant.ts,
 * bit-exact with gguf-py) and, at other sizes, within the rounding bound each rule promises; bytes equal to
 * tensorBytes and to the tensors of a GGUF file `glassbox quantize` writes; the round-tripped model's
 * perplexity equal to that of the model read back from that GGUF file; prediction flips counted with a plain
 * argmax; float16/bfloat16 bits of known numbers; and the held-out excerpt still exactly its corpus chapters.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { HELD_OUT_CHAPTERS, HELD_OUT_TEXT } from '../src/analysis/held-out.ts';
import { perplexity } from '../src/analysis/perplexity.ts';
import {
  argmaxRows,
  bytesPerWeight,
  firstDifference,
  floatFormats,
  groupSizeSweep,
  histogram,
  modelBytes,
  normalTail,
  outlierBlock,
  predictionFlips,
  quantizeGroups,
  roundTripModel,
  SCHEME_TYPE,
  weightMatrices,
  type GroupScheme,
} from '../src/analysis/quantization.ts';
import { splitCorpus } from '../src/corpus/split.ts';
import { dequantize, quantize, tensorBytes } from '../src/engine/quant.ts';
import { randomModel } from '../src/engine/init.ts';
import { rawTokenizerFromFile } from '../src/formats/bundle.ts';
import { parseGgufLlama, toGguf } from '../src/formats/gguf-llama.ts';
import { defaultKernels, loadModelFolder, randomArray, seededRandom } from './helpers.ts';
import { denseModel } from '../src/engine/quant-matmul.ts';

const SCHEMES = Object.keys(SCHEME_TYPE) as GroupScheme[];

const house = loadModelFolder('models/house');

describe('histogram', () => {
  it('counts every value in the bin a brute-force comparison puts it in', () => {
    const values = randomArray(5000, seededRandom(3), 0.2);
    values[17] = -0.9; // the extreme, at the left edge
    const h = histogram(values, 41);
    expect(h.maxAbs).toBe(Math.fround(0.9));
    expect(h.argMaxAbs).toBe(17);
    const width = (2 * h.maxAbs) / 41;
    for (let bin = 0; bin < 41; bin++) {
      const lo = -h.maxAbs + bin * width;
      const count = Array.from(values).filter(
        (v) => v >= lo && (bin === 40 ? v <= h.maxAbs : v < lo + width),
      ).length;
      expect(h.counts[bin], `bin ${bin}`).toBe(count);
    }
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(5000);
    const mean = Array.from(values).reduce((a, b) => a + b, 0) / 5000;
    const std = Math.sqrt(Array.from(values).reduce((a, v) => a + (v - mean) ** 2, 0) / 5000);
    expect(h.std).toBeCloseTo(std, 12);
    expect(h.outliers).toBe(Array.from(values).filter((v) => Math.abs(v) > 4 * std).length);
  });

  it('gives the normal tail P(|z| > k) of a numerical integral', () => {
    for (const k of [1, 2, 3, 4, 6]) {
      // ∫ from k to 12 of 2·φ(z) dz, by Simpson's rule on a fine grid.
      const n = 20000;
      const h = (12 - k) / n;
      let sum = 0;
      for (let i = 0; i <= n; i++) {
        const z = k + i * h;
        const weight = i === 0 || i === n ? 1 : i % 2 ? 4 : 2;
        sum += weight * Math.exp((-z * z) / 2);
      }
      const tail = ((2 / Math.sqrt(2 * Math.PI)) * sum * h) / 3;
      expect(Math.abs(normalTail(k) / tail - 1), `k = ${k}`).toBeLessThan(0.01);
    }
  });
});

describe('floatFormats', () => {
  it('splits known numbers into the bits of float32, float16 and bfloat16', () => {
    const one = floatFormats(1);
    expect(one.f32.bits).toBe('0' + '01111111' + '0'.repeat(23));
    expect(one.f16.bits).toBe('0' + '01111' + '0'.repeat(10));
    expect(one.bf16.bits).toBe('0' + '01111111' + '0'.repeat(7));
    const tenth = floatFormats(-0.1);
    // −0.1 in float16 is 0xAE66 (−0.0999755859375); in bfloat16 0xBDCD (−0.10009765625).
    expect(tenth.f16.bits).toBe((0xae66).toString(2));
    expect(tenth.f16.value).toBe(-0.0999755859375);
    expect(tenth.bf16.bits).toBe((0xbdcd).toString(2));
    expect(tenth.bf16.value).toBe(-0.10009765625);
    expect(tenth.f32.value).toBe(Math.fround(-0.1));
  });
});

describe('quantizeGroups', () => {
  it('at groups of 32 gives exactly the q8_0, q4_0 and q4_1 blocks of quant.ts (random and real weights)', () => {
    const real = house.model.weights.layers[1].wUp.data.subarray(0, 32 * 64);
    const inputs = [randomArray(32 * 40, seededRandom(9), 0.3), new Float32Array(real), new Float32Array(64)];
    for (const values of inputs) {
      for (const scheme of SCHEMES) {
        const type = SCHEME_TYPE[scheme];
        const stored = quantize(values, [values.length / 32, 32], type);
        const ours = quantizeGroups(values, 32, scheme);
        expect(Array.from(ours.dequantized), scheme).toEqual(Array.from(dequantize(stored)));
        // The scale each block stores (its first float16) is the group's.
        const view = new DataView(stored.bytes.buffer);
        const blockBytes = stored.bytes.length / (values.length / 32);
        ours.groups.forEach((group, b) => {
          const scale = dequantize({
            type: 'f16',
            shape: [1],
            bytes: stored.bytes.slice(b * blockBytes, b * blockBytes + 2),
          })[0];
          expect(group.scale).toBe(scale);
          expect(view.byteLength).toBe(stored.bytes.length);
        });
        expect(ours.bytesPerWeight * values.length).toBe(tensorBytes(type, [values.length]));
      }
    }
  });

  it('at every other size keeps each rule: integers in range and every number within half a step', () => {
    const values = new Float32Array(house.model.weights.layers[2].wq.data.subarray(0, 256 * 8));
    for (const size of [8, 16, 64, 128, 256]) {
      for (const scheme of SCHEMES) {
        const { groups, dequantized } = quantizeGroups(values, size, scheme);
        expect(groups).toHaveLength(values.length / size);
        for (const group of groups) {
          const x = Array.from(values.subarray(group.start, group.start + size));
          const amax = Math.max(...x.map(Math.abs));
          const [lo, hi] = scheme === 'int8' ? [-127, 127] : [0, 15];
          group.q.forEach((q) => expect(q >= lo && q <= hi && Number.isInteger(q)).toBe(true));
          // The scale is the rule's, to float16 precision (11 significant bits).
          const expected =
            scheme === 'int8'
              ? amax / 127
              : scheme === 'int4'
                ? amax / 8
                : (Math.max(...x) - Math.min(...x)) / 15;
          expect(Math.abs(Math.abs(group.scale) / expected - 1)).toBeLessThan(2 ** -10);
          // Every number lands within half a step, plus the scale's own float16 rounding over the range; in
          // int4 the levels run from −8 to +7 steps, so a number beyond 7 steps on the far side is clamped there.
          const step = Math.abs(group.scale);
          x.forEach((v, i) => {
            const error = Math.abs(dequantized[group.start + i] - v);
            const clamped = scheme === 'int4' ? Math.abs(v) - 7 * step : 0;
            expect(error).toBeLessThanOrEqual(Math.max(step / 2, clamped) + amax * 2 ** -10 + 1e-7);
          });
        }
      }
    }
  });

  it('costs (scale [+ min] + integers) / size bytes per weight', () => {
    expect(bytesPerWeight('int8', 32)).toBe(34 / 32);
    expect(bytesPerWeight('int4', 32)).toBe(18 / 32);
    expect(bytesPerWeight('int4-min', 32)).toBe(20 / 32);
    expect(bytesPerWeight('int4', 8)).toBe((2 + 4) / 8);
    expect(bytesPerWeight('int8', 256)).toBe((2 + 256) / 256);
  });

  it('sweeps group sizes: larger groups cost fewer bytes, and on real weights err more', () => {
    const sweep = groupSizeSweep(house.model.weights.layers[0].wGate.data);
    for (const scheme of SCHEMES) {
      for (let i = 1; i < sweep.length; i++) {
        expect(sweep[i].schemes[scheme].bytesPerWeight).toBeLessThan(
          sweep[i - 1].schemes[scheme].bytesPerWeight,
        );
        expect(sweep[i].schemes[scheme].rms).toBeGreaterThan(sweep[i - 1].schemes[scheme].rms);
      }
    }
    const at32 = sweep.find((row) => row.size === 32)!;
    const wGate = house.model.weights.layers[0].wGate;
    const q4 = dequantize(quantize(wGate.data, wGate.shape, 'q4_0'));
    let squares = 0;
    q4.forEach((v, i) => (squares += (v - wGate.data[i]) ** 2));
    expect(at32.schemes.int4.rms).toBeCloseTo(Math.sqrt(squares / q4.length), 12);
  });
});

describe('the outlier block', () => {
  it("holds the model's largest weight, found by brute force, and its scale shrinks without it", () => {
    const found = outlierBlock(house.model);
    let best = 0;
    for (const { tensor } of weightMatrices(house.model))
      for (const v of tensor.data) best = Math.max(best, Math.abs(v));
    expect(Math.abs(found.value)).toBe(best);
    expect(found.values[found.at]).toBe(found.value);
    expect(Math.abs(found.withoutOutlier.groups[0].scale)).toBeLessThan(
      Math.abs(found.withOutlier.groups[0].scale),
    );
    expect(found.othersError.withoutOutlier.rms).toBeLessThan(found.othersError.withOutlier.rms);
    // q4_0 of that block is quant.ts's.
    const stored = dequantize(quantize(new Float32Array(found.values), [32], 'q4_0'));
    expect(Array.from(found.withOutlier.dequantized)).toEqual(Array.from(stored));
  });

  it('finds the weight that stands out most in its block, by brute force over every block of every row', () => {
    const found = outlierBlock(house.model, 'standout');
    let best = { ratio: 0, value: 0 };
    for (const { tensor } of weightMatrices(house.model)) {
      const columns = tensor.shape[1];
      for (let start = 0; start < tensor.data.length; start += 32) {
        if ((start % columns) + 32 > columns) continue;
        const sizes = Array.from(tensor.data.subarray(start, start + 32), Math.abs).sort((a, b) => b - a);
        if (sizes[0] / sizes[1] > best.ratio) {
          best = { ratio: sizes[0] / sizes[1], value: sizes[0] };
        }
      }
    }
    expect(Math.abs(found.value)).toBe(best.value);
    const others = found.values.filter((_, i) => i !== found.at).map(Math.abs);
    expect(Math.abs(found.value) / Math.max(...others)).toBeCloseTo(best.ratio, 12);
    expect(found.othersError.withoutOutlier.rms).toBeLessThan(found.othersError.withOutlier.rms);
  });
});

describe('whole models', () => {
  const raw = rawTokenizerFromFile(
    { name: 'tokenizer.json', bytes: new Uint8Array(readFileSync('models/house/tokenizer.json')) },
    house.model.config.vocabSize,
  );

  it('gives the bytes of the weights in a GGUF file glassbox quantize writes', () => {
    for (const type of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_1'] as const) {
      const { tensors, keptAtF16 } = toGguf(house.model, raw, type);
      const ours = modelBytes(house.model, type);
      expect(ours.bytes, type).toBe(tensors.reduce((sum, tensor) => sum + tensor.bytes.length, 0));
      expect(ours.keptAtF16.length).toBe(keptAtF16.length);
    }
    // A model whose rows are not whole blocks keeps those matrices at f16 (stories260K's wDown, rows of 172).
    const odd = randomModel(
      {
        dim: 64,
        hiddenDim: 172,
        nLayers: 1,
        nHeads: 4,
        nKvHeads: 4,
        vocabSize: 64,
        seqLen: 8,
        normEps: 1e-5,
        ropeTheta: 10000,
        ropeLayout: 'interleaved',
        sharedClassifier: true,
      },
      1,
    );
    const q4 = modelBytes(odd, 'q4_0');
    expect(q4.keptAtF16).toEqual(['layers[0].wDown']);
  });

  it('round-trips the weights to the perplexity of the model read back from the GGUF file', () => {
    const kernels = defaultKernels();
    const ids = house.tokenizer.encode(HELD_OUT_TEXT, { bos: false, eos: false }).slice(0, 400);
    for (const type of ['q8_0', 'q4_0'] as const) {
      // The file's blocks read back as float32 (the loader would run them as stored: here, only the weights).
      const fromFile = denseModel(
        parseGgufLlama(toGguf(house.model, raw, type).bytes, `house-${type}.gguf`).model,
      );
      const expected = perplexity(fromFile, ids, house.tokenizer.bosId, kernels).perplexity;
      const ours = perplexity(
        roundTripModel(house.model, type),
        ids,
        house.tokenizer.bosId,
        kernels,
      ).perplexity;
      expect(Math.abs(ours / expected - 1), type).toBeLessThan(1e-4);
    }
  });
});

describe('predictions', () => {
  it('counts flips with a plain argmax of every row', () => {
    const random = seededRandom(4);
    const width = 50;
    const a = randomArray(width * 30, random);
    const b = a.map((v, i) => (i % 7 === 0 ? v + 0.9 : v));
    const top = (logits: Float32Array, r: number) => {
      const row = Array.from(logits.subarray(r * width, (r + 1) * width));
      return row.indexOf(Math.max(...row));
    };
    const flips = predictionFlips(a, b, width);
    const expected = Array.from({ length: 30 }, (_, r) => r).filter((r) => top(a, r) !== top(b, r));
    expect(flips.flipped).toEqual(expected);
    expect(expected.length).toBeGreaterThan(0);
    expect(argmaxRows(b, width)).toEqual(Array.from({ length: 30 }, (_, r) => top(b, r)));
    expect(firstDifference([1, 2, 3], [1, 2, 4])).toBe(2);
    expect(firstDifference([1, 2], [1, 2])).toBeUndefined();
    expect(firstDifference([1, 2], [1, 2, 5])).toBe(2);
  });
});

describe('the held-out excerpt', () => {
  it("is exactly the corpus's first validation chapters", () => {
    const corpus = gunzipSync(readFileSync('corpus/web.txt.gz')).toString('utf8');
    const { valChapters } = splitCorpus(corpus);
    const chosen = valChapters.slice(0, HELD_OUT_CHAPTERS.length);
    expect(chosen.map((c) => c.heading)).toEqual(HELD_OUT_CHAPTERS);
    expect(HELD_OUT_TEXT).toBe(chosen.map((c) => c.text).join('\n\n') + '\n');
  });
});
