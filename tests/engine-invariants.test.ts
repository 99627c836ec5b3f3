/**
 * Invariants of the engine that hold for any weights, checked on small random models:
 * attention rows sum to 1, the causal mask zeroes the future, cached decoding equals re-running the prefix,
 * RoPE makes scores depend only on relative position, and the Trace has the documented shapes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectKernels } from '../src/kernels/select.ts';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { applyRope, rmsNorm, softmax } from '../src/engine/ops.ts';
import { referenceKernels } from '../src/kernels/reference.ts';
import { maxAbsDiff, seededRandom, smallConfig } from './helpers.ts';

// The fastest kernels this runtime has, as the CLI and the course choose by default.
const kernels = selectKernels('auto');

const config = smallConfig;

// Larger-than-usual weights so attention patterns are far from uniform and the checks have teeth.
const model = randomModel(config(), 7, 0.3);
const tokens = [1, 17, 4, 33, 8, 8, 21, 49, 0, 12, 5];

describe('attention', () => {
  const { trace } = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
  const T = tokens.length;

  it('every row of attention weights sums to 1', () => {
    for (const layer of trace.layers) {
      const [H, rowsT, S] = layer.weights.shape;
      expect([H, rowsT, S]).toEqual([4, T, T]);
      for (let row = 0; row < H * T; row++) {
        let sum = 0;
        for (let s = 0; s < S; s++) sum += layer.weights.data[row * S + s];
        expect(Math.abs(sum - 1)).toBeLessThan(1e-6);
      }
    }
  });

  it('masked (future) entries are exactly 0 in weights and −Infinity in scores; visible ones are not', () => {
    for (const layer of trace.layers) {
      const [H, , S] = layer.weights.shape;
      for (let h = 0; h < H; h++) {
        for (let t = 0; t < T; t++) {
          for (let s = 0; s < S; s++) {
            const i = (h * T + t) * S + s;
            const visible = s <= t;
            expect(layer.mask.data[t * S + s]).toBe(visible ? 1 : 0);
            if (visible) {
              expect(layer.weights.data[i]).toBeGreaterThan(0);
              expect(Number.isFinite(layer.scores.data[i])).toBe(true);
            } else {
              expect(Object.is(layer.weights.data[i], 0)).toBe(true);
              expect(layer.scores.data[i]).toBe(-Infinity);
            }
          }
        }
      }
    }
  });

  it('the first token can only attend to itself', () => {
    const layer = trace.layers[0];
    const S = layer.weights.shape[2];
    for (let h = 0; h < 4; h++) expect(layer.weights.data[h * T * S]).toBe(1);
  });

  it('weights are the softmax of the scores, and query heads in a group share one key head', () => {
    const layer = trace.layers[1];
    const S = T;
    const D = 8;
    // Recompute head 3's scores at t = 5 from the traced, rotated q and k: head 3 reads kv head 1.
    const t = 5;
    const expected = new Float32Array(t + 1);
    for (let s = 0; s <= t; s++) {
      let dot = 0;
      for (let i = 0; i < D; i++)
        dot += layer.qRope.data[(t * 4 + 3) * D + i] * layer.kRope.data[(s * 2 + 1) * D + i];
      expected[s] = dot / Math.sqrt(D);
    }
    const row = (3 * T + t) * S;
    expect(maxAbsDiff(layer.scores.data.subarray(row, row + t + 1), expected)).toBeLessThan(1e-5);
    softmax(expected);
    expect(maxAbsDiff(layer.weights.data.subarray(row, row + t + 1), expected)).toBeLessThan(1e-6);
  });
});

describe('KV cache', () => {
  it('prefill then one-token decode steps give the logits of running the whole prefix (1e-5)', () => {
    const full = forward(model, tokens, new KVCache(model.config), { kernels }).logits;
    const V = model.config.vocabSize;
    const cache = new KVCache(model.config);
    const prefillLength = 4;
    const prefill = forward(model, tokens.slice(0, prefillLength), cache, { kernels }).logits;
    expect(maxAbsDiff(prefill, full.subarray(0, prefillLength * V))).toBeLessThan(1e-5);
    for (let t = prefillLength; t < tokens.length; t++) {
      const step = forward(model, [tokens[t]], cache, { kernels }).logits;
      expect(maxAbsDiff(step, full.subarray(t * V, (t + 1) * V))).toBeLessThan(1e-5);
    }
    expect(cache.length).toBe(tokens.length);
  });

  it('a decode step with a cache equals re-running the full prefix from scratch at every length', () => {
    const V = model.config.vocabSize;
    const cache = new KVCache(model.config);
    for (let t = 0; t < tokens.length; t++) {
      const cached = forward(model, [tokens[t]], cache, { kernels }).logits;
      const rerun = forward(model, tokens.slice(0, t + 1), new KVCache(model.config), {
        logits: 'last',
        kernels,
      }).logits;
      expect(rerun.length).toBe(V);
      expect(maxAbsDiff(cached, rerun)).toBeLessThan(1e-5);
    }
  });

  it('refuses to run past the context and rejects token ids outside the vocabulary', () => {
    const small = randomModel(config({ seqLen: 4 }), 3);
    const cache = new KVCache(small.config);
    forward(small, [1, 2, 3], cache, { kernels });
    expect(() => forward(small, [4, 5], cache, { kernels })).toThrow(/exceed the context of 4/);
    expect(() => forward(small, [50], new KVCache(small.config), { kernels })).toThrow(
      /outside the vocabulary/,
    );
    expect(() => forward(small, [-1], new KVCache(small.config), { kernels })).toThrow(
      /outside the vocabulary/,
    );
  });

  it('GQA shrinks the cache by nHeads / nKvHeads', () => {
    const gqa = new KVCache(config());
    const mha = new KVCache(config({ nKvHeads: 4 }));
    expect(mha.byteSize / gqa.byteSize).toBe(2);
    expect(gqa.byteSize).toBe(2 * 2 * 32 * (2 * 8) * 4);
  });
});

describe('RoPE', () => {
  const D = 16;
  const seeded = (seed: number) => {
    let s = seed;
    return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  };

  for (const layout of ['interleaved', 'half'] as const) {
    it(`(${layout}) the score of q at m and k at n depends only on m − n`, () => {
      const next = seeded(11);
      const q = Float32Array.from({ length: D }, next);
      const k = Float32Array.from({ length: D }, next);
      const score = (m: number, n: number) => {
        const qm = Float32Array.from(q);
        const kn = Float32Array.from(k);
        applyRope(qm, m, 1, D, layout, 10000);
        applyRope(kn, n, 1, D, layout, 10000);
        return qm.reduce((sum, value, i) => sum + value * kn[i], 0);
      };
      for (const offset of [0, 1, 3, 10]) {
        const reference = score(offset, 0);
        for (const n of [1, 5, 17, 100, 400]) expect(score(n + offset, n)).toBeCloseTo(reference, 4);
      }
      // …and it really does depend on the distance (otherwise the check above would be vacuous).
      expect(Math.abs(score(3, 0) - score(0, 0))).toBeGreaterThan(1e-3);
    });

    it(`(${layout}) rotation preserves each pair's length and position 0 is the identity`, () => {
      const next = seeded(5);
      const v = Float32Array.from({ length: 2 * D }, next);
      const at0 = Float32Array.from(v);
      applyRope(at0, 0, 2, D, layout, 10000);
      expect(maxAbsDiff(at0, v)).toBe(0);
      const rotated = Float32Array.from(v);
      applyRope(rotated, 37, 2, D, layout, 10000);
      const norm = (x: Float32Array) => Math.hypot(...x);
      expect(norm(rotated)).toBeCloseTo(norm(v), 5);
    });
  }

  it('the two layouts are the same rotation after permuting dimensions', () => {
    const next = seeded(9);
    const interleaved = Float32Array.from({ length: D }, next);
    // HF layout puts pair i at (i, i + D/2) instead of (2i, 2i+1).
    const half = new Float32Array(D);
    for (let i = 0; i < D / 2; i++) {
      half[i] = interleaved[2 * i];
      half[i + D / 2] = interleaved[2 * i + 1];
    }
    applyRope(interleaved, 23, 1, D, 'interleaved', 10000);
    applyRope(half, 23, 1, D, 'half', 10000);
    for (let i = 0; i < D / 2; i++) {
      expect(half[i]).toBeCloseTo(interleaved[2 * i], 6);
      expect(half[i + D / 2]).toBeCloseTo(interleaved[2 * i + 1], 6);
    }
  });
});

describe('ops against their definitions', () => {
  it('rmsNorm divides by the root mean square and applies the gain', () => {
    const x = Float32Array.from([3, -4, 0, 12]);
    const gain = Float32Array.from([1, 2, 0.5, -1]);
    const out = new Float32Array(4);
    rmsNorm(out, x, gain, 0);
    const rms = Math.sqrt((9 + 16 + 0 + 144) / 4); // = 6.5
    expect(Array.from(out)).toEqual(Array.from(Float32Array.from([3 / rms, -8 / rms, 0, -12 / rms])));
  });

  it('matrix kernels agree with a naive triple loop', () => {
    const random = seededRandom(1);
    const next = () => random() * 2 - 1;
    const [M, K, N] = [7, 13, 5];
    const a = Float32Array.from({ length: M * K }, next);
    const w = Float32Array.from({ length: N * K }, next);
    const b = Float32Array.from({ length: K * N }, next);
    const at = Float32Array.from({ length: K * M }, next);
    const naive = (get: (i: number, k: number, n: number) => number) => {
      const out = new Float32Array(M * N);
      for (let i = 0; i < M; i++)
        for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[i * N + n] += get(i, k, n);
      return out;
    };
    const out = new Float32Array(M * N);
    referenceKernels.matmulTransposedB(out, a, w, M, K, N);
    expect(
      maxAbsDiff(
        out,
        naive((i, k, n) => a[i * K + k] * w[n * K + k]),
      ),
    ).toBeLessThan(1e-5);
    referenceKernels.matmul(out, a, b, M, K, N);
    expect(
      maxAbsDiff(
        out,
        naive((i, k, n) => a[i * K + k] * b[k * N + n]),
      ),
    ).toBeLessThan(1e-5);
    referenceKernels.matmulTransposedA(out, at, b, M, K, N);
    expect(
      maxAbsDiff(
        out,
        naive((i, k, n) => at[k * M + i] * b[k * N + n]),
      ),
    ).toBeLessThan(1e-5);
  });
});

describe('Trace', () => {
  it('has the documented tensors with consistent shapes, including cached positions', () => {
    const cache = new KVCache(model.config);
    forward(model, tokens.slice(0, 3), cache, { kernels });
    const { trace } = forward(model, tokens.slice(3, 5), cache, { trace: true, kernels });
    const T = 2;
    const S = 5;
    expect(trace.startPos).toBe(3);
    const { dim, hiddenDim, vocabSize } = model.config;
    const expectedLayer: Record<string, number[]> = {
      input: [T, dim],
      attnNorm: [T, dim],
      q: [T, 4, 8],
      k: [T, 2, 8],
      v: [T, 2, 8],
      qRope: [T, 4, 8],
      kRope: [T, 2, 8],
      scores: [4, T, S],
      mask: [T, S],
      weights: [4, T, S],
      attnOutput: [T, 32],
      attnProjected: [T, dim],
      residualAfterAttn: [T, dim],
      ffnNorm: [T, dim],
      ffnGate: [T, hiddenDim],
      ffnUp: [T, hiddenDim],
      ffnActivation: [T, hiddenDim],
      ffnOutput: [T, dim],
      residualAfterFfn: [T, dim],
    };
    expect(trace.layers).toHaveLength(2);
    for (const layer of trace.layers) {
      expect(Object.keys(layer).sort()).toEqual(Object.keys(expectedLayer).sort());
      for (const [name, shape] of Object.entries(expectedLayer)) {
        const tensor = layer[name as keyof typeof layer];
        expect(tensor.shape, name).toEqual(shape);
        expect(tensor.data.length, name).toBe(shape.reduce((a, b) => a * b, 1));
      }
    }
    expect(trace.logits.shape).toEqual([T, vocabSize]);
    // The residual stream is continuous: each layer's input is the previous layer's output.
    expect(trace.layers[1].input.data).toEqual(trace.layers[0].residualAfterFfn.data);
    expect(trace.layers[0].input.data).toEqual(trace.embeddings.data);
  });

  it('tracing does not change the result', () => {
    const plain = forward(model, tokens, new KVCache(model.config), { kernels }).logits;
    const traced = forward(model, tokens, new KVCache(model.config), { trace: true, kernels });
    expect(traced.logits).toEqual(plain);
    expect(traced.trace.logits.data).toEqual(plain);
  });
});

describe('the engine takes its kernels from the caller', () => {
  it('no file of src/engine (training aside) imports WebAssembly, thread or kernel-selection code', () => {
    const engineFiles = readdirSync('src/engine').filter((name) => name.endsWith('.ts'));
    expect(engineFiles).toContain('forward.ts');
    const allowed = /\/kernels\/(reference|layer-reference)\.ts'$/;
    for (const name of engineFiles) {
      const source = readFileSync(join('src/engine', name), 'utf8');
      for (const [, from] of source.matchAll(/^import [^;]*? from ('[^']+')/gms)) {
        if (from.includes('/kernels/')) expect(from, `src/engine/${name}`).toMatch(allowed);
        expect(from, `src/engine/${name}`).not.toMatch(/wasm|thread|worker/i);
      }
    }
  });

  it('the training code, the loop included, does no Node I/O (a browser worker can run it)', () => {
    const trainFiles = readdirSync('src/engine/train').filter((name) => name.endsWith('.ts'));
    expect(trainFiles).toContain('loop.ts');
    for (const name of trainFiles) {
      const source = readFileSync(join('src/engine/train', name), 'utf8');
      expect(source, `src/engine/train/${name}`).not.toMatch(/from 'node:|require\(|process\./);
    }
  });
});
