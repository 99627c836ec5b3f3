/**
 * The shipped house model (models/house): it loads, its validation perplexity recomputed here matches the
 * model card within 1%, and `glassbox generate` continues a prompt with the engine's own greedy choice.
 */
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { readTextFile } from '../src/cli/text-input.ts';
import { houseValidationLoss } from '../src/cli/train/evaluate.ts';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { argmax } from '../src/engine/ops.ts';
import { tsKernels } from '../src/kernels/select.ts';
import { runCli } from './cli-helpers.ts';

const HOUSE = resolve(import.meta.dirname, '..', 'models', 'house');
const present = existsSync(join(HOUSE, 'model.safetensors'));
if (!present) console.warn(`[glassbox tests] ${HOUSE} has no model yet: skipping the house-model checks`);
const describeHouse = present ? describe : describe.skip;

describeHouse('the house model', () => {
  it('ships everything the card promises, in at most 20 MB', () => {
    for (const file of [
      'model.safetensors',
      'config.json',
      'tokenizer.json',
      'train-log.jsonl',
      'loss.svg',
      'MODEL_CARD.md',
    ]) {
      expect(existsSync(join(HOUSE, file)), file).toBe(true);
    }
    const bytes = readdirSync(HOUSE).reduce((sum, file) => sum + statSync(join(HOUSE, file)).size, 0);
    expect(bytes).toBeLessThanOrEqual(20 * 1024 * 1024);
  });

  it('has the validation perplexity its model card states (recomputed, within 1%)', async () => {
    const card = readFileSync(join(HOUSE, 'MODEL_CARD.md'), 'utf8');
    const stated = Number(/validation perplexity: (\d+\.\d+)/.exec(card)?.[1]);
    expect(stated).toBeGreaterThan(1);
    const summary = JSON.parse(readFileSync(join(HOUSE, 'training.json'), 'utf8'));
    const { model, tokenizer } = await loadModelAndTokenizer(HOUSE);
    const text = await readTextFile(resolve(import.meta.dirname, '..', summary.settings.input));
    const perplexity = Math.exp(houseValidationLoss(model, tokenizer, text, summary.settings));
    expect(Math.abs(perplexity - stated) / stated).toBeLessThan(0.01);
  }, 120_000);

  it("glassbox generate --model models/house at temperature 0 writes the engine's greedy continuation", async () => {
    const prompt = 'In the beginning';
    const steps = 24;
    const result = await runCli([
      'generate',
      '--model',
      HOUSE,
      '--prompt',
      prompt,
      '--temperature',
      '0',
      '--steps',
      String(steps),
      '--kernels',
      'ts',
    ]);
    expect(result.code).toBe(0);

    // Independently of the CLI's loop and its KV cache: a whole forward pass over the text so far at every
    // position, taking the most likely token, until `steps` positions are filled or BOS/EOS comes next.
    const { model, tokenizer } = await loadModelAndTokenizer(HOUSE);
    const tokens = tokenizer.encode(prompt, { bos: true, eos: false });
    const promptLength = tokens.length;
    while (tokens.length <= steps) {
      const { logits } = forward(model, tokens, new KVCache(model.config), {
        logits: 'last',
        kernels: tsKernels,
      });
      const next = argmax(logits);
      if (next === tokenizer.bosId || next === tokenizer.eosId) break;
      tokens.push(next);
    }
    expect(tokens.length).toBeGreaterThan(promptLength + 10);
    expect(result.stdout.toString()).toBe(tokenizer.decode(tokens.slice(1)) + '\n');
  });
});
