/**
 * stories260K through GGUF: `glassbox quantize` writes it (from the llama2.c .bin and from the Hugging Face copy,
 * whose q/k rows must be permuted back to GGUF's interleaved RoPE order), and the file gives llama2.c's logits.
 * When python3 has the `gguf` package, llama.cpp's own reader checks the file too; otherwise that test skips and
 * says so (tests/gguf.test.ts still checks committed files the package read).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { argmax } from '../src/engine/ops.ts';
import { dequantize } from '../src/engine/quant.ts';
import { parseGguf } from '../src/formats/gguf.ts';
import { loadModel } from '../src/formats/node.ts';
import { selectKernels } from '../src/kernels/select.ts';
import { runCli } from './cli-helpers.ts';
import { maxAbsDiff } from './helpers.ts';
import { describeShared, readOracleJson, STORIES260K, STORIES260K_HF, TOK512 } from './shared.ts';

const kernels = selectKernels('auto');

interface OracleStep {
  input_token: number;
  argmax: number;
  logits: number[];
}

function pythonHasGguf(): boolean {
  const result = spawnSync('python3', ['-c', 'import gguf'], { stdio: 'ignore' });
  return result.status === 0;
}

describeShared('stories260K as GGUF', () => {
  let folder: string;
  const path = (name: string) => join(folder, name);
  const quantize = (...args: string[]) => runCli(['quantize', ...args]);

  beforeAll(() => {
    folder = mkdtempSync(join(tmpdir(), 'glassbox-gguf-'));
  });
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  const oracle = () => readOracleJson<{ steps: OracleStep[] }>('logits/once_upon_a_time_gen16.json').steps;

  for (const [label, source] of [
    ['the llama2.c .bin', [STORIES260K, '--tokenizer', TOK512]],
    ['the Hugging Face copy (rotate-half q/k, permuted back)', [STORIES260K_HF, '--tokenizer', TOK512]],
  ] as const) {
    it(`f32 GGUF written from ${label} gives llama2.c's logits within 1e-4 at every position`, async () => {
      const out = path(`from-${label.length}.gguf`);
      const result = await quantize('--model', source[0], source[1], source[2], '--to', 'f32', '--out', out);
      expect(result.stderr).toMatch(
        /^wrote .*: [\d,]+ bytes; the weights take 1,040,128 bytes, 100\.0% of their/m,
      );
      expect(result.code).toBe(0);
      const model = await loadModel(out);
      expect(model.config.ropeLayout).toBe('interleaved');
      const steps = oracle();
      const { logits } = forward(
        model,
        steps.map((s) => s.input_token),
        new KVCache(model.config),
        { kernels },
      );
      steps.forEach((step, t) => {
        const row = logits.subarray(t * 512, (t + 1) * 512);
        expect(maxAbsDiff(row, step.logits)).toBeLessThan(1e-4);
        expect(argmax(row)).toBe(step.argmax);
      });
    });
  }

  it('q8_0: ffn_down (rows of 172) kept at f16 and named; a third of the size; the same greedy story', async () => {
    const out = path('stories260K-q8_0.gguf');
    const result = await quantize(
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--to',
      'q8_0',
      '--out',
      out,
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain(
      'kept at f16 (rows not whole q8_0 blocks of 32): blk.0.ffn_down.weight, blk.1.ffn_down.weight, ' +
        'blk.2.ffn_down.weight, blk.3.ffn_down.weight, blk.4.ffn_down.weight',
    );
    expect(statSync(out).size).toBeLessThan(statSync(STORIES260K).size / 2.5);
    const types = new Map([...parseGguf(readFileSync(out), out).tensors].map(([name, t]) => [name, t.type]));
    expect(types.get('blk.0.ffn_down.weight')).toBe('f16');
    expect(types.get('blk.0.attn_q.weight')).toBe('q8_0');
    expect(types.get('blk.0.attn_norm.weight')).toBe('f32');
    expect(types.has('output.weight')).toBe(false); // tied: the embedding table is the classifier
    // generate takes the .gguf alone: the tokenizer is in the file.
    const fromGguf = await runCli(['generate', '--model', out, '--temperature', '0', '--steps', '60']);
    const fromBin = await runCli([
      'generate',
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--temperature',
      '0',
      '--steps',
      '60',
    ]);
    expect(fromGguf.code).toBe(0);
    expect(fromGguf.stdout.toString()).toBe(fromBin.stdout.toString());
    const trace = await runCli(['trace', '--model', out, '--prompt', 'Once upon a time', '--json']);
    const { prompt_tokens: promptTokens } = readOracleJson<{ prompt_tokens: number[] }>(
      'logits/once_upon_a_time_gen16.json',
    );
    expect(JSON.parse(trace.stdout.toString()).tokens).toEqual(promptTokens);
  });

  it('refuses an unknown type and an existing output without --force, each in one line; --force replaces atomically', async () => {
    const out = path('twice.gguf');
    const unknown = await quantize(
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--to',
      'q5_k',
      '--out',
      out,
    );
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.split('\n')[0]).toBe(
      'glassbox: --to q5_k is not a type glassbox writes: choose one of q8_0, q4_0, q4_1, f16, bf16, f32',
    );
    writeFileSync(out, 'old');
    const existing = await quantize(
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--to',
      'q4_0',
      '--out',
      out,
    );
    expect(existing.code).toBe(1);
    expect(existing.stderr).toBe(`glassbox: ${out}: already exists: add --force to replace it\n`);
    expect(readFileSync(out, 'utf8')).toBe('old');
    const forced = await quantize(
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--to',
      'q4_0',
      '--out',
      out,
      '--force',
    );
    expect(forced.code).toBe(0);
    expect(readFileSync(out).subarray(0, 4).toString()).toBe('GGUF');
    expect(readdirSync(folder).filter((name) => name.includes('.tmp-'))).toEqual([]);
    const notGguf = await quantize('--model', STORIES260K, '--to', 'q4_0', '--out', path('x.bin'));
    expect(notGguf.stderr.split('\n')[0]).toBe(`glassbox: --out ${path('x.bin')} must name a .gguf file`);
  });

  it('the gguf package reads what glassbox writes: every tensor dequantizes to our values (python3)', async (context) => {
    if (!pythonHasGguf()) {
      context.skip(
        'python3 with the gguf package is not available (pip install gguf); tests/gguf.test.ts checks committed files instead',
      );
    }
    const out = path('for-python.gguf');
    expect(
      (await quantize('--model', STORIES260K, '--tokenizer', TOK512, '--to', 'q4_1', '--out', out)).code,
    ).toBe(0);
    const script = `
import sys, json, hashlib, numpy as np, gguf
r = gguf.GGUFReader(sys.argv[1])
print(json.dumps({
  "tokens": len(r.fields["tokenizer.ggml.tokens"].contents()),
  "model": r.fields["tokenizer.ggml.model"].contents(),
  "tensors": {t.name: [t.tensor_type.name, hashlib.sha256(np.ascontiguousarray(
      gguf.quants.dequantize(t.data, t.tensor_type), dtype="<f4").tobytes()).hexdigest()] for t in r.tensors}}))`;
    const seen = JSON.parse(execFileSync('python3', ['-c', script, out], { encoding: 'utf8' }));
    expect(seen.tokens).toBe(512);
    expect(seen.model).toBe('llama');
    const ours = parseGguf(readFileSync(out), out);
    expect(Object.keys(seen.tensors)).toEqual([...ours.tensors.keys()]);
    for (const [name, tensor] of ours.tensors) {
      const values = dequantize(tensor);
      const hash = createHash('sha256').update(new Uint8Array(values.buffer)).digest('hex');
      expect(seen.tensors[name]).toEqual([tensor.type.toUpperCase(), hash]);
    }
  });
});
