/**
 * `glassbox perplexity` and src/analysis/perplexity.ts: the mean negative log-likelihood of a text, window by
 * window, against a float64 log-softmax of the engine's logits computed here, and the command's errors.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { perplexity } from '../src/analysis/perplexity.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import { runCli } from './cli-helpers.ts';
import { defaultKernels, loadModelFolder } from './helpers.ts';

const { model, tokenizer } = loadModelFolder('models/house');
const kernels = defaultKernels();
const folder = mkdtempSync(join(tmpdir(), 'glassbox-perplexity-'));

/** −ln p(next | window so far) for every token of one window [BOS, …], in float64 from the engine's logits. */
function windowNll(m: Model, window: number[]): number[] {
  const { logits } = forward(m, window, new KVCache(m.config), { kernels });
  const V = m.config.vocabSize;
  const nll = [];
  for (let t = 0; t + 1 < window.length; t++) {
    const row = Array.from(logits.subarray(t * V, (t + 1) * V));
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((sum, z) => sum + Math.exp(z - max), 0)) + max;
    nll.push(logSum - row[window[t + 1]]);
  }
  return nll;
}

describe('perplexity', () => {
  it('equals the mean of −ln p over every token, window by window (a text longer than the context)', () => {
    const text = 'And God said, Let there be light: and there was light. '.repeat(80);
    const tokens = tokenizer.encode(text, { bos: false, eos: false });
    const perWindow = model.config.seqLen - 1;
    expect(tokens.length).toBeGreaterThan(2 * perWindow); // at least three windows
    const expected: number[] = [];
    for (let start = 0; start < tokens.length; start += perWindow)
      expected.push(...windowNll(model, [tokenizer.bosId, ...tokens.slice(start, start + perWindow)]));
    const result = perplexity(model, tokens, tokenizer.bosId, kernels);
    const meanNll = expected.reduce((a, b) => a + b, 0) / expected.length;
    expect(result.tokens).toBe(tokens.length);
    expect(result.windows).toBe(Math.ceil(tokens.length / perWindow));
    expect(result.nll).toBeCloseTo(meanNll, 5);
    expect(result.perplexity).toBeCloseTo(Math.exp(meanNll), 3);
    // Better than guessing uniformly among the 4096 tokens, worse than certainty.
    expect(result.perplexity).toBeGreaterThan(1);
    expect(result.perplexity).toBeLessThan(model.config.vocabSize);
  });

  it('prints the JSON the README documents, and the same numbers in words', async () => {
    const path = join(folder, 'genesis.txt');
    writeFileSync(path, 'In the beginning God created the heavens and the earth.\n');
    const json = await runCli(['perplexity', '--model', 'models/house', '--text', path, '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout.toString());
    expect(Object.keys(parsed)).toEqual(['tokens', 'nll', 'perplexity']);
    const tokens = tokenizer.encode('In the beginning God created the heavens and the earth.\n', {
      bos: false,
      eos: false,
    });
    const nll = windowNll(model, [tokenizer.bosId, ...tokens]);
    expect(parsed.tokens).toBe(tokens.length);
    expect(parsed.nll).toBeCloseTo(nll.reduce((a, b) => a + b, 0) / nll.length, 5);
    expect(parsed.perplexity).toBeCloseTo(Math.exp(parsed.nll), 9);
    const words = await runCli(['perplexity', '--model', 'models/house', '--text', path]);
    expect(words.stdout.toString()).toMatch(
      new RegExp(
        `^perplexity ${parsed.perplexity.toFixed(3)}: mean negative log-likelihood .* over ${tokens.length} tokens \\(1 windows? of up to ${model.config.seqLen} positions\\)`,
      ),
    );
  });

  it('a missing --text, a missing file or an empty one gets one line', async () => {
    const missing = await runCli(['perplexity', '--model', 'models/house']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^glassbox: --text FILE is required for perplexity/);
    const absent = await runCli([
      'perplexity',
      '--model',
      'models/house',
      '--text',
      join(folder, 'nope.txt'),
    ]);
    expect(absent.code).toBe(1);
    expect(absent.stderr).toMatch(/nope\.txt: no such file\n$/);
  });
});
