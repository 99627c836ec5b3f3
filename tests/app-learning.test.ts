/**
 * Chapter 13's drawing arithmetic (src/app/chapters/13-learning/landscape.ts): marching squares puts each
 * contour crossing where the level lies on the grid's edges, and a path reaches the valley at the first step
 * at or under the threshold.
 */
import { describe, expect, it } from 'vitest';
import { contourSegments, stepsToValley } from '../src/app/chapters/13-learning/landscape.ts';

describe('contour lines by marching squares', () => {
  it('cross each edge where linear interpolation puts the level', () => {
    // A bowl: f(col, row) = (col − 1)² + (row − 1)² on a 3 × 3 grid; level 0.5 crosses the four edges out
    // of the centre at distance 0.5 (f = 0 at the centre, 1 at the edge midpoints).
    const size = 3;
    const values = Array.from(
      { length: size * size },
      (_, i) => (Math.floor(i / size) - 1) ** 2 + ((i % size) - 1) ** 2,
    );
    const segments = contourSegments(values, size, 0.5);
    expect(segments).toHaveLength(4);
    const points = new Set(segments.flatMap(([x1, y1, x2, y2]) => [`${x1},${y1}`, `${x2},${y2}`]));
    expect([...points].sort()).toEqual(['0.5,1', '1,0.5', '1,1.5', '1.5,1'].sort());
    // A level outside the values crosses nothing.
    expect(contourSegments(values, size, 5)).toEqual([]);
  });
});

describe('reaching the valley', () => {
  it('is the first step at or under the threshold', () => {
    expect(stepsToValley([9, 5, 3.4, 3.2, 3.5], 3.4)).toBe(2);
    expect(stepsToValley([9, 5], 3.4)).toBeUndefined();
    expect(stepsToValley([3, NaN], 3.4)).toBe(0);
  });
});
