/**
 * Chapter 6 (position and RoPE): the pure functions behind its figures, checked against the Trace of real
 * models and against independent float64 computations — never against numbers they printed themselves.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectKernels } from '../src/kernels/select.ts';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { headDim as headDimOf, kvHeadOf, type Model, type RopeLayout } from '../src/engine/model.ts';
import { ropePairMembers as pairMembers } from '../src/engine/ops.ts';
import { focusPosition } from '../src/app/lib/figure/focus.ts';
import { parseHfLlama } from '../src/formats/hf-llama.ts';
import { parseLlama2cCheckpoint } from '../src/formats/llama2c.ts';
import { llama2cTokenizer, parseLlama2cTokenizer } from '../src/tokenizers/llama2c.ts';
import {
  allScores,
  attentionScore,
  compareOrders,
  degrees,
  headPairs,
  headVector,
  pairAngle,
  pairWavelength,
  reversedPosition,
  reversedTokens,
  ropeHead,
  rotatePair,
  rotatedScore,
  scoreByDistance,
  shiftedScores,
  sinusoidalTable,
  type LayerQk,
  type RopeGeometry,
} from '../src/app/chapters/06-position/position.ts';
import { describeShared, STORIES260K, STORIES260K_HF, TOK512 } from './shared.ts';
import { loadModelFolder, smallConfig } from './helpers.ts';

// The fastest kernels this runtime has, as the CLI and the course choose by default.
const kernels = selectKernels('auto');

const HOUSE = resolve(import.meta.dirname, '..', 'models', 'house');
const describeHouse = existsSync(join(HOUSE, 'model.safetensors')) ? describe : describe.skip;

function houseModel() {
  return loadModelFolder(HOUSE);
}

function traceOf(model: Model, tokens: number[]) {
  return forward(model, tokens, new KVCache(model.config), { trace: true, logits: 'last', kernels }).trace;
}

function geometryOf(model: Model): RopeGeometry {
  return { headDim: headDimOf(model.config), layout: model.config.ropeLayout, theta: model.config.ropeTheta };
}

/** RoPE written out independently, in float64: θ_i = theta^(−2i/D), pairs by the layout's own rule. */
function ropeFloat64(head: ArrayLike<number>, pos: number, D: number, layout: RopeLayout, theta: number) {
  const out = Array.from(head, Number);
  for (let i = 0; i < D / 2; i++) {
    const a = layout === 'interleaved' ? 2 * i : i;
    const b = layout === 'interleaved' ? 2 * i + 1 : i + D / 2;
    const angle = pos * Math.pow(theta, (-2 * i) / D);
    const [x, y] = [head[a], head[b]];
    out[a] = x * Math.cos(angle) - y * Math.sin(angle);
    out[b] = x * Math.sin(angle) + y * Math.cos(angle);
  }
  return out;
}

function dot64(a: ArrayLike<number>, b: ArrayLike<number>) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/** Checks that the pairs of q/k before RoPE, turned by the 2-D formula, are the Trace's pairs after RoPE. */
function expectPairsRotateIntoTrace(model: Model, tokens: number[], layout = model.config.ropeLayout) {
  const trace = traceOf(model, tokens);
  const geometry = { ...geometryOf(model), layout };
  const D = geometry.headDim;
  let worst = 0;
  for (const layer of trace.layers) {
    for (const [before, after, heads] of [
      [layer.q, layer.qRope, model.config.nHeads],
      [layer.k, layer.kRope, model.config.nKvHeads],
    ] as const) {
      for (let t = 0; t < tokens.length; t++) {
        for (let h = 0; h < heads; h++) {
          const pairs = headPairs(headVector(before.data, heads, D, t, h), geometry);
          const traced = headPairs(headVector(after.data, heads, D, t, h), geometry);
          pairs.forEach((pair, i) => {
            const angle = t * Math.pow(geometry.theta, (-2 * i) / D); // float64, not the engine's helper
            const turned = { x: pair.x * Math.cos(angle) - pair.y * Math.sin(angle), y: 0 };
            turned.y = pair.x * Math.sin(angle) + pair.y * Math.cos(angle);
            const scale = Math.max(1, Math.hypot(pair.x, pair.y));
            worst = Math.max(
              worst,
              Math.abs(turned.x - traced[i].x) / scale,
              Math.abs(turned.y - traced[i].y) / scale,
            );
          });
        }
      }
    }
  }
  return worst;
}

describe('chapter 6: RoPE pairs, angles and frequencies', () => {
  it('pairs neighbours in the interleaved layout and the two halves in the Hugging Face layout', () => {
    expect([0, 1, 7].map((i) => pairMembers(i, 16, 'interleaved'))).toEqual([
      [0, 1],
      [2, 3],
      [14, 15],
    ]);
    expect([0, 1, 7].map((i) => pairMembers(i, 16, 'half'))).toEqual([
      [0, 8],
      [1, 9],
      [7, 15],
    ]);
    // Every dimension belongs to exactly one pair, in both layouts.
    for (const layout of ['interleaved', 'half'] as const) {
      const members = Array.from({ length: 16 }, (_, i) => pairMembers(i, 32, layout)).flat();
      expect([...members].sort((a, b) => a - b)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    }
    const head = Float32Array.from({ length: 8 }, (_, i) => i * 10);
    expect(headPairs(head, { headDim: 8, layout: 'interleaved', theta: 10000 })).toEqual([
      { x: 0, y: 10 },
      { x: 20, y: 30 },
      { x: 40, y: 50 },
      { x: 60, y: 70 },
    ]);
    expect(headPairs(head, { headDim: 8, layout: 'half', theta: 10000 })).toEqual([
      { x: 0, y: 40 },
      { x: 10, y: 50 },
      { x: 20, y: 60 },
      { x: 30, y: 70 },
    ]);
  });

  it('gives the angles, wavelengths and degrees of θ_i = base^(−2i/d)', () => {
    const geometry: RopeGeometry = { headDim: 32, layout: 'half', theta: 10000 };
    expect(pairAngle(0, 5, geometry)).toBe(5); // θ_0 = 1 radian per position
    expect(pairAngle(1, 1, geometry)).toBeCloseTo(Math.pow(10, -0.25), 12); // 10000^(−2/32) = 10^(−1/4)
    expect(pairAngle(15, 1, geometry)).toBeCloseTo(1e-4 * Math.pow(10, 0.25), 15); // 10000^(−30/32)
    expect(pairWavelength(0, geometry)).toBeCloseTo(2 * Math.PI, 12);
    expect(pairWavelength(8, geometry)).toBeCloseTo(200 * Math.PI, 9); // 2π · 10000^(16/32)
    expect(degrees(Math.PI / 2)).toBeCloseTo(90, 12);
    expect(degrees(5 * Math.PI)).toBeCloseTo(180, 9);
    expect(degrees(-Math.PI / 2)).toBeCloseTo(270, 12);
  });

  it("rotates with the engine's RoPE exactly as the 2-D rotation formula says, in both layouts", () => {
    const head = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i * 1.7) * 2 - 0.3);
    for (const layout of ['interleaved', 'half'] as const) {
      const geometry: RopeGeometry = { headDim: 32, layout, theta: 10000 };
      for (const pos of [0, 1, 37, 127, 1000]) {
        const rotated = headPairs(ropeHead(head, pos, geometry), geometry);
        const expected = headPairs(head, geometry).map((pair, i) =>
          rotatePair(pair, pairAngle(i, pos, geometry)),
        );
        rotated.forEach((pair, i) => {
          expect(pair.x).toBeCloseTo(expected[i].x, 5);
          expect(pair.y).toBeCloseTo(expected[i].y, 5);
        });
        // And the independent float64 RoPE agrees, element by element.
        const float64 = ropeFloat64(head, pos, 32, layout, 10000);
        ropeHead(head, pos, geometry).forEach((v, i) => expect(v).toBeCloseTo(float64[i], 5));
      }
      // Rotation keeps every pair's length.
      headPairs(ropeHead(head, 91, geometry), geometry).forEach((pair, i) => {
        const original = headPairs(head, geometry)[i];
        expect(Math.hypot(pair.x, pair.y)).toBeCloseTo(Math.hypot(original.x, original.y), 5);
      });
    }
    expect(rotatePair({ x: 1, y: 0 }, Math.PI / 2).x).toBeCloseTo(0, 15);
    expect(rotatePair({ x: 1, y: 0 }, Math.PI / 2).y).toBeCloseTo(1, 15);
  });

  it('finds the same index of a grouped kv head as attention.ts, and the focus token', () => {
    expect([0, 1, 2, 3].map((h) => kvHeadOf(h, 4, 2))).toEqual([0, 0, 1, 1]);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((h) => kvHeadOf(h, 8, 4))).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    expect(focusPosition(-1, 10)).toBe(9);
    expect(focusPosition(3, 10)).toBe(3);
    expect(focusPosition(40, 10)).toBe(9);
    expect(focusPosition(-1, 0)).toBe(-1);
  });

  it('reverses a text with BOS kept first, and knows where each token went', () => {
    const tokens = [1, 10, 20, 30, 40];
    const reversed = reversedTokens(tokens);
    expect(reversed).toEqual([1, 40, 30, 20, 10]);
    tokens.forEach((token, t) => expect(reversed[reversedPosition(t, tokens.length)]).toBe(token));
    expect(reversedTokens([])).toEqual([]);
    expect(reversedTokens([1])).toEqual([1]);
  });
});

describe('chapter 6: the sinusoidal table', () => {
  it('has the values of the formula at known points', () => {
    const table = sinusoidalTable(50, 4);
    // Position 0: sin 0 = 0 in even columns, cos 0 = 1 in odd ones.
    expect(Array.from(table.subarray(0, 4))).toEqual([0, 1, 0, 1]);
    expect(table[1 * 4 + 0]).toBeCloseTo(0.8414709848, 7); // sin(1)
    expect(table[1 * 4 + 1]).toBeCloseTo(0.5403023059, 7); // cos(1)
    expect(table[2 * 4 + 2]).toBeCloseTo(0.0199986667, 7); // sin(2 / 10000^(2/4)) = sin(0.02)
    expect(table[2 * 4 + 3]).toBeCloseTo(0.9998000067, 7); // cos(0.02)
    expect(table[49 * 4 + 0]).toBeCloseTo(-0.9537526528, 7); // sin(49)
  });

  it('is a pair of sine and cosine per frequency, and position p + k is position p turned by k·ω_i', () => {
    const dim = 128;
    const table = sinusoidalTable(128, dim);
    for (const p of [0, 5, 77]) {
      for (let i = 0; i < dim / 2; i++) {
        const [s, c] = [table[p * dim + 2 * i], table[p * dim + 2 * i + 1]];
        expect(s * s + c * c).toBeCloseTo(1, 6);
        // (sin, cos) at p + 9 is a rotation of (sin, cos) at p by 9·ω_i: the sinusoids' own relative trick.
        const omega = Math.pow(10000, (-2 * i) / dim);
        const shifted = [table[(p + 9) * dim + 2 * i], table[(p + 9) * dim + 2 * i + 1]];
        expect(s * Math.cos(9 * omega) + c * Math.sin(9 * omega)).toBeCloseTo(shifted[0], 5);
        expect(c * Math.cos(9 * omega) - s * Math.sin(9 * omega)).toBeCloseTo(shifted[1], 5);
      }
    }
  });
});

describe('chapter 6: the score depends only on the distance', () => {
  const head = (seed: number) => Float32Array.from({ length: 32 }, (_, i) => Math.cos(i * seed + seed) * 1.5);

  it('is the same for every shift of both positions, in float64 and with the engine', () => {
    const [q, k] = [head(0.9), head(2.3)];
    for (const layout of ['interleaved', 'half'] as const) {
      const geometry: RopeGeometry = { headDim: 32, layout, theta: 10000 };
      const reference = dot64(ropeFloat64(q, 12, 32, layout, 10000), ropeFloat64(k, 5, 32, layout, 10000));
      for (const shift of [1, 10, 100, 1000, 12345]) {
        const float64 = dot64(
          ropeFloat64(q, 12 + shift, 32, layout, 10000),
          ropeFloat64(k, 5 + shift, 32, layout, 10000),
        );
        expect(Math.abs(float64 - reference)).toBeLessThan(1e-10);
      }
      const shifted = shiftedScores(q, k, 12, 5, [0, 1, 10, 100, 1000], geometry);
      expect(shifted.map((s) => [s.queryPos, s.keyPos])).toEqual([
        [12, 5],
        [13, 6],
        [22, 15],
        [112, 105],
        [1012, 1005],
      ]);
      for (const s of shifted) expect(s.score).toBeCloseTo(reference / Math.sqrt(32), 5);
    }
  });

  it('changes when the distance changes', () => {
    const [q, k] = [head(0.9), head(2.3)];
    const geometry: RopeGeometry = { headDim: 32, layout: 'half', theta: 10000 };
    const here = rotatedScore(q, k, 12, 5, geometry);
    for (const move of [1, 5, 10]) {
      const float64 =
        dot64(ropeFloat64(q, 12 + move, 32, 'half', 10000), ropeFloat64(k, 5, 32, 'half', 10000)) /
        Math.sqrt(32);
      expect(rotatedScore(q, k, 12 + move, 5, geometry)).toBeCloseTo(float64, 5);
      expect(Math.abs(float64 - here)).toBeGreaterThan(1e-2);
    }
    // The curve over distances is the same function: entry d equals any pair of positions d apart.
    const curve = scoreByDistance(q, k, 40, geometry);
    for (const d of [0, 3, 39]) expect(curve[d]).toBeCloseTo(rotatedScore(q, k, d + 21, 21, geometry), 5);
  });

  it('computes scores as attention.ts does: q·k/√D', () => {
    expect(attentionScore([1, 2, 3, 4], [4, 3, 2, 1])).toBeCloseTo(20 / 2, 12);
  });
});

describeHouse('chapter 6 on the house model (Hugging Face layout)', () => {
  const { model, tokenizer } = houseModel();
  const tokens = tokenizer.encode('In the beginning God created the heavens and the earth.', {
    bos: true,
    eos: false,
  });

  it("extracts pairs that turn into the Trace's qRope/kRope by the 2-D formula, and not in the other layout", () => {
    expect(model.config.ropeLayout).toBe('half');
    expect(expectPairsRotateIntoTrace(model, tokens)).toBeLessThan(2e-5);
    // Reading the same numbers as neighbour pairs does not match: the layout matters.
    expect(expectPairsRotateIntoTrace(model, tokens, 'interleaved')).toBeGreaterThan(1e-2);
  });

  it("gives the Trace's own scores from q and k before RoPE, with the engine's RoPE", () => {
    const trace = traceOf(model, tokens);
    const geometry = geometryOf(model);
    const { nHeads, nKvHeads } = model.config;
    const T = tokens.length;
    for (const l of [0, 3]) {
      const layer = trace.layers[l];
      for (let h = 0; h < nHeads; h++) {
        for (const [m, n] of [
          [T - 1, T - 2],
          [T - 1, 0],
          [5, 5],
          [7, 2],
        ]) {
          const q = headVector(layer.q.data, nHeads, geometry.headDim, m, h);
          const k = headVector(layer.k.data, nKvHeads, geometry.headDim, n, kvHeadOf(h, nHeads, nKvHeads));
          const traced = layer.scores.data[(h * T + m) * T + n];
          expect(rotatedScore(q, k, m, n, geometry)).toBeCloseTo(traced, 4);
        }
      }
    }
  });

  it('sees the same pre-RoPE scores in a reversed text in layer 0, and different ones after RoPE', () => {
    const reversed = reversedTokens(tokens);
    const [a, b] = [traceOf(model, tokens), traceOf(model, reversed)];
    const qk = (layer: (typeof a.layers)[number]): LayerQk => ({
      q: layer.q.data,
      k: layer.k.data,
      qRope: layer.qRope.data,
      kRope: layer.kRope.data,
    });
    const shape = { T: tokens.length, nHeads: 4, nKvHeads: 2, headDim: 32 };
    for (let h = 0; h < 4; h++) {
      const first = compareOrders(qk(a.layers[0]), qk(b.layers[0]), shape, h);
      expect(first.pairs).toBe(tokens.length ** 2);
      expect(first.maxBefore).toBeLessThan(1e-6);
      expect(first.maxAfter).toBeGreaterThan(0.05);
      // Pairs keep their score only where the distance is the same both ways: a token with itself, and
      // (BOS, token at T/2) when T is even. Every other pair changes.
      const T = tokens.length;
      const same = T + (T % 2 === 0 ? 2 : 0);
      expect(first.changedAfter).toBe(T * T - same);
      // Deeper layers have mixed in other tokens, so q and k no longer depend on the token alone.
      expect(compareOrders(qk(a.layers[2]), qk(b.layers[2]), shape, h).maxBefore).toBeGreaterThan(1e-3);
    }
    // allScores matches the Trace where the causal mask allows.
    const scores = allScores(a.layers[1].qRope.data, a.layers[1].kRope.data, shape, 3);
    const T = tokens.length;
    for (let t = 0; t < T; t++) {
      for (let s = 0; s <= t; s++)
        expect(scores[t * T + s]).toBeCloseTo(a.layers[1].scores.data[(3 * T + t) * T + s], 4);
    }
  });
});

describe('chapter 6 on a model with the interleaved (llama2.c) layout', () => {
  it("extracts pairs that turn into the Trace's qRope/kRope", () => {
    const model = randomModel(smallConfig({ dim: 64, hiddenDim: 96, sharedClassifier: true }), 7, 0.3);
    const tokens = [1, 5, 9, 13, 2, 40, 33, 7, 11, 19, 23, 29];
    expect(expectPairsRotateIntoTrace(model, tokens)).toBeLessThan(2e-5);
    expect(expectPairsRotateIntoTrace(model, tokens, 'half')).toBeGreaterThan(1e-2);
  });
});

describeShared('chapter 6 on stories260K, in both layouts of the same weights', () => {
  it('finds the same pairs in the llama2.c checkpoint (neighbours) and its Hugging Face twin (halves)', () => {
    const llama2c = parseLlama2cCheckpoint(new Uint8Array(readFileSync(STORIES260K)), 'stories260K.bin');
    const hf = parseHfLlama(
      readFileSync(join(STORIES260K_HF, 'config.json'), 'utf8'),
      new Uint8Array(readFileSync(join(STORIES260K_HF, 'model.safetensors'))),
      { config: 'config.json', weights: 'model.safetensors' },
    );
    expect([llama2c.config.ropeLayout, hf.config.ropeLayout]).toEqual(['interleaved', 'half']);
    const tokenizer = llama2cTokenizer(
      parseLlama2cTokenizer(new Uint8Array(readFileSync(TOK512)), 'tok512.bin', 512),
    );
    const tokens = tokenizer.encode('Once upon a time, there was a little girl named Lily.', {
      bos: true,
      eos: false,
    });
    expect(expectPairsRotateIntoTrace(llama2c, tokens)).toBeLessThan(2e-5);
    expect(expectPairsRotateIntoTrace(hf, tokens)).toBeLessThan(2e-5);
    // HF permuted the q/k rows so that its pair i is llama2.c's pair i: the same 2-D arrows, read two ways.
    const [a, b] = [traceOf(llama2c, tokens), traceOf(hf, tokens)];
    const D = headDimOf(llama2c.config);
    for (const l of [0, llama2c.config.nLayers - 1]) {
      for (let t = 0; t < tokens.length; t += 3) {
        for (let h = 0; h < llama2c.config.nHeads; h++) {
          const left = headPairs(
            headVector(a.layers[l].q.data, llama2c.config.nHeads, D, t, h),
            geometryOf(llama2c),
          );
          const right = headPairs(headVector(b.layers[l].q.data, hf.config.nHeads, D, t, h), geometryOf(hf));
          left.forEach((pair, i) => {
            expect(right[i].x).toBeCloseTo(pair.x, 4);
            expect(right[i].y).toBeCloseTo(pair.y, 4);
          });
        }
      }
    }
  });
});
