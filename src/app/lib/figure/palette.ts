/**
 * The figures' colours for numbers: ONE diverging scale (signed values: weights, activations, scores) and
 * ONE sequential scale (values from 0 up: probabilities, attention weights), each in a light and a dark
 * version. Every figure and mark takes its colours from here, so the same value looks the same in every
 * chapter.
 *
 * Colour-blind safe, by this rule (tested in tests/app-palette.test.ts): under simulated protanopia,
 * deuteranopia and tritanopia (Machado et al. 2009, full severity) the two ends and the middle of the
 * diverging scale stay at least ΔE 20 apart (CIE76, in CIELAB), and the sequential scale's lightness rises
 * (light theme: falls) strictly from one stop to the next, so its order reads without hue at all.
 * The hues are Okabe–Ito's blue and orange; the middle is close to the page's own background.
 */

export type Rgb = [number, number, number];

interface DivergingStops {
  negative: Rgb;
  zero: Rgb;
  positive: Rgb;
}

export const DIVERGING: { light: DivergingStops; dark: DivergingStops } = {
  light: { negative: [33, 102, 172], zero: [247, 246, 243], positive: [179, 88, 6] },
  dark: { negative: [86, 180, 233], zero: [34, 37, 42], positive: [230, 159, 0] },
};

/** From 0 (the page's neutral) to the largest value: pale to deep blue on light pages, dark to bright yellow-green on dark ones. */
export const SEQUENTIAL: { light: Rgb[]; dark: Rgb[] } = {
  light: [
    [247, 246, 243],
    [158, 202, 225],
    [66, 146, 198],
    [8, 48, 107],
  ],
  dark: [
    [34, 37, 42],
    [33, 94, 128],
    [33, 158, 140],
    [253, 231, 37],
  ],
};

function mix(from: Rgb, to: Rgb, amount: number): Rgb {
  return [0, 1, 2].map((i) => Math.round(from[i] + (to[i] - from[i]) * amount)) as Rgb;
}

/** The red, green and blue of `t` in [−1, 1] on the diverging scale (beyond is clamped; NaN is the middle). */
export function divergingRgb(t: number, dark: boolean): Rgb {
  const { negative, zero, positive } = DIVERGING[dark ? 'dark' : 'light'];
  const amount = Number.isNaN(t) ? 0 : Math.min(Math.abs(t), 1);
  return mix(zero, t < 0 ? negative : positive, amount);
}

/** The red, green and blue of `t` in [0, 1] on the sequential scale (beyond is clamped; NaN is 0). */
export function sequentialRgb(t: number, dark: boolean): Rgb {
  const stops = SEQUENTIAL[dark ? 'dark' : 'light'];
  const scaled = (Number.isNaN(t) ? 0 : Math.min(Math.max(t, 0), 1)) * (stops.length - 1);
  const index = Math.min(Math.floor(scaled), stops.length - 2);
  return mix(stops[index], stops[index + 1], scaled - index);
}

/** WCAG's relative luminance of an sRGB colour: 0 for black, 1 for white (each channel linearised first). */
function relativeLuminance([r, g, b]: Rgb): number {
  const linear = (channel: number) => {
    const c = channel / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

/**
 * Text colour that reads on a cell filled with `rgb`: black or white, whichever contrasts more by WCAG's
 * ratio (L1 + 0.05) / (L2 + 0.05). The worse of the two is at worst 4.58:1 (a fill of luminance 0.18), so
 * every fill gets an ink that passes WCAG AA for small text (4.5:1); a near-black would not quite.
 */
export function inkOn(rgb: Rgb): string {
  const fill = relativeLuminance(rgb);
  return (fill + 0.05) / 0.05 >= 1.05 / (fill + 0.05) ? '#000' : '#fff';
}

export function css([r, g, b]: Rgb): string {
  return `rgb(${r} ${g} ${b})`;
}

/** The diverging scale as a CSS gradient from −1 (left) to +1 (right), for legends. */
export function divergingGradient(dark: boolean): string {
  const stops = [-1, -0.5, 0, 0.5, 1].map((t) => css(divergingRgb(t, dark)));
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** The sequential scale as a CSS gradient from 0 (left) to 1 (right), for legends. */
export function sequentialGradient(dark: boolean): string {
  const stops = [0, 0.25, 0.5, 0.75, 1].map((t) => css(sequentialRgb(t, dark)));
  return `linear-gradient(to right, ${stops.join(', ')})`;
}
