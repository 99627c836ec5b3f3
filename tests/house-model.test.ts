/**
 * The shipped house model (models/house): it loads, its validation perplexity recomputed here matches the
 * model card within 1% (overall and for each source), its checkpoints for the time-machine are what their
 * index says, and `glassbox generate` continues a prompt with the engine's own greedy choice.
 */
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
import { readTextFile } from '../src/cli/text-input.ts';
import { validationLossBySource } from '../src/cli/train/evaluate.ts';
import { inputPaths, snapshotSteps, sourceName } from '../src/cli/train/run.ts';
import { parseGgufLlama } from '../src/formats/gguf-llama.ts';
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
  it('ships everything the card promises, the model in at most 10 MB and its checkpoints in at most 20 MB', () => {
    for (const file of [
      'model.safetensors',
      'config.json',
      'tokenizer.json',
      'train-log.jsonl',
      'loss.svg',
      'MODEL_CARD.md',
      'checkpoints/index.json',
    ]) {
      expect(existsSync(join(HOUSE, file)), file).toBe(true);
    }
    const bytes = (folder: string) =>
      readdirSync(folder).reduce((sum, file) => sum + statSync(join(folder, file)).size, 0);
    expect(bytes(HOUSE) - statSync(join(HOUSE, 'checkpoints')).size).toBeLessThanOrEqual(10 * 1024 * 1024);
    expect(bytes(join(HOUSE, 'checkpoints'))).toBeLessThanOrEqual(20 * 1024 * 1024);
  });

  it('has the validation perplexity its model card states, overall and per source (recomputed, within 1%)', async () => {
    const card = readFileSync(join(HOUSE, 'MODEL_CARD.md'), 'utf8');
    const stated = Number(/validation perplexity: (\d+\.\d+)/.exec(card)?.[1]);
    expect(stated).toBeGreaterThan(1);
    const summary = JSON.parse(readFileSync(join(HOUSE, 'training.json'), 'utf8'));
    const { model, tokenizer } = await loadModelAndTokenizer(HOUSE);
    const sources = await Promise.all(
      inputPaths(summary.settings).map(async (path) => ({
        name: sourceName(path),
        text: await readTextFile(resolve(import.meta.dirname, '..', path)),
      })),
    );
    expect(sources.map((source) => source.name)).toEqual(['web', 'brown']);
    const { bySource, all } = validationLossBySource(model, tokenizer, sources, summary.settings);
    expect(Math.abs(Math.exp(all) - stated) / stated).toBeLessThan(0.01);
    // The card's table: "| World English Bible | 58,229 | 3.1234 | 22.735 |".
    for (const [name, title] of [
      ['web', 'World English Bible'],
      ['brown', 'Brown corpus'],
    ]) {
      const row = new RegExp(`\\| ${title} \\| [\\d,]+ \\| \\d+\\.\\d+ \\| (\\d+\\.\\d+) \\|`).exec(card);
      const perSource = Number(row?.[1]);
      expect(Math.abs(Math.exp(bySource[name]) - perSource) / perSource, name).toBeLessThan(0.01);
    }
  }, 240_000);

  it('keeps its checkpoints as its index says: log-spaced steps, Q8_0 GGUF files of the house configuration', async () => {
    const index = JSON.parse(readFileSync(join(HOUSE, 'checkpoints', 'index.json'), 'utf8')) as {
      steps: { step: number; file: string | null; bytes: number }[];
      restarts?: number[];
    };
    const summary = JSON.parse(readFileSync(join(HOUSE, 'training.json'), 'utf8'));
    const { model } = await loadModelAndTokenizer(HOUSE);
    const steps = index.steps.map((entry) => entry.step);
    expect(steps[0]).toBe(0);
    expect(steps.at(-1)).toBe(summary.stepsDone);
    expect(steps.length).toBeGreaterThanOrEqual(10);
    // Each leg of the run (a resumed run's legs end where the next one's learning rate rose again) kept the
    // snapshots its own schedule spaced out: log-spaced up to that leg's last step, after the leg before.
    const legEnds = [...(index.restarts ?? []).map((restart) => restart - 1), summary.stepsDone];
    const expected = legEnds.flatMap((end, leg) =>
      snapshotSteps(summary.settings.snapshots, end).filter((step) => leg === 0 || step > legEnds[leg - 1]),
    );
    expect(steps).toEqual([0, ...expected]);
    for (const entry of index.steps.slice(1, -1)) {
      const bytes = readFileSync(join(HOUSE, 'checkpoints', entry.file!));
      expect(bytes.length, entry.file!).toBe(entry.bytes);
      const { model: checkpoint, gguf } = parseGgufLlama(new Uint8Array(bytes), entry.file!);
      expect(checkpoint.config.dim).toBe(model.config.dim);
      expect(checkpoint.config.nLayers).toBe(model.config.nLayers);
      expect(checkpoint.config.seqLen).toBe(model.config.seqLen);
      expect(gguf.tensors.get('blk.0.attn_q.weight')?.type).toBe('q8_0');
    }
  });

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
