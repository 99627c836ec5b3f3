/** src/app/lib/format.ts: the few-character counts of tick labels and tokens seen, and sizes in megabytes. */
import { describe, expect, it } from 'vitest';
import { compactCount, megabytes } from '../src/app/lib/format.ts';

describe('compactCount', () => {
  it('writes a count in a few characters, with one decimal below 10 of a unit', () => {
    expect(compactCount(0)).toBe('0');
    expect(compactCount(950)).toBe('950');
    expect(compactCount(1000)).toBe('1 k');
    expect(compactCount(2_560)).toBe('2.6 k');
    expect(compactCount(41_000)).toBe('41 k');
    expect(compactCount(2_600_000)).toBe('2.6 M');
    expect(compactCount(3_200_000_000)).toBe('3.2 G');
    expect(compactCount(4_000_000_000_000)).toBe('4000 G');
  });

  it('takes the next unit when rounding reaches 1,000 of this one', () => {
    expect(compactCount(999_999)).toBe('1 M');
    expect(compactCount(999_400)).toBe('999 k');
    expect(compactCount(999_999_999)).toBe('1 G');
  });
});

describe('megabytes', () => {
  it('is a size in MB with one decimal', () => {
    expect(megabytes(3_449_000)).toBe('3.4 MB');
    expect(megabytes(0)).toBe('0.0 MB');
  });
});
