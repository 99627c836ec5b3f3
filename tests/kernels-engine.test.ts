/**
 * The engine with the WebAssembly kernels against llama2.c on stories260K: the same oracle logits as the
 * reference kernels (tests/oracle-stories260k.test.ts), through a whole prompt at once (prefill: M = T)
 * and one token at a time with the KV cache (decode: M = 1), with every weight packed once and reused.
 */
import { setFlagsFromString } from 'node:v8';
import { beforeAll, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { argmax } from '../src/engine/ops.ts';
import { loadModel } from '../src/formats/node.ts';
import { wasmKernels } from '../src/kernels/select.ts';
import { wasmVariantSupported, type WasmVariant } from '../src/kernels/wasm.ts';
import { describeShared, readOracleJson, STORIES260K } from './shared.ts';
import { maxAbsDiff } from './helpers.ts';

// Node 20 has relaxed SIMD behind a flag (Node 22 turns it on).
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');

interface OracleStep {
  input_token: number;
  argmax: number;
  logits: number[];
}

describeShared('stories260K with the WebAssembly kernels against llama2.c', () => {
  let model: Model;
  const V = 512;
  const oracle = () => readOracleJson<{ steps: OracleStep[] }>('logits/once_upon_a_time_gen16.json').steps;

  beforeAll(async () => {
    model = await loadModel(STORIES260K);
  });

  for (const variant of ['wasm-relaxed-simd', 'wasm-simd'] as WasmVariant[]) {
    it(`${variant}: logits at every position within 1e-4, argmax exact, prefill and decode`, () => {
      const kernels = wasmKernels(variant);
      if (!kernels) {
        console.warn(`[kernels-engine test] ${variant} unsupported here: skipped`);
        return;
      }
      const steps = oracle();
      const inputs = steps.map((step) => step.input_token);

      const { logits } = forward(model, inputs, new KVCache(model.config), { kernels });
      steps.forEach((step, t) => {
        const row = logits.subarray(t * V, (t + 1) * V);
        expect(maxAbsDiff(row, step.logits)).toBeLessThan(1e-4);
        expect(argmax(row)).toBe(step.argmax);
      });

      const cache = new KVCache(model.config);
      for (const step of steps) {
        const row = forward(model, [step.input_token], cache, { kernels, logits: 'last' }).logits;
        expect(maxAbsDiff(row, step.logits)).toBeLessThan(1e-4);
        expect(argmax(row)).toBe(step.argmax);
      }
    });
  }
});
