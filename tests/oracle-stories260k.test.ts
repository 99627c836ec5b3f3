/**
 * The engine against llama2.c on stories260K: generated text byte for byte, logits at every position,
 * the Hugging Face copy of the same model, and a float64 reference of the per-layer activations.
 * Oracle files come from ../shared/oracle/stories260K (see its `source` fields); none was produced by this code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { selectKernels } from '../src/kernels/select.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { argmax } from '../src/engine/ops.ts';
import { loadModel } from '../src/formats/node.ts';
import { loadTokenizer } from '../src/cli/load.ts';
import type { Tokenizer } from '../src/tokenizers/tokenizer.ts';
import { runCli } from './cli-helpers.ts';
import { describeShared, ORACLE, readOracleJson, STORIES260K, STORIES260K_HF, TOK512 } from './shared.ts';
import { maxAbsDiff } from './helpers.ts';

// The fastest kernels this runtime has, as the CLI and the course choose by default.
const kernels = selectKernels('auto');

interface OracleStep {
  pos: number;
  input_token: number;
  argmax?: number;
  next_token?: number;
  logits: number[];
}

describeShared('stories260K against llama2.c', () => {
  let model: Model;
  let hfModel: Model;
  let tokenizer: Tokenizer;
  const V = 512;

  beforeAll(async () => {
    model = await loadModel(STORIES260K);
    hfModel = await loadModel(STORIES260K_HF);
    tokenizer = await loadTokenizer(TOK512, model.config.vocabSize);
  });

  const runc = (name: string) => readFileSync(join(ORACLE, 'runc', name));
  // Both the readable TypeScript kernels and the WebAssembly SIMD ones must reproduce llama2.c's output.
  for (const kernelName of ['ts', 'wasm']) {
    const generate = (...args: string[]) =>
      runCli(['generate', '--model', STORIES260K, '--tokenizer', TOK512, '--kernels', kernelName, ...args]);

    it(`[${kernelName}] greedy, no prompt, 256 steps: stdout is byte-identical to run -t 0 -n 256`, async () => {
      const result = await generate('--temperature', '0', '--steps', '256');
      expect(result.code).toBe(0);
      expect(result.stdout.equals(runc('greedy_noprompt_n256.txt'))).toBe(true);
      expect(result.stderr).toMatch(new RegExp(`^achieved tok/s: \\d+\\.\\d{6} \\(kernels: ${kernelName}`));
    });

    it(`[${kernelName}] sampling -t 1.0 -p 0.9 -s 133742 -n 256: the same tokens, byte for byte`, async () => {
      const result = await generate(
        '--temperature',
        '1.0',
        '--top-p',
        '0.9',
        '--seed',
        '133742',
        '--steps',
        '256',
      );
      expect(result.stdout.equals(runc('sample_t1_p0.9_s133742_n256.txt'))).toBe(true);
    });

    it(`[${kernelName}] -t 0 -n 200 (llama2.c's test_all expectation, stored without run's final newline)`, async () => {
      const result = await generate('--temperature', '0', '--steps', '200');
      const expected = Buffer.concat([runc('test_all_expected_stdout.txt'), Buffer.from('\n')]);
      expect(result.stdout.equals(expected)).toBe(true);
    });
  }

  it('logits at every position of "Once upon a time" + 16 greedy tokens within 1e-4; argmax exact', () => {
    const oracle = readOracleJson<{ prompt: string; prompt_tokens: number[]; steps: OracleStep[] }>(
      'logits/once_upon_a_time_gen16.json',
    );
    expect(tokenizer.encode(oracle.prompt, { bos: true, eos: false })).toEqual(oracle.prompt_tokens);
    const inputs = oracle.steps.map((s) => s.input_token);
    const { logits } = forward(model, inputs, new KVCache(model.config), { kernels });
    oracle.steps.forEach((step, t) => {
      const row = logits.subarray(t * V, (t + 1) * V);
      expect(maxAbsDiff(row, step.logits)).toBeLessThan(1e-4);
      expect(argmax(row)).toBe(step.argmax);
    });
    // Greedy continuation: after the prompt, each input is the previous position's argmax.
    for (let t = oracle.prompt_tokens.length; t < inputs.length; t++) {
      expect(inputs[t]).toBe(argmax(logits.subarray((t - 1) * V, t * V)));
    }
  });

  it('first_step_logits.json: first and last prompt step within 1e-4, greedy continuation exact', () => {
    const oracle = readOracleJson<{
      prompt_tokens: number[];
      first_step: OracleStep;
      last_prompt_step: OracleStep;
      greedy_continuation_tokens: number[];
    }>('first_step_logits.json');
    const cache = new KVCache(model.config);
    const { logits } = forward(model, oracle.prompt_tokens, cache, { kernels });
    const last = oracle.prompt_tokens.length - 1;
    expect(maxAbsDiff(logits.subarray(0, V), oracle.first_step.logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(logits.subarray(last * V), oracle.last_prompt_step.logits)).toBeLessThan(1e-4);
    expect(argmax(logits.subarray(last * V))).toBe(oracle.last_prompt_step.argmax);

    // Decode greedily with the KV cache, one token at a time.
    const continuation: number[] = [];
    let next = argmax(logits.subarray(last * V));
    for (let i = 0; i < oracle.greedy_continuation_tokens.length; i++) {
      continuation.push(next);
      next = argmax(forward(model, [next], cache, { kernels }).logits);
    }
    expect(continuation).toEqual(oracle.greedy_continuation_tokens);
  });

  it('the Hugging Face layout (rotate-half RoPE) gives the .bin logits within 1e-4 at every position', () => {
    expect(hfModel.config.ropeLayout).toBe('half');
    expect(model.config.ropeLayout).toBe('interleaved');
    const oracle = readOracleJson<{ steps: OracleStep[] }>('logits/once_upon_a_time_gen16.json');
    const inputs = oracle.steps.map((s) => s.input_token);
    const fromBin = forward(model, inputs, new KVCache(model.config), { kernels }).logits;
    const fromHf = forward(hfModel, inputs, new KVCache(hfModel.config), { kernels }).logits;
    expect(maxAbsDiff(fromHf, fromBin)).toBeLessThan(1e-4);
    oracle.steps.forEach((step, t) => {
      expect(maxAbsDiff(fromHf.subarray(t * V, (t + 1) * V), step.logits)).toBeLessThan(1e-4);
    });
  });

  it('the Trace matches an independent float64 implementation layer by layer', () => {
    interface ReferenceStep {
      pos: number;
      trace: Record<string, number[] | number[][]>;
    }
    const reference = readOracleJson<{ tokens: number[]; steps: ReferenceStep[] }>(
      'logits/once_upon_a_time_trace_numpy_f64.json',
    );
    const { trace } = forward(model, reference.tokens, new KVCache(model.config), { trace: true, kernels });
    const dim = model.config.dim;
    const row = (data: Float32Array, t: number) => data.subarray(t * dim, (t + 1) * dim);
    reference.steps.forEach((step, t) => {
      expect(maxAbsDiff(row(trace.embeddings.data, t), step.trace.embedding as number[])).toBeLessThan(1e-6);
      trace.layers.forEach((layer, l) => {
        const after = (name: string) => step.trace[`layer${l}.${name}`] as number[];
        expect(maxAbsDiff(row(layer.residualAfterAttn.data, t), after('after_attn_residual'))).toBeLessThan(
          1e-4,
        );
        expect(maxAbsDiff(row(layer.residualAfterFfn.data, t), after('after_ffn_residual'))).toBeLessThan(
          1e-4,
        );
        // attn_probs: [head][position ≤ t]; ours: weights [H, T, S].
        const probs = step.trace[`layer${l}.attn_probs`] as number[][];
        const [H, T, S] = layer.weights.shape;
        expect(probs).toHaveLength(H);
        probs.forEach((headProbs, h) => {
          const ours = layer.weights.data.subarray((h * T + t) * S, (h * T + t) * S + headProbs.length);
          expect(maxAbsDiff(ours, headProbs)).toBeLessThan(1e-5);
        });
      });
      expect(maxAbsDiff(row(trace.finalNorm.data, t), step.trace.final_norm as number[])).toBeLessThan(1e-4);
    });
  });

  it("glassbox trace --json prints tokens, pieces and every position's logits; --all the whole Trace", async () => {
    const oracle = readOracleJson<{ prompt_tokens: number[]; prompt_pieces: string[]; steps: OracleStep[] }>(
      'logits/once_upon_a_time_gen16.json',
    );
    const base = [
      'trace',
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--prompt',
      'Once upon a time',
      '--json',
    ];
    const result = await runCli(base);
    expect(result.code).toBe(0);
    const json = JSON.parse(result.stdout.toString('utf8'));
    expect(json.tokens).toEqual(oracle.prompt_tokens);
    expect(json.pieces.slice(1)).toEqual(oracle.prompt_pieces.slice(1));
    expect(json.logits).toHaveLength(oracle.prompt_tokens.length);
    json.logits.forEach((row: number[], t: number) => {
      expect(row).toHaveLength(V);
      expect(maxAbsDiff(row, oracle.steps[t].logits)).toBeLessThan(1e-4);
    });
    expect(json.trace).toBeUndefined();

    const all = JSON.parse((await runCli([...base, '--all'])).stdout.toString('utf8'));
    expect(all.trace.layers).toHaveLength(5);
    expect(all.trace.layers[0].weights.shape).toEqual([8, 5, 5]);
    expect(all.trace.layers[0].scores.data[1]).toBeNull(); // head 0, query 0, key 1: masked (−∞)
    expect(all.trace.layers[4].ffnActivation.shape).toEqual([5, 172]);
  });
});
