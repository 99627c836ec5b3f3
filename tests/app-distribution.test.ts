import { describe, expect, it } from 'vitest';
import { coverage } from '../src/app/chapters/01-whole-machine/distribution.ts';

describe('chapter 1: how the probability spreads over the vocabulary', () => {
  it('sorts, accumulates and counts the tokens needed for a share', () => {
    const result = coverage(Float32Array.from([0.1, 0.6, 0.05, 0.25]), [0.5, 0.9, 1]);
    expect(Array.from(result.sorted)).toEqual(Array.from(Float32Array.from([0.6, 0.25, 0.1, 0.05])));
    expect(result.cumulative[3]).toBeCloseTo(1, 6);
    expect(result.tokensFor).toEqual([
      { threshold: 0.5, count: 1 },
      { threshold: 0.9, count: 3 },
      { threshold: 1, count: 4 },
    ]);
  });

  it('does not change its input', () => {
    const probabilities = Float32Array.from([0.2, 0.8]);
    coverage(probabilities);
    expect(Array.from(probabilities)).toEqual(Array.from(Float32Array.from([0.2, 0.8])));
  });
});
