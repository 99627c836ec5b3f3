/** How numbers and token pieces are written in figures (one place, so every figure agrees). */

/** A probability as a percentage: one decimal from 0.1 % up, two significant digits below. */
export function percent(probability: number): string {
  const value = probability * 100;
  if (value >= 0.1 || value === 0) return `${value.toFixed(1)}%`;
  return `${value.toPrecision(2)}%`;
}

/** A token piece with its whitespace made visible: spaces as ␣, newlines as ⏎, tabs as ⇥. */
export function visiblePiece(piece: string): string {
  return piece.replace(/ /g, '␣').replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}

/** A token piece for prose and screen readers: quoted, with leading spaces said in words. */
export function spokenPiece(piece: string): string {
  const leading = piece.match(/^ +/)?.[0].length ?? 0;
  const rest = piece.slice(leading).replace(/\n/g, '⏎');
  if (leading === 0) return `“${rest}”`;
  return `“${rest}” with ${leading === 1 ? 'a leading space' : `${leading} leading spaces`}`;
}

export function integer(value: number): string {
  return value.toLocaleString('en');
}

/** A count with its noun: "1 row", "12 rows" (`many` for irregular plurals). */
export function plural(count: number, one: string, many = `${one}s`): string {
  return `${integer(count)} ${count === 1 ? one : many}`;
}

/** A tensor shape as the engine's Trace names it, e.g. [12 × 128]. */
export function shape(...dims: number[]): string {
  return `[${dims.map(integer).join(' × ')}]`;
}

/** A model value (an activation, a weight) with 3 significant digits and a true minus sign. */
export function formatNumber(value: number): string {
  return value.toPrecision(3).replace('-', '−');
}

/** A size in bytes as megabytes with one decimal: "3.4 MB" (download progress, file sizes). */
export function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A large count in a few characters: 950, 41 k, 2.6 M (for tick labels and tokens seen). */
export function compactCount(value: number): string {
  if (value < 1000) return integer(value);
  const units = [
    [1e3, 'k'],
    [1e6, 'M'],
    [1e9, 'G'],
  ] as const;
  // The unit is chosen after rounding, so that 999,999 is "1 M", not "1000 k".
  const rounded = (divisor: number) => {
    const scaled = value / divisor;
    return scaled < 10 ? Number(scaled.toFixed(1)) : Math.round(scaled);
  };
  const [divisor, unit] = units.find(([divisor]) => rounded(divisor) < 1000) ?? units[units.length - 1];
  return `${rounded(divisor)} ${unit}`;
}
