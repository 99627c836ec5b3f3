/**
 * The shipped house model (models/house): it loads, its validation perplexity recomputed here matches the
 * model card within 1%, and it generates.
 */
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { readTrainingText } from '../src/cli/text-input.ts';
import { houseValidationLoss } from '../src/cli/train/evaluate.ts';
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
    const text = await readTrainingText(resolve(import.meta.dirname, '..', summary.settings.input));
    const perplexity = Math.exp(houseValidationLoss(model, tokenizer, text, summary.settings));
    expect(Math.abs(perplexity - stated) / stated).toBeLessThan(0.01);
  }, 120_000);

  it('glassbox generate --model models/house writes text', async () => {
    const result = await runCli([
      'generate',
      '--model',
      HOUSE,
      '--prompt',
      'In the beginning',
      '--temperature',
      '0',
      '--steps',
      '24',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout.toString().startsWith('In the beginning')).toBe(true);
    expect(result.stdout.length).toBeGreaterThan('In the beginning'.length + 10);
  });
});
