/**
 * `glassbox inspect heads` and `inspect ablate`: the JSON holds the numbers a plain recomputation from a Node
 * Trace gives (loops over the weights, the earlier occurrence found by search, each ablated pass run whole
 * with a textbook log-softmax, the cache bytes by hand), and bad options are one line plus the usage (exit 2).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { forward } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import { runCli } from './cli-helpers.ts';
import { defaultKernels, loadModelFolder } from './helpers.ts';
import { describeShared, STORIES260K, TOK512 } from './shared.ts';

const HOUSE = join(import.meta.dirname, '..', 'models', 'house');
const PROMPT = 'In the beginning God created the heaven and the earth.';

interface HeadsJson {
  view: string;
  tokens: number[];
  pieces: string[];
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  baseline: number | null;
  heads: {
    layer: number;
    head: number;
    kvHead: number;
    previousToken: number | null;
    firstToken: number | null;
    induction: number;
  }[];
  induction: { seed: number; length: number; tokens: number[]; baseline: number };
  gqa: { groups: number[][]; kvCache: { name: string; bytesAtContext: number; bytesPerToken: number }[] };
}

interface AblateJson {
  view: string;
  tokens: number[];
  mode: string;
  positions: number;
  clean: number[];
  heads: { layer: number; head: number; delta: number; perPosition: number[] }[];
}

async function inspect<T>(args: string[]): Promise<T> {
  const result = await runCli(['inspect', ...args]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout.toString()) as T;
}

/** weights[l][h][t][s] of a Node pass over `tokens`, with the same kernels the CLI chooses by default. */
function weightsOf(tokens: number[]) {
  const { model } = loadModelFolder(HOUSE);
  const trace = forward(model, tokens, new KVCache(model.config), {
    kernels: defaultKernels(),
    trace: true,
    logits: 'last',
  }).trace;
  return trace.layers.map(({ weights: { data, shape } }) => {
    const [H, T, S] = shape;
    return Array.from({ length: H }, (_, h) =>
      Array.from({ length: T }, (_, t) => Array.from(data.subarray((h * T + t) * S, (h * T + t + 1) * S))),
    );
  });
}

function logSoftmaxAt(row: ArrayLike<number>, target: number): number {
  let total = 0;
  for (let i = 0; i < row.length; i++) total += Math.exp(row[i]);
  return Math.log(Math.exp(row[target]) / total);
}

describe('glassbox inspect heads', () => {
  it('prints every head’s scores, recomputed here from a Node Trace by plain loops', async () => {
    const json = await inspect<HeadsJson>(['heads', '--model', HOUSE, '--prompt', PROMPT, '--json']);
    const { tokenizer } = loadModelFolder(HOUSE);
    expect(json.view).toBe('heads');
    expect(json.tokens).toEqual(tokenizer.encode(PROMPT, { bos: true, eos: false }));
    expect([json.nLayers, json.nHeads, json.nKvHeads]).toEqual([4, 4, 2]);
    const T = json.tokens.length;
    const weights = weightsOf(json.tokens);
    expect(json.heads).toHaveLength(16);
    for (const head of json.heads) {
      const rows = weights[head.layer][head.head];
      let previous = 0;
      let first = 0;
      for (let t = 1; t < T; t++) {
        previous += rows[t][t - 1];
        first += rows[t][0];
      }
      expect(head.previousToken).toBeCloseTo(previous / (T - 1), 6);
      expect(head.firstToken).toBeCloseTo(first / (T - 1), 6);
      expect(head.kvHead).toBe(head.head < 2 ? 0 : 1);
    }
    let even = 0;
    for (let t = 1; t < T; t++) even += 1 / (t + 1);
    expect(json.baseline).toBeCloseTo(even / (T - 1), 12);

    // The induction test: seed 1, length 32 by default; BOS, 32 distinct tokens, the same again.
    const { tokens, length, seed } = json.induction;
    expect([seed, length, tokens.length]).toEqual([1, 32, 65]);
    expect(tokens[0]).toBe(tokenizer.bosId);
    expect(tokens.slice(33)).toEqual(tokens.slice(1, 33));
    const inductionWeights = weightsOf(tokens);
    for (const head of json.heads) {
      const rows = inductionWeights[head.layer][head.head];
      let sum = 0;
      for (let t = 33; t < 65; t++) sum += rows[t][tokens.indexOf(tokens[t], 1) + 1];
      expect(head.induction).toBeCloseTo(sum / 32, 6);
    }

    // GQA: query heads 0, 1 → kv head 0; 2, 3 → kv head 1; the cache of the house context (512) by hand.
    expect(json.gqa.groups).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(json.gqa.kvCache[0].bytesAtContext).toBe(2 * 4 * 2 * 32 * 512 * 4);
    const llama3 = json.gqa.kvCache.find((row) => row.name === 'Llama 3 8B')!;
    expect(llama3.bytesPerToken).toBe(2 * 32 * 8 * 128 * 2);
  });

  it('takes --seed and --induction-length', async () => {
    const json = await inspect<HeadsJson>([
      'heads',
      '--model',
      HOUSE,
      '--prompt',
      'And God said',
      '--json',
      '--seed',
      '7',
      '--induction-length',
      '10',
    ]);
    expect([json.induction.seed, json.induction.length, json.induction.tokens.length]).toEqual([7, 10, 21]);
    const other = await inspect<HeadsJson>([
      'heads',
      '--model',
      HOUSE,
      '--prompt',
      'And God said',
      '--json',
      '--seed',
      '8',
      '--induction-length',
      '10',
    ]);
    expect(other.induction.tokens).not.toEqual(json.induction.tokens);
  });
});

describe('glassbox inspect ablate', () => {
  for (const mode of ['zero', 'mean']) {
    it(`--mode ${mode}: every head's change in log p equals a whole ablated pass with a textbook log-softmax`, async () => {
      const prompt = 'And God said, Let there be light';
      const json = await inspect<AblateJson>([
        'ablate',
        '--model',
        HOUSE,
        '--prompt',
        prompt,
        '--json',
        ...(mode === 'zero' ? [] : ['--mode', mode]),
      ]);
      const { model } = loadModelFolder(HOUSE);
      const { tokens } = json;
      const V = model.config.vocabSize;
      const logProbs = (layer?: number, head?: number) => {
        const { logits } = forward(model, tokens, new KVCache(model.config), {
          kernels: defaultKernels(),
          logits: 'all',
          interventions:
            layer === undefined ? [] : [{ kind: 'ablateHead', layer, head: head!, mode: mode as 'zero' }],
        });
        return tokens.slice(1).map((next, t) => logSoftmaxAt(logits.subarray(t * V, (t + 1) * V), next));
      };
      const clean = logProbs();
      expect(json.mode).toBe(mode);
      expect(json.positions).toBe(tokens.length - 1);
      json.clean.forEach((value, t) => expect(value).toBeCloseTo(clean[t], 4));
      expect(json.heads).toHaveLength(16);
      for (const cell of json.heads) {
        const ablated = logProbs(cell.layer, cell.head);
        const changes = ablated.map((value, t) => value - clean[t]);
        cell.perPosition.forEach((change, t) => expect(change).toBeCloseTo(changes[t], 4));
        expect(cell.delta).toBeCloseTo(changes.reduce((a, b) => a + b, 0) / changes.length, 4);
      }
    });
  }
});

describe('glassbox inspect heads|ablate: bad options', () => {
  it.each([
    [['heads', '--seed', '0'], /^glassbox: --seed must be a whole number from 1 to/],
    [['heads', '--seed', 'x'], /^glassbox: --seed must be a number, got "x"/],
    [
      ['heads', '--induction-length', '256'],
      /^glassbox: --induction-length must be a whole number from 1 to 255, got 256/,
    ],
    [['heads', '--induction-length', '2.5'], /^glassbox: --induction-length must be a whole number/],
    [['ablate', '--mode', 'half'], /^glassbox: --mode must be zero or mean, got "half"/],
    [['ablate', '--seed', '3'], /^glassbox: Unknown option '--seed'/],
  ])('%j: one line and the usage, exit 2', async (args, message) => {
    const [view, ...rest] = args;
    const result = await runCli([
      'inspect',
      view,
      '--model',
      HOUSE,
      '--prompt',
      'And God',
      '--json',
      ...rest,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')[0]).toMatch(message);
    expect(result.stderr).toContain('Usage: glassbox <command>');
    expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });

  it('a one-token prompt has nothing to ablate; a prompt beyond the context is refused', async () => {
    const empty = await runCli(['inspect', 'ablate', '--model', HOUSE, '--prompt', '', '--json']);
    expect(empty.code).toBe(2);
    expect(empty.stderr.split('\n')[0]).toMatch(/needs a prompt of at least one token after BOS/);
    const long = 'In the beginning God created the heaven and the earth. '.repeat(60);
    for (const view of ['heads', 'ablate']) {
      const result = await runCli(['inspect', view, '--model', HOUSE, '--prompt', long, '--json']);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toMatch(/this model's context holds 512/);
    }
  });
});

describeShared('glassbox inspect heads on stories260K (llama2.c files)', () => {
  it('draws the induction tokens from outside <unk>, BOS and EOS, and scores 5 × 8 heads', async () => {
    const json = await inspect<HeadsJson>([
      'heads',
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--prompt',
      'Lily and Tom went to the park',
      '--json',
    ]);
    expect(json.heads).toHaveLength(40);
    expect(json.gqa.groups).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
      [6, 7],
    ]);
    for (const token of json.induction.tokens.slice(1)) expect([0, 1, 2]).not.toContain(token);
    for (const head of json.heads) {
      expect(head.induction).toBeGreaterThanOrEqual(0);
      expect(head.induction).toBeLessThanOrEqual(1);
    }
  });
});
