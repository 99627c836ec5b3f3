/**
 * The largest and smallest entry of an array of numbers and where they are, found with a loop: a figure
 * never spreads an array into the arguments of Math.max or Math.min (a model-sized array overflows the
 * call stack).
 */
export interface Extremes {
  max: number;
  argMax: number;
  min: number;
  argMin: number;
  /** The larger magnitude of the two, the end of a symmetric colour scale (0 for no entries). */
  maxAbs: number;
}

/** Extremes of `values`; NaN entries are passed over; for no (finite) entries, all 0. */
export function extremes(values: ArrayLike<number>): Extremes {
  let argMax = -1;
  let argMin = -1;
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (Number.isNaN(value)) continue;
    if (argMax < 0 || value > values[argMax]) argMax = i;
    if (argMin < 0 || value < values[argMin]) argMin = i;
  }
  if (argMax < 0) return { max: 0, argMax: 0, min: 0, argMin: 0, maxAbs: 0 };
  const [max, min] = [values[argMax], values[argMin]];
  return { max, argMax, min, argMin, maxAbs: Math.max(Math.abs(max), Math.abs(min)) };
}
