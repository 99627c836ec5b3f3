/**
 * Interventions (src/engine/interventions.ts), each held to an independent recomputation in float64 from the
 * clean pass's Trace and the weights, with the readable kernels and the WebAssembly ones alike; the empty list
 * must change no bit.
 */
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { randomModel } from '../src/engine/init.ts';
import { describeIntervention, type Intervention } from '../src/engine/interventions.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { headDim, kvHeadOf, type Model } from '../src/engine/model.ts';
import { referenceKernels, type MatrixKernels } from '../src/kernels/reference.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { loadModel } from '../src/formats/node.ts';
import { maxAbsDiff, smallConfig } from './helpers.ts';
import { haveShared, STORIES260K } from './shared.ts';

const config = smallConfig({ nLayers: 3 });
// Large weights, so attention is far from uniform and every head matters.
const randomLlama = randomModel(config, 11, 0.3);
const tokens = [1, 17, 4, 33, 8, 8, 21, 49, 0, 12, 5];
const T = tokens.length;

const KERNEL_SETS: [string, MatrixKernels][] = [
  ['readable TypeScript', referenceKernels],
  ['WebAssembly', selectKernels('wasm')],
];

function traced(model: Model, kernels: MatrixKernels, interventions?: Intervention[], input = tokens) {
  return forward(model, input, new KVCache(model.config), { kernels, trace: true, interventions }).trace;
}

/** The biggest |x| in an array: tolerances are relative to the size of what is compared. */
const largest = (values: ArrayLike<number>) => Math.max(...Array.from(values, Math.abs));

describe.each(KERNEL_SETS)('interventions with the %s kernels', (_, kernels) => {
  const model = randomLlama;
  const hd = headDim(config);
  const qDim = config.nHeads * hd;
  const clean = traced(model, kernels);

  it('an empty list changes no bit of the logits or of any traced tensor', () => {
    const withEmpty = traced(model, kernels, []);
    expect(withEmpty.logits.data).toEqual(clean.logits.data);
    clean.layers.forEach((layer, l) => {
      for (const [name, tensor] of Object.entries(layer))
        expect(withEmpty.layers[l][name as keyof typeof layer].data, name).toEqual(tensor.data);
    });
    expect(withEmpty.interventions).toEqual([]);
    const untraced = forward(model, tokens, new KVCache(config), { kernels, interventions: [] });
    expect(untraced.logits).toEqual(forward(model, tokens, new KVCache(config), { kernels }).logits);
  });

  it("zero-ablating a head removes exactly that head's slice of attnOutput times its columns of wo", () => {
    const layer = 1;
    const head = 2;
    const ablation: Intervention = { kind: 'ablateHead', layer, head, mode: 'zero' };
    const ablated = traced(model, kernels, [ablation]);
    expect(ablated.interventions).toEqual([ablation]);
    const wo = model.weights.layers[layer].wo.data;
    const cleanLayer = clean.layers[layer];
    const expected = new Float64Array(T * config.dim);
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < config.dim; d++) {
        let headContribution = 0;
        for (let i = head * hd; i < (head + 1) * hd; i++)
          headContribution += cleanLayer.attnOutput.data[t * qDim + i] * wo[d * qDim + i];
        expected[t * config.dim + d] = cleanLayer.attnProjected.data[t * config.dim + d] - headContribution;
      }
    }
    const tolerance = 1e-5 * largest(cleanLayer.attnProjected.data);
    expect(maxAbsDiff(ablated.layers[layer].attnProjected.data, expected)).toBeLessThan(tolerance);
    // The layers before are untouched, and the ablated head's slice is zero at every position.
    expect(ablated.layers[0].residualAfterFfn.data).toEqual(clean.layers[0].residualAfterFfn.data);
    for (let t = 0; t < T; t++)
      for (let i = head * hd; i < (head + 1) * hd; i++)
        expect(ablated.layers[layer].attnOutput.data[t * qDim + i]).toBe(0);
  });

  it("mean-ablating a head gives it its average output (over the pass's positions) everywhere", () => {
    const layer = 0;
    const head = 1;
    const ablated = traced(model, kernels, [{ kind: 'ablateHead', layer, head, mode: 'mean' }]);
    for (let i = head * hd; i < (head + 1) * hd; i++) {
      let mean = 0;
      for (let t = 0; t < T; t++) mean += clean.layers[layer].attnOutput.data[t * qDim + i] / T;
      for (let t = 0; t < T; t++)
        expect(ablated.layers[layer].attnOutput.data[t * qDim + i]).toBeCloseTo(mean, 6);
    }
    // The other heads' slices are as they were.
    for (let t = 0; t < T; t++)
      for (let i = 0; i < head * hd; i++)
        expect(ablated.layers[layer].attnOutput.data[t * qDim + i]).toBe(
          clean.layers[layer].attnOutput.data[t * qDim + i],
        );
  });

  /** Σ_s weights[s] · v[s] for one head in float64, from the clean Trace's values (v has no RoPE). */
  function weightedValues(layer: number, head: number, weights: ArrayLike<number>): Float64Array {
    const kvDim = config.nKvHeads * hd;
    const kvHead = kvHeadOf(head, config.nHeads, config.nKvHeads);
    const out = new Float64Array(hd);
    for (let s = 0; s < weights.length; s++)
      for (let i = 0; i < hd; i++)
        out[i] += weights[s] * clean.layers[layer].v.data[s * kvDim + kvHead * hd + i];
    return out;
  }

  const rowOf = (trace: typeof clean, layer: number, head: number, position: number) =>
    trace.layers[layer].weights.data.subarray((head * T + position) * T, (head * T + position + 1) * T);
  const outputOf = (trace: typeof clean, layer: number, head: number, position: number) =>
    trace.layers[layer].attnOutput.data.subarray(
      position * qDim + head * hd,
      position * qDim + (head + 1) * hd,
    );

  it('"attend only to s" makes the row one-hot and the output the value at s', () => {
    const [layer, head, position, key] = [2, 3, 7, 2];
    const overridden = traced(model, kernels, [
      { kind: 'overrideAttention', layer, head, position, set: [{ key, weight: 1 }], renormalise: true },
    ]);
    const row = rowOf(overridden, layer, head, position);
    expect(Array.from(row)).toEqual(Array.from({ length: T }, (_, s) => (s === key ? 1 : 0)));
    const expected = weightedValues(layer, head, row);
    expect(maxAbsDiff(outputOf(overridden, layer, head, position), expected)).toBeLessThan(1e-6);
    // Every other row of every head, and the other positions' outputs, are the model's own.
    for (let h = 0; h < config.nHeads; h++)
      for (let t = 0; t < T; t++)
        if (h !== head || t !== position)
          expect(rowOf(overridden, layer, h, t)).toEqual(rowOf(clean, layer, h, t));
  });

  it('renormalising shares what is left among the other keys in proportion; without, they stay', () => {
    const [layer, head, position, key] = [1, 0, 9, 4];
    const cleanRow = rowOf(clean, layer, head, position);
    const set = [{ key, weight: 0.5 }];
    const renormalised = rowOf(
      traced(model, kernels, [{ kind: 'overrideAttention', layer, head, position, set, renormalise: true }]),
      layer,
      head,
      position,
    );
    const kept = traced(model, kernels, [
      { kind: 'overrideAttention', layer, head, position, set, renormalise: false },
    ]);
    const keptRow = rowOf(kept, layer, head, position);
    for (let s = 0; s <= position; s++) {
      const expected = s === key ? 0.5 : (cleanRow[s] * 0.5) / (1 - cleanRow[key]);
      expect(renormalised[s]).toBeCloseTo(expected, 6);
      expect(keptRow[s]).toBeCloseTo(s === key ? 0.5 : cleanRow[s], 6);
    }
    expect(renormalised.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    const expected = weightedValues(layer, head, keptRow);
    expect(maxAbsDiff(outputOf(kept, layer, head, position), expected)).toBeLessThan(1e-6);
  });

  it('scaling a neuron scales its activation, and adds (factor − 1) · activation · its column of wDown', () => {
    const [layer, neuron, factor] = [0, 13, 3];
    const positions = [2, 5];
    const scaled = traced(model, kernels, [{ kind: 'scaleNeuron', layer, neuron, factor, positions }]);
    const { hiddenDim, dim } = config;
    const cleanLayer = clean.layers[layer];
    const wDown = model.weights.layers[layer].wDown.data;
    for (let t = 0; t < T; t++) {
      const activation = cleanLayer.ffnActivation.data[t * hiddenDim + neuron];
      const touched = positions.includes(t);
      expect(scaled.layers[layer].ffnActivation.data[t * hiddenDim + neuron]).toBe(
        touched ? Math.fround(activation * factor) : activation,
      );
      for (let d = 0; d < dim; d++) {
        const expected =
          cleanLayer.ffnOutput.data[t * dim + d] +
          (touched ? (factor - 1) * activation * wDown[d * hiddenDim + neuron] : 0);
        expect(scaled.layers[layer].ffnOutput.data[t * dim + d]).toBeCloseTo(expected, 5);
      }
    }
  });

  it("patching every position of a layer's input with another run's gives that run's logits", () => {
    const other = [1, 3, 3, 40, 2, 9, 30, 11, 7, 6, 44];
    const donor = traced(model, kernels, [], other);
    for (const layer of [0, 2, config.nLayers]) {
      const stream =
        layer < config.nLayers
          ? donor.layers[layer].input
          : donor.layers[config.nLayers - 1].residualAfterFfn;
      const patches: Intervention[] = tokens.map((_, position) => ({
        kind: 'patchResidual',
        layer,
        position,
        value: stream.data.slice(position * config.dim, (position + 1) * config.dim),
      }));
      expect(traced(model, kernels, patches).logits.data).toEqual(donor.logits.data);
    }
  });

  it('patching one position leaves the positions before it as they were (causality)', () => {
    const position = 6;
    const patched = traced(model, kernels, [
      { kind: 'patchResidual', layer: 1, position, value: new Float32Array(config.dim).fill(0.5) },
    ]);
    const V = config.vocabSize;
    expect(patched.logits.data.subarray(0, position * V)).toEqual(
      clean.logits.data.subarray(0, position * V),
    );
    expect(
      maxAbsDiff(patched.logits.data.subarray(position * V), clean.logits.data.subarray(position * V)),
    ).toBeGreaterThan(1e-3);
  });

  it('with a KV cache, prefill then decode under the same list equals one pass under it', () => {
    const lists: Intervention[][] = [
      [{ kind: 'ablateHead', layer: 1, head: 0, mode: 'zero' }],
      [{ kind: 'scaleNeuron', layer: 2, neuron: 3, factor: 0 }],
      [
        {
          kind: 'overrideAttention',
          layer: 0,
          head: 1,
          position: T - 1,
          set: [{ key: 0, weight: 1 }],
          renormalise: true,
        },
      ],
    ];
    for (const interventions of lists) {
      const whole = forward(model, tokens, new KVCache(config), { kernels, interventions }).logits;
      const cache = new KVCache(config);
      forward(model, tokens.slice(0, -1), cache, { kernels, interventions });
      const last = forward(model, tokens.slice(-1), cache, { kernels, interventions }).logits;
      const V = config.vocabSize;
      expect(maxAbsDiff(last, whole.subarray((T - 1) * V))).toBeLessThan(1e-5);
    }
  });
});

describe('the readable and the fast kernels intervene alike', () => {
  it('gives the same logits within float32 rounding for every kind', () => {
    const list: Intervention[] = [
      { kind: 'ablateHead', layer: 0, head: 3, mode: 'mean' },
      {
        kind: 'overrideAttention',
        layer: 1,
        head: 2,
        position: 5,
        set: [{ key: 1, weight: 0.7 }],
        renormalise: true,
      },
      { kind: 'scaleNeuron', layer: 2, neuron: 40, factor: -2 },
      { kind: 'patchResidual', layer: 1, position: 3, value: new Float32Array(config.dim).fill(-0.25) },
    ];
    const readable = traced(randomLlama, referenceKernels, list).logits.data;
    const fast = traced(randomLlama, selectKernels('wasm'), list).logits.data;
    expect(maxAbsDiff(readable, fast)).toBeLessThan(1e-4 * largest(readable));
  });
});

describe('a bad intervention gets one specific message', () => {
  const cases: [Intervention, RegExp][] = [
    [
      { kind: 'ablateHead', layer: 3, head: 0, mode: 'zero' },
      /intervention 0 \(ablateHead\) names layer 3, but the model has layers 0…2/,
    ],
    [{ kind: 'ablateHead', layer: 0, head: 4, mode: 'zero' }, /names head 4, but the model has heads 0…3/],
    [
      { kind: 'scaleNeuron', layer: 0, neuron: 56, factor: 2 },
      /names neuron 56, but the model has neurons 0…55/,
    ],
    [{ kind: 'scaleNeuron', layer: 0, neuron: 1, factor: NaN }, /factor NaN; it must be finite/],
    [
      { kind: 'patchResidual', layer: 4, position: 0, value: new Float32Array(32) },
      /names layer 4, but the model has layers 0…3/,
    ],
    [
      { kind: 'patchResidual', layer: 0, position: 0, value: new Float32Array(8) },
      /value of 8 numbers; the stream is 32 wide/,
    ],
    [
      {
        kind: 'overrideAttention',
        layer: 0,
        head: 0,
        position: 3,
        set: [{ key: 4, weight: 1 }],
        renormalise: true,
      },
      /sets key 4, but position 3 sees keys 0…3/,
    ],
    [
      {
        kind: 'overrideAttention',
        layer: 0,
        head: 0,
        position: 3,
        set: [
          { key: 0, weight: 0.8 },
          { key: 1, weight: 0.7 },
        ],
        renormalise: true,
      },
      /weights summing to 1.5/,
    ],
  ];
  it.each(cases.map(([intervention, message]) => [message.source, intervention, message] as const))(
    'says %s',
    (_, intervention, message) => {
      expect(() =>
        forward(randomLlama, tokens, new KVCache(config), {
          kernels: referenceKernels,
          interventions: [intervention],
        }),
      ).toThrow(message);
    },
  );
});

describe.skipIf(!haveShared)('on stories260K (a real model) with the default kernels', () => {
  it("ablating each head of layer 2 removes exactly its slice times wo's columns", async () => {
    const model = await loadModel(STORIES260K);
    const kernels = selectKernels('auto');
    const input = [1, 403, 407, 261, 378, 308, 431, 261, 281, 260];
    const clean = traced(model, kernels, [], input);
    const { dim, nHeads } = model.config;
    const hd = headDim(model.config);
    const qDim = nHeads * hd;
    const layer = 2;
    const wo = model.weights.layers[layer].wo.data;
    for (let head = 0; head < nHeads; head++) {
      const ablated = traced(model, kernels, [{ kind: 'ablateHead', layer, head, mode: 'zero' }], input);
      let worst = 0;
      for (let t = 0; t < input.length; t++) {
        for (let d = 0; d < dim; d++) {
          let headContribution = 0;
          for (let i = head * hd; i < (head + 1) * hd; i++)
            headContribution += clean.layers[layer].attnOutput.data[t * qDim + i] * wo[d * qDim + i];
          const expected = clean.layers[layer].attnProjected.data[t * dim + d] - headContribution;
          worst = Math.max(worst, Math.abs(ablated.layers[layer].attnProjected.data[t * dim + d] - expected));
        }
      }
      expect(worst).toBeLessThan(1e-5 * largest(clean.layers[layer].attnProjected.data));
    }
  });
});

describe('describeIntervention', () => {
  it('says what each kind changes in one line', () => {
    expect(describeIntervention({ kind: 'ablateHead', layer: 1, head: 2, mode: 'zero' })).toBe(
      'head 2 of layer 1 zeroed',
    );
    expect(
      describeIntervention({ kind: 'scaleNeuron', layer: 0, neuron: 7, factor: 0, positions: [3] }),
    ).toBe('neuron 7 of layer 0 ×0 at position 3');
    expect(
      describeIntervention({
        kind: 'overrideAttention',
        layer: 2,
        head: 0,
        position: 5,
        set: [{ key: 1, weight: 1 }],
        renormalise: true,
      }),
    ).toBe('head 0 of layer 2: position 5 attends with 1 on position 1, the rest rescaled to sum to 1');
    expect(
      describeIntervention({ kind: 'patchResidual', layer: 3, position: 4, value: new Float32Array(1) }),
    ).toBe('the stream entering layer 3 at position 4 patched from another run');
    const last = { kind: 'patchResidual', layer: 4, position: 0, value: new Float32Array(1) } as const;
    expect(describeIntervention(last, 4)).toBe(
      'the stream after the last layer at position 0 patched from another run',
    );
    expect(describeIntervention(last, 6)).toMatch(/^the stream entering layer 4 /);
  });
});
