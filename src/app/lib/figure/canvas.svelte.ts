/**
 * Drawing on canvas, once for every figure: a canvas sized in device pixels for its CSS size, the page's
 * colours read from its CSS variables, a redraw when the theme changes, a grid of values as an image of one
 * pixel per cell, and axes from d3 scales. Figures draw dense data here (heatmaps, thousands of points);
 * their numbers always also stand in text beside the drawing.
 */
import type { NumberValue } from 'd3-scale';
import { theme } from '$lib/state/theme.svelte.ts';
import type { Rgb } from './palette.ts';

export interface Paint {
  context: CanvasRenderingContext2D;
  /** The drawing's size in CSS pixels (the context is scaled so that one unit is one CSS pixel). */
  width: number;
  height: number;
  /** A CSS variable of the page (e.g. '--text'), as the canvas sees it in the current theme. */
  colour(name: string): string;
}

/** Whether the page is in its dark theme now. Read in an effect or $derived, it follows the theme. */
export function darkTheme(): boolean {
  return typeof document !== 'undefined' && pageStyle().dark;
}

/**
 * The page's colour scheme and colour variables, read once per theme. Every colour variable is set on
 * :root (global.css), so the root's values are every canvas's. (getComputedStyle makes the browser bring
 * its styles up to date first: asked by every figure as it drew, one keystroke recomputed the page's styles
 * between figures, each time the one before had changed the page.)
 */
let pageStyleCache: { version: number; dark: boolean; colours: Map<string, string> } | undefined;

function pageStyle(): { dark: boolean; colours: Map<string, string> } {
  const version = theme.version; // read here, so that an effect or $derived calling this follows the theme
  if (pageStyleCache?.version !== version) {
    const dark = getComputedStyle(document.documentElement).colorScheme === 'dark';
    pageStyleCache = { version, dark, colours: new Map() };
  }
  return pageStyleCache;
}

/** A colour variable of the page (e.g. '--text') in the current theme. */
function pageColour(name: string): string {
  const { colours } = pageStyle();
  let value = colours.get(name);
  if (value === undefined) {
    value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    if (value) colours.set(name, value); // an empty value (styles not loaded yet) is asked for again
  }
  return value;
}

/**
 * Call from an $effect: sizes `canvas` to width × height CSS pixels at the device's pixel ratio, clears it
 * and hands `draw` a context in CSS pixels. It reads the theme, so the effect redraws when it changes.
 * Nothing is drawn while the size is 0 (before the layout is known).
 */
export function paint(
  canvas: HTMLCanvasElement | undefined,
  width: number,
  height: number,
  draw: (paint: Paint) => void,
): void {
  void theme.version;
  if (!canvas || width <= 0 || height <= 0) return;
  const context = canvas.getContext('2d');
  if (!context) return;
  const ratio = window.devicePixelRatio || 1;
  const pixelWidth = Math.max(1, Math.round(width * ratio));
  const pixelHeight = Math.max(1, Math.round(height * ratio));
  if (canvas.width !== pixelWidth) canvas.width = pixelWidth;
  if (canvas.height !== pixelHeight) canvas.height = pixelHeight;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  context.imageSmoothingEnabled = false;
  draw({ context, width, height, colour: pageColour });
}

/**
 * An offscreen drawing at the device's pixel ratio, for the part of a figure that changes rarely (every
 * point of a vocabulary) under a part that follows the pointer: draw it once here, then `drawImage` it at
 * (0, 0, width, height) in `paint`. Nothing is drawn until `element` (the figure's canvas) exists; reading
 * the theme makes the $derived that calls this follow it.
 */
export function offscreen(
  element: HTMLElement | undefined,
  width: number,
  height: number,
  draw: (paint: Paint) => void,
): HTMLCanvasElement | undefined {
  void theme.version;
  if (!element || width <= 0 || height <= 0) return undefined;
  const canvas = document.createElement('canvas');
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(width * ratio));
  canvas.height = Math.max(1, Math.round(height * ratio));
  const context = canvas.getContext('2d');
  if (!context) return undefined;
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  draw({ context, width, height, colour: pageColour });
  return canvas;
}

/**
 * `values` (row-major, rows × cols) as an image of one pixel per cell, coloured by `colour`; only the
 * first `count` values are drawn (the rest stay transparent). Draw it scaled up with smoothing off.
 */
export function cellImage(
  values: ArrayLike<number>,
  rows: number,
  cols: number,
  colour: (value: number) => Rgb,
  count = rows * cols,
): HTMLCanvasElement | undefined {
  if (typeof document === 'undefined' || rows * cols === 0) return undefined;
  const image = document.createElement('canvas');
  image.width = cols;
  image.height = rows;
  const context = image.getContext('2d');
  if (!context) return undefined;
  const pixels = context.createImageData(cols, rows);
  const drawn = Math.min(count, rows * cols, values.length);
  for (let i = 0; i < drawn; i++) {
    const [r, g, b] = colour(values[i]);
    pixels.data[i * 4] = r;
    pixels.data[i * 4 + 1] = g;
    pixels.data[i * 4 + 2] = b;
    pixels.data[i * 4 + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
  return image;
}

/** A d3 scale as the axes use it: value → pixel, with its range in pixels. */
interface AxisScale {
  (value: number): number | undefined;
  range(): number[];
}

export interface AxesOptions {
  x: AxisScale;
  y: AxisScale;
  /** Where grid lines and labels go (usually `scale.ticks(n)`). */
  xTicks: readonly NumberValue[];
  yTicks: readonly NumberValue[];
  xFormat?: (value: number) => string;
  yFormat?: (value: number) => string;
  /** Titles along each axis (under the x labels; above the y labels, at the left edge). */
  xTitle?: string;
  yTitle?: string;
}

/** A number as a tick label: 3 significant digits at most, a true minus sign. */
export function tickLabel(value: number): string {
  return String(Number(value.toPrecision(3))).replace('-', '−');
}

/**
 * Grid lines and tick labels from d3 scales: a vertical line at each x tick, labelled under the plot, and
 * a horizontal line at each y tick, labelled left of it. Call it first, then draw the data over it.
 */
export function drawAxes({ context, colour }: Paint, options: AxesOptions): void {
  const { x, y, xTicks, yTicks, xFormat = tickLabel, yFormat = tickLabel } = options;
  const [left, right] = x.range();
  const [bottom, top] = y.range();
  context.save();
  context.font = '12px system-ui, sans-serif';
  context.lineWidth = 1;
  context.strokeStyle = colour('--border');
  context.fillStyle = colour('--muted');
  context.textAlign = 'center';
  context.textBaseline = 'top';
  for (const tick of xTicks) {
    const at = x(Number(tick));
    if (at === undefined) continue;
    context.beginPath();
    context.moveTo(at, top);
    context.lineTo(at, bottom);
    context.stroke();
    context.fillText(xFormat(Number(tick)), at, bottom + 5);
  }
  context.textAlign = 'right';
  context.textBaseline = 'middle';
  for (const tick of yTicks) {
    const at = y(Number(tick));
    if (at === undefined) continue;
    context.beginPath();
    context.moveTo(left, at);
    context.lineTo(right, at);
    context.stroke();
    context.fillText(yFormat(Number(tick)), left - 6, at);
  }
  context.textBaseline = 'alphabetic';
  if (options.xTitle) {
    context.textAlign = 'center';
    context.fillText(options.xTitle, (left + right) / 2, bottom + 32);
  }
  if (options.yTitle) {
    context.textAlign = 'left';
    context.fillText(options.yTitle, 4, Math.max(12, top - 8));
  }
  context.restore();
}

/**
 * Tick labels of a d3 scale in a row at height `y`, with no grid lines: the columns of a heatmap above it.
 * Each label starts at its tick; one that would run into `before` (e.g. where a last label stands) is left out.
 */
export function drawTickLabels(
  { context }: Paint,
  x: AxisScale,
  ticks: readonly NumberValue[],
  {
    y,
    before = x.range()[1],
    format = tickLabel,
  }: { y: number; before?: number; format?: (value: number) => string },
): void {
  context.save();
  context.textAlign = 'left';
  context.textBaseline = 'middle';
  for (const tick of ticks) {
    const at = x(Number(tick));
    const label = format(Number(tick));
    if (at !== undefined && at + context.measureText(label).width < before) context.fillText(label, at, y);
  }
  context.restore();
}

/** `text` cut to fit `room` pixels in the context's current font, with an ellipsis where it was cut. */
export function fitText(context: CanvasRenderingContext2D, text: string, room: number): string {
  if (context.measureText(text).width <= room) return text;
  let cut = text.length;
  while (cut > 1 && context.measureText(`${text.slice(0, cut)}…`).width > room) cut--;
  return `${text.slice(0, cut)}…`;
}
