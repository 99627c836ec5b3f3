/**
 * The pieces every figure shares (lib/figure): the palette and its colour-blind rule, the focus rule,
 * extremes without spreading, labelled points on a canvas; chapter 1's bars at the reader's temperature
 * (and below the greedy threshold); and a model with a 2^20-position context, whose chapter-6 figures must
 * cost what a short one costs. Plus a guard over the whole app: no array is ever spread into Math.max or
 * Math.min.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { distributionAt, temperatureText } from '../src/app/chapters/01-whole-machine/distribution.ts';
import { matrixBlock } from '../src/app/chapters/05-neurons/neurons.ts';
import {
  headVector,
  MAX_CURVE_DISTANCES,
  MAX_SINUSOID_ROWS,
  ropeGeometry,
  scoreByDistance,
  sinusoidalEntry,
  sinusoidalTable,
} from '../src/app/chapters/06-position/position.ts';
import { handlers as positionHandlers } from '../src/app/chapters/06-position/worker.ts';
import { extremes } from '../src/app/lib/figure/extremes.ts';
import { focusPosition, focusValue } from '../src/app/lib/figure/focus.ts';
import { nearestPoint, pointLabeller, REACH } from '../src/app/lib/figure/points.ts';
import {
  DIVERGING,
  divergingRgb,
  inkOn,
  SEQUENTIAL,
  sequentialRgb,
  type Rgb,
} from '../src/app/lib/figure/palette.ts';
import { randomModel } from '../src/engine/init.ts';
import { headDim, kvHeadOf } from '../src/engine/model.ts';
import { MIN_SAMPLING_TEMPERATURE, temperatureSoftmax } from '../src/engine/sampling.ts';
import type { Tokenizer } from '../src/tokenizers/tokenizer.ts';
import { loadIntoWorker, smallConfig } from './helpers.ts';

// --- colour science for the palette rule: sRGB → linear → (simulated deficiency) → CIELAB -------------

const toLinear = (c: number) => {
  const v = c / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
};
const fromLinear = (v: number) => {
  const c = Math.min(Math.max(v, 0), 1);
  return 255 * (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
};

/** Machado, Oliveira & Fernandes (2009), severity 1.0, applied to linear RGB. */
const DEFICIENCIES: Record<string, number[][]> = {
  protanopia: [
    [0.152286, 1.052583, -0.204868],
    [0.114503, 0.786281, 0.099216],
    [-0.003882, -0.048116, 1.051998],
  ],
  deuteranopia: [
    [0.367322, 0.860646, -0.227968],
    [0.280085, 0.672501, 0.047413],
    [-0.01182, 0.04294, 0.968881],
  ],
  tritanopia: [
    [1.255528, -0.076749, -0.178779],
    [-0.078411, 0.930809, 0.147602],
    [0.004733, 0.691367, 0.3039],
  ],
};

function simulate(rgb: Rgb, matrix: number[][]): Rgb {
  const linear = rgb.map(toLinear);
  return matrix.map((row) => fromLinear(row[0] * linear[0] + row[1] * linear[1] + row[2] * linear[2])) as Rgb;
}

function lab(rgb: Rgb): [number, number, number] {
  const [r, g, b] = rgb.map(toLinear);
  const xyz = [
    (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047,
    0.2126 * r + 0.7152 * g + 0.0722 * b,
    (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883,
  ].map((t) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t) / 116 + 16 / 116));
  return [116 * xyz[1] - 16, 500 * (xyz[0] - xyz[1]), 200 * (xyz[1] - xyz[2])];
}

const deltaE = (a: Rgb, b: Rgb) => Math.hypot(...lab(a).map((v, i) => v - lab(b)[i]));

describe('inkOn: text on a filled cell', () => {
  // WCAG 2's relative luminance and contrast ratio, from the linearised channels above.
  const luminance = ([r, g, b]: Rgb) => 0.2126 * toLinear(r) + 0.7152 * toLinear(g) + 0.0722 * toLinear(b);
  const contrast = (a: Rgb, b: Rgb) => {
    const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (light + 0.05) / (dark + 0.05);
  };
  const ink = (fill: Rgb): Rgb => (inkOn(fill) === '#000' ? [0, 0, 0] : [255, 255, 255]);

  it('passes WCAG AA for small text (4.5:1) on every grey and every colour of both ramps, light and dark', () => {
    const fills: Rgb[] = [];
    for (let v = 0; v <= 255; v++) fills.push([v, v, v]);
    for (const dark of [false, true])
      for (let t = -1; t <= 1; t += 1 / 64) {
        fills.push(divergingRgb(t, dark));
        if (t >= 0) fills.push(sequentialRgb(t, dark));
      }
    for (const fill of fills) {
      expect(['#000', '#fff']).toContain(inkOn(fill));
      expect(contrast(fill, ink(fill)), `ink on rgb(${fill.join(' ')})`).toBeGreaterThanOrEqual(4.5);
      // and it is the better of the two
      const other: Rgb = inkOn(fill) === '#000' ? [255, 255, 255] : [0, 0, 0];
      expect(contrast(fill, ink(fill))).toBeGreaterThanOrEqual(contrast(fill, other));
    }
  });
});

describe('the palette: one diverging and one sequential scale, in both themes', () => {
  it('has distinct colours: the two themes differ, and every stop of a scale differs from the others', () => {
    for (const theme of ['light', 'dark'] as const) {
      const { negative, zero, positive } = DIVERGING[theme];
      for (const [a, b] of [
        [negative, zero],
        [zero, positive],
        [negative, positive],
      ])
        expect(deltaE(a, b)).toBeGreaterThan(20);
      const stops = SEQUENTIAL[theme];
      for (let i = 1; i < stops.length; i++) expect(deltaE(stops[i - 1], stops[i])).toBeGreaterThan(10);
    }
    expect(DIVERGING.light).not.toEqual(DIVERGING.dark);
    expect(SEQUENTIAL.light).not.toEqual(SEQUENTIAL.dark);
    // The two scales are told apart too: the sequential top is not a diverging end.
    for (const dark of [false, true]) {
      expect(deltaE(sequentialRgb(1, dark), divergingRgb(1, dark))).toBeGreaterThan(20);
    }
  });

  it('is colour-blind safe by the stated rule: ends and middle ΔE ≥ 20 apart under each simulated deficiency', () => {
    for (const theme of ['light', 'dark'] as const) {
      const { negative, zero, positive } = DIVERGING[theme];
      for (const [name, matrix] of Object.entries(DEFICIENCIES)) {
        const [n, z, p] = [negative, zero, positive].map((c) => simulate(c, matrix));
        const distances = [deltaE(n, z), deltaE(z, p), deltaE(n, p)];
        for (const distance of distances) expect(distance, `${theme} ${name}`).toBeGreaterThanOrEqual(20);
      }
    }
  });

  it('orders the sequential scale by lightness alone (strictly monotonic, so hue is never needed)', () => {
    for (const dark of [false, true]) {
      const lightness = Array.from({ length: 21 }, (_, i) => lab(sequentialRgb(i / 20, dark))[0]);
      for (let i = 1; i < lightness.length; i++) {
        if (dark) expect(lightness[i]).toBeGreaterThan(lightness[i - 1]);
        else expect(lightness[i]).toBeLessThan(lightness[i - 1]);
      }
    }
  });

  it('clamps, and never turns NaN into a colour that is not on the scale', () => {
    expect(divergingRgb(-5, false)).toEqual(DIVERGING.light.negative);
    expect(divergingRgb(5, true)).toEqual(DIVERGING.dark.positive);
    expect(divergingRgb(NaN, true)).toEqual(DIVERGING.dark.zero);
    expect(sequentialRgb(NaN, false)).toEqual(SEQUENTIAL.light[0]);
    expect(sequentialRgb(7, false)).toEqual(SEQUENTIAL.light.at(-1));
  });
});

describe('one focus rule and extremes by loop', () => {
  it('turns course.token into a position and back', () => {
    expect([-1, 0, 3, 9, 40].map((token) => focusPosition(token, 10))).toEqual([9, 0, 3, 9, 9]);
    expect(focusPosition(-1, 0)).toBe(-1);
    expect([0, 3, 9, 12].map((position) => focusValue(position, 10))).toEqual([0, 3, -1, -1]);
  });

  it('finds the extremes of 2^20 numbers (Math.max(...array) overflows the stack there)', () => {
    const values = Float64Array.from({ length: 2 ** 20 }, (_, i) => Math.sin(i));
    values[123_456] = 7;
    values[654_321] = -8;
    expect(extremes(values)).toEqual({ max: 7, argMax: 123_456, min: -8, argMin: 654_321, maxAbs: 8 });
    expect(extremes([NaN, 2, NaN])).toMatchObject({ max: 2, min: 2 });
    expect(extremes([])).toEqual({ max: 0, argMax: 0, min: 0, argMin: 0, maxAbs: 0 });
  });
});

describe('chapter 1: the bars follow the temperature', () => {
  const logits = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 1.7) * 6 + (i % 7));

  it('are temperatureSoftmax at the reader temperature, the distribution Generate samples from', () => {
    for (const temperature of [0.1, 0.3, 0.8, 1, 1.5]) {
      const { probabilities, greedy } = distributionAt(logits, temperature);
      expect(greedy).toBe(false);
      expect(probabilities).toEqual(temperatureSoftmax(logits, temperature));
    }
    // Lower temperature, sharper: the top token gains.
    const top = distributionAt(logits, 1).probabilities.indexOf(
      Math.max(...distributionAt(logits, 1).probabilities.slice(0, 300)),
    );
    expect(distributionAt(logits, 0.3).probabilities[top]).toBeGreaterThan(
      distributionAt(logits, 1).probabilities[top],
    );
  });

  it('put everything on the most likely token below the greedy threshold, and never show NaN', () => {
    expect(Number.isNaN(temperatureSoftmax(logits, 1e-40)[0])).toBe(true); // what the threshold prevents
    for (const temperature of [0, 1e-40, MIN_SAMPLING_TEMPERATURE / 2, NaN]) {
      const { probabilities, greedy } = distributionAt(logits, temperature);
      expect(greedy).toBe(true);
      expect(probabilities.some(Number.isNaN)).toBe(false);
      expect(probabilities.reduce((a, b) => a + b, 0)).toBe(1);
      expect(probabilities[logits.indexOf(Math.max(...logits))]).toBe(1);
    }
    expect(distributionAt(logits, MIN_SAMPLING_TEMPERATURE).greedy).toBe(false);
    expect([0, 0.8, 1.5, 0.05, 1e-40].map(temperatureText)).toEqual([
      '0.0',
      '0.8',
      '1.5',
      '0.050',
      '1.0e-40',
    ]);
  });
});

describe('chapter 5: the close-up of a matrix', () => {
  it('is the block of the matrix around the chosen cell, kept inside the matrix', () => {
    const [rows, cols] = [40, 30];
    const weights = Float32Array.from({ length: rows * cols }, (_, i) => i);
    const block = matrixBlock(weights, rows, cols, 39, 0, 16);
    expect([block.top, block.left, block.rows, block.cols]).toEqual([24, 0, 16, 16]);
    expect(block.values[0]).toBe(24 * cols);
    expect(block.values[16 * 16 - 1]).toBe(39 * cols + 15);
    const small = matrixBlock(weights.subarray(0, 8 * 4), 8, 4, 3, 3, 16);
    expect([small.top, small.left, small.rows, small.cols]).toEqual([0, 0, 8, 4]);
  });
});

describe('chapter 6 on a model with a 2^20-position context', () => {
  const config = smallConfig({
    dim: 64,
    hiddenDim: 96,
    vocabSize: 40,
    seqLen: 2 ** 20,
    ropeTheta: 500000,
    ropeLayout: 'half',
    sharedClassifier: true,
  });
  const model = randomModel(config, 3, 0.3);
  // The chapter's handlers read the model only.
  loadIntoWorker(model, {} as Tokenizer, { id: 'long', label: 'long context', tokenizer: 'none' });

  it('computes what the figures draw in bounded time, and follows a new text', () => {
    const started = performance.now();
    for (const tokens of [
      [1, 5, 9, 13, 2],
      [1, 7, 7, 30, 2, 11, 3],
    ]) {
      const data = positionHandlers.ropeLayer(tokens, 1);
      expect(data.seqLen).toBe(2 ** 20);
      expect(data.tokens).toEqual(tokens);
      const geometry = ropeGeometry(data);
      expect(geometry.headDim).toBe(headDim(config));
      const T = tokens.length;
      const q = headVector(data.q, data.nHeads, data.headDim, T - 1, 3);
      const k = headVector(
        data.k,
        data.nKvHeads,
        data.headDim,
        T - 2,
        kvHeadOf(3, data.nHeads, data.nKvHeads),
      );
      // What "Only the distance counts" draws: the first MAX_CURVE_DISTANCES distances, not 2^20 of them.
      const curve = scoreByDistance(q, k, Math.min(data.seqLen, MAX_CURVE_DISTANCES), geometry);
      expect(curve.length).toBe(MAX_CURVE_DISTANCES);
      const { max, min } = extremes(curve);
      expect(Number.isFinite(max) && Number.isFinite(min)).toBe(true);
      // The score at distance 1 is this text's own pair's score (a new text, a new number).
      expect(curve[1]).toBeCloseTo(data.scores[(3 * T + (T - 1)) * T + (T - 2)], 4);
      // What the sinusoid table draws: its first MAX_SINUSOID_ROWS rows.
      const rows = Math.min(data.seqLen, MAX_SINUSOID_ROWS);
      const table = sinusoidalTable(rows, config.dim);
      expect(table.length).toBe(MAX_SINUSOID_ROWS * config.dim);
      expect(table[5 * config.dim + 3]).toBeCloseTo(sinusoidalEntry(5, 3, config.dim).value, 6);
    }
    // Two texts in well under a second (the unbounded figures took 28–34 s in Chromium on this model).
    expect(performance.now() - started).toBeLessThan(2000);
  });
});

describe('labelled points on a canvas (the embedding maps of chapters 4 and 14)', () => {
  /** A canvas whose box starts at (10, 20) on the page, and a pointer event at (x, y) on the page. */
  const canvas = { getBoundingClientRect: () => ({ left: 10, top: 20 }) } as HTMLCanvasElement;
  const pointer = (x: number, y: number, pointerType = 'mouse') =>
    ({ clientX: x, clientY: y, pointerType }) as PointerEvent;
  const points: [number, number][] = [
    [0, 0],
    [30, 0],
    [30, 40],
  ];

  it('reads the point nearest the pointer, on the canvas, within a mouse’s or a fingertip’s reach', () => {
    const at = (i: number) => points[i];
    expect(nearestPoint(pointer(10 + 28, 20 + 3), canvas, 3, at)).toBe(1);
    expect(nearestPoint(pointer(10 + 29, 20 + 35), canvas, 3, at)).toBe(2);
    // Between the reaches: too far for a mouse, near enough for a finger.
    const off = (REACH.mouse + REACH.touch) / 2;
    expect(nearestPoint(pointer(10 + off, 20 + 20), canvas, 3, at)).toBeUndefined();
    expect(nearestPoint(pointer(10, 20 + off, 'touch'), canvas, 3, at)).toBe(0);
    expect(nearestPoint(pointer(10, 20 + off, 'touch'), canvas, 0, at)).toBeUndefined();
  });

  /** A context that measures 7 px a character and records where each label is written. */
  function recorder() {
    const written: { text: string; left: number; middle: number; font: string }[] = [];
    const fake = {
      font: '',
      measureText: (text: string) => ({ width: text.length * 7 }),
      strokeText: () => {},
      fillText: (text: string, left: number, middle: number) =>
        written.push({ text, left, middle, font: fake.font }),
    };
    const context = fake as unknown as CanvasRenderingContext2D;
    return { context, written, colour: (name: string) => name };
  }
  const GAP = { across: 8, above: 8, below: 9 };

  it('puts a label at the first free spot of four; a plain one with none free is left out, a strong one is not', () => {
    const { written, ...paint } = recorder();
    const label = pointLabeller(paint, { left: 0, right: 1000 }, GAP);
    for (const text of ['aa', 'bb', 'cc', 'dd', 'ee']) label(100, 100, text, false);
    label(100, 100, 'ff', true);
    expect(written.map(({ text, left, middle }) => [text, left, middle])).toEqual([
      ['aa', 108, 92], // right, above
      ['bb', 100 - 8 - 14, 92], // left, above
      ['cc', 108, 109], // right, below
      ['dd', 100 - 8 - 14, 109], // left, below
      ['ff', 108, 92], // strong: over the first spot, though it is taken
    ]);
    expect(written.map(({ font }) => font.startsWith('700 '))).toEqual([false, false, false, false, true]);
  });

  it('keeps plain labels between the plot’s edges, and a strong one wherever it fits first', () => {
    const { written, ...paint } = recorder();
    const label = pointLabeller(paint, { left: 50, right: 200 }, GAP);
    label(190, 100, 'wide', false); // no room on the right: left, above
    label(190, 100, 'wide', false); // left-above taken, right-below past the edge: left, below
    label(190, 100, 'strong', true); // right-above is free, past the edge
    label(60, 60, 'x', false); // left of (60, 60) is past the left edge: right, above
    label(60, 60, 'y', false); // right, below
    label(60, 60, 'z', false); // nowhere
    expect(written.map(({ text, left, middle }) => [text, left, middle])).toEqual([
      ['wide', 190 - 8 - 28, 92],
      ['wide', 190 - 8 - 28, 109],
      ['strong', 198, 92],
      ['x', 68, 52],
      ['y', 68, 69],
    ]);
  });
});

describe('no figure spreads an array into Math.max or Math.min', () => {
  it('holds for every file under src/app (an array of model size overflows the call stack)', () => {
    const offenders: string[] = [];
    const walk = (folder: string) => {
      for (const name of readdirSync(folder)) {
        const path = join(folder, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (/\.(ts|svelte|svx|js)$/.test(name)) {
          readFileSync(path, 'utf8')
            .split('\n')
            .forEach((line, i) => {
              if (/Math\.(max|min)\([^)]*\.\.\./.test(line))
                offenders.push(`${path}:${i + 1}: ${line.trim()}`);
            });
        }
      }
    };
    walk('src/app');
    expect(offenders).toEqual([]);
  });
});
