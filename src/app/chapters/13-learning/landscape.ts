/**
 * What the landscape figure computes from numbers it is given (the shipped grid, the race's paths): contour
 * lines by marching squares, and when a path first reaches the valley floor. Pure, no DOM.
 */

/** A contour segment in grid coordinates: x is the column (a), y the row (b), fractional. */
export type Segment = [x1: number, y1: number, x2: number, y2: number];

/**
 * The segments of the contour line `level` through a size × size grid (values[row·size + col]), by marching
 * squares: in each cell, the edges whose two corners lie on different sides of the level are crossed where
 * linear interpolation puts the level, and the crossings are joined in pairs (a saddle, four crossings, is
 * joined one fixed way: at this grid's resolution the choice cannot be seen).
 */
export function contourSegments(values: ArrayLike<number>, size: number, level: number): Segment[] {
  const segments: Segment[] = [];
  const at = (row: number, col: number) => values[row * size + col];
  for (let row = 0; row + 1 < size; row++) {
    for (let col = 0; col + 1 < size; col++) {
      // Corners in order around the cell: (row, col), (row, col+1), (row+1, col+1), (row+1, col).
      const corners: [number, number, number][] = [
        [col, row, at(row, col)],
        [col + 1, row, at(row, col + 1)],
        [col + 1, row + 1, at(row + 1, col + 1)],
        [col, row + 1, at(row + 1, col)],
      ];
      const crossings: [number, number][] = [];
      for (let edge = 0; edge < 4; edge++) {
        const [x1, y1, v1] = corners[edge];
        const [x2, y2, v2] = corners[(edge + 1) % 4];
        if (v1 < level !== v2 < level) {
          const t = (level - v1) / (v2 - v1);
          crossings.push([x1 + t * (x2 - x1), y1 + t * (y2 - y1)]);
        }
      }
      for (let i = 0; i + 1 < crossings.length; i += 2) {
        segments.push([...crossings[i], ...crossings[i + 1]]);
      }
    }
  }
  return segments;
}

/** The first step at which `losses` is at most `threshold`; undefined if it never is. */
export function stepsToValley(losses: readonly number[], threshold: number): number | undefined {
  const step = losses.findIndex((loss) => loss <= threshold);
  return step < 0 ? undefined : step;
}
