import { describe, expect, it } from 'vitest';
import { XorShiftRng } from '../src/engine/rng.ts';
import {
  MIN_SAMPLING_TEMPERATURE,
  filterCandidates,
  sampleToken,
  temperatureSoftmax,
  validateSamplingSettings,
} from '../src/engine/sampling.ts';

describe('XorShiftRng (llama2.c random_u32 / random_f32)', () => {
  it('matches an independent Python implementation of xorshift64* for seed 42', () => {
    // Computed with Python's arbitrary-precision integers: s ^= s>>12; s ^= s<<25 (mod 2^64); s ^= s>>27;
    // (s * 0x2545F4914F6CDD1D mod 2^64) >> 32.
    const rng = new XorShiftRng(42);
    expect([rng.nextU32(), rng.nextU32(), rng.nextU32(), rng.nextU32(), rng.nextU32()]).toEqual([
      1456360119, 3359763283, 3393612768, 4054632243, 3283045847,
    ]);
    const again = new XorShiftRng(42n);
    expect(again.nextFloat()).toBe((1456360119 >>> 8) / 2 ** 24);
  });

  it('rejects the seed 0, which would stay 0 forever', () => {
    expect(() => new XorShiftRng(0)).toThrow(/must not be 0/);
  });
});

const logits = Float32Array.from([1.0, 3.0, 2.0, -1.0, 2.5, 0.0]);

describe('sampling', () => {
  it('temperature 0 is greedy', () => {
    expect(sampleToken(logits, { temperature: 0 }, new XorShiftRng(1))).toBe(1);
  });

  it('temperatures below MIN_SAMPLING_TEMPERATURE are greedy, never NaN; from it on, the softmax is finite', () => {
    // 1e-40 is the case: logits / 1e-40 overflows float32, and the softmax became NaN.
    const wide = Float32Array.from([-3e4, 3e4, 2.9e4, 0]);
    for (const temperature of [5e-324, 1e-45, 1e-40, 1e-30, 1e-10, MIN_SAMPLING_TEMPERATURE * 0.999]) {
      for (const settings of [{}, { topP: 0 }, { topP: 0.9 }, { topK: 2 }, { minP: 0.5 }]) {
        expect(sampleToken(wide, { temperature, ...settings }, new XorShiftRng(3))).toBe(1);
      }
    }
    const atThreshold = temperatureSoftmax(wide, MIN_SAMPLING_TEMPERATURE);
    expect(atThreshold.every(Number.isFinite)).toBe(true);
    expect(atThreshold[1]).toBe(1);
  });

  it('softmax with temperature: sums to 1, T → sharper or flatter', () => {
    const p1 = temperatureSoftmax(logits, 1);
    expect(p1.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const expected = Array.from(logits, (l) => Math.exp(l)).map(
      (e, _, all) => e / all.reduce((a, b) => a + b),
    );
    p1.forEach((p, i) => expect(p).toBeCloseTo(expected[i], 6));
    expect(temperatureSoftmax(logits, 0.5)[1]).toBeGreaterThan(p1[1]);
    expect(temperatureSoftmax(logits, 2)[1]).toBeLessThan(p1[1]);
  });

  it('top-k keeps the k most likely; min-p keeps p ≥ minP · max; top-p keeps the smallest prefix over p', () => {
    const probs = temperatureSoftmax(logits, 1); // order by probability: 1, 4, 2, 0, 5, 3
    expect(filterCandidates(probs, { temperature: 1, topK: 3 }).map((c) => c.token)).toEqual([1, 4, 2]);
    // p1 ≈ 0.4174, p4 ≈ 0.2532, p2 ≈ 0.1536, p0 ≈ 0.0565: minP 0.3 keeps p ≥ 0.125.
    expect(filterCandidates(probs, { temperature: 1, minP: 0.3 }).map((c) => c.token)).toEqual([1, 4, 2]);
    // cumulative: 0.417, 0.671, 0.824 → exceeds 0.8 at the third.
    expect(filterCandidates(probs, { temperature: 1, topP: 0.8 }).map((c) => c.token)).toEqual([1, 4, 2]);
    expect(filterCandidates(probs, { temperature: 1, topP: 0.5 }).map((c) => c.token)).toEqual([1, 4]);
    expect(filterCandidates(probs, { temperature: 1, topP: 0.3 }).map((c) => c.token)).toEqual([1]);
  });

  it('only kept tokens are ever drawn, in proportion to their renormalised probability', () => {
    const rng = new XorShiftRng(2024);
    const counts = new Map<number, number>();
    const draws = 20000;
    for (let i = 0; i < draws; i++) {
      const token = sampleToken(logits, { temperature: 1, topK: 2 }, rng);
      counts.set(token, (counts.get(token) ?? 0) + 1);
    }
    expect([...counts.keys()].sort()).toEqual([1, 4]);
    const p = temperatureSoftmax(logits, 1);
    const expectedShare = p[1] / (p[1] + p[4]);
    // 20,000 draws: the standard error of the share is ≈ 0.0035, so 0.015 is > 4 standard errors.
    expect(Math.abs(counts.get(1)! / draws - expectedShare)).toBeLessThan(0.015);
  });

  it('without filters every token can be drawn, at its softmax frequency', () => {
    const rng = new XorShiftRng(99);
    const counts = new Float64Array(logits.length);
    const draws = 40000;
    for (let i = 0; i < draws; i++) counts[sampleToken(logits, { temperature: 1, topP: 1 }, rng)]++;
    const p = temperatureSoftmax(logits, 1);
    counts.forEach((c, i) => expect(Math.abs(c / draws - p[i])).toBeLessThan(0.01));
  });

  it('the same seed gives the same sequence', () => {
    const draw = (seed: number) => {
      const rng = new XorShiftRng(seed);
      return Array.from({ length: 50 }, () => sampleToken(logits, { temperature: 1.3, topP: 0.95 }, rng));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('invalid settings get specific messages', () => {
    expect(() => validateSamplingSettings({ temperature: -1 })).toThrow(/temperature must be ≥ 0/);
    expect(() => validateSamplingSettings({ temperature: 1, topP: 1.5 })).toThrow(
      /top-p must be between 0 and 1/,
    );
    expect(() => validateSamplingSettings({ temperature: 1, topK: 2.5 })).toThrow(
      /top-k must be a whole number/,
    );
    expect(() => validateSamplingSettings({ temperature: 1, minP: -0.1 })).toThrow(/min-p/);
    expect(() => validateSamplingSettings({ temperature: NaN })).toThrow(/temperature/);
  });
});
