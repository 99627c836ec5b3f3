/**
 * Chapter 8 in Chromium: the head patterns and their scores, the induction test and the ablation map show
 * the numbers a Node run of the same engine and analysis gives on the same files, and that
 * `glassbox inspect heads|ablate` prints; the heads, the ablation cells and the induction seed work from the
 * keyboard; the ablation map's time in the worker is reported (and held to 300 ms on a 64-token text); axe
 * and screenshots at 1280 and 375 px.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ablationMap,
  headPatternScores,
  inductionInput,
  inductionScores,
  INDUCTION_DEFAULTS,
  specialTokenIds,
  type HeadPatternScores,
} from '../../src/analysis/heads.ts';
import { forward } from '../../src/engine/forward.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import {
  ARTIFACTS,
  checkAppearances,
  e2eSkipReason,
  HOUSE,
  houseModel,
  openPage,
  type Published,
  published,
  sessionForSuite,
  waitForAnalysis,
} from './harness.ts';
import { runCli } from '../cli-helpers.ts';
import { defaultKernels } from '../helpers.ts';

const unavailable = e2eSkipReason();

const VERSE =
  'And God said, Let there be light: and there was light. And God saw the light, that it was good. ';
/** The worker's time for the ablation map of a 64-token text on the house model. */
const ABLATION_BUDGET_MS = 300;

function nodeModel() {
  const { model, tokenizer } = houseModel();
  const kernels = defaultKernels();
  const trace = (tokens: number[]) =>
    forward(model, tokens, new KVCache(model.config), { trace: true, logits: 'last', kernels }).trace;
  /** A text the model reads as exactly `count` tokens (BOS included). */
  const textOfTokens = (count: number) => {
    const tokens = tokenizer.encode(VERSE.repeat(8), { bos: true, eos: false }).slice(0, count);
    const text = tokenizer.decode(tokens);
    expect(tokenizer.encode(text, { bos: true, eos: false })).toHaveLength(count);
    return text;
  };
  return { model, tokenizer, kernels, trace, textOfTokens };
}

describe.skipIf(unavailable !== undefined)('chapter 8 (heads) in Chromium', () => {
  const session = sessionForSuite();

  it("shows the engine's head scores, induction test and ablation map, equal to Node, and times the map", async () => {
    const node = nodeModel();
    const prompt = node.textOfTokens(64);
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/heads?prompt=${encodeURIComponent(prompt)}`);
    const hook = await waitForAnalysis(page, prompt);
    const tokens = node.tokenizer.encode(prompt, { bos: true, eos: false });
    expect(hook.tokens).toEqual(tokens);
    const trace = node.trace(tokens);

    // The small multiples: previous-token and first-token scores of every head.
    const patterns = await published<Published & { scores: HeadPatternScores[]; baseline: number }>(
      page,
      'heads.patterns',
      tokens,
    );
    const expected = headPatternScores(trace);
    expect(patterns.scores).toHaveLength(expected.length);
    patterns.scores.forEach((score, i) => {
      expect([score.layer, score.head]).toEqual([expected[i].layer, expected[i].head]);
      expect(score.previousToken).toBeCloseTo(expected[i].previousToken!, 5);
      expect(score.firstToken).toBeCloseTo(expected[i].firstToken!, 5);
    });

    // `glassbox inspect heads` on the files the site serves prints the same numbers.
    const cli = await runCli(['inspect', 'heads', '--model', HOUSE, '--prompt', prompt, '--json']);
    expect(cli.code).toBe(0);
    const printed = JSON.parse(cli.stdout.toString()) as {
      tokens: number[];
      heads: { previousToken: number; firstToken: number; induction: number }[];
      induction: { tokens: number[] };
    };
    expect(printed.tokens).toEqual(tokens);
    printed.heads.forEach((head, i) => {
      expect(head.previousToken).toBeCloseTo(patterns.scores[i].previousToken!, 5);
      expect(head.firstToken).toBeCloseTo(patterns.scores[i].firstToken!, 5);
    });

    // The induction test: the default seed and length, the same tokens and scores as Node and the CLI.
    const { length, seed } = INDUCTION_DEFAULTS;
    const input = inductionInput(
      node.model.config,
      node.tokenizer.bosId,
      specialTokenIds(node.tokenizer),
      length,
      seed,
    );
    const induction = await published<Published & { scores: number[]; seed: number }>(
      page,
      'heads.induction',
      input.tokens,
    );
    const nodeInduction = inductionScores(node.trace(input.tokens), length);
    induction.scores.forEach((score, i) => expect(score).toBeCloseTo(nodeInduction[i].induction, 5));
    expect(printed.induction.tokens).toEqual(input.tokens);
    printed.heads.forEach((head, i) => expect(head.induction).toBeCloseTo(induction.scores[i], 5));

    // The ablation map: every head's mean change in log p, as Node computes it; the worker's time.
    const ablation = await published<Published & { delta: number[]; ms: number; passes: number }>(
      page,
      'heads.ablation',
      tokens,
    );
    const map = ablationMap(node.model, trace, node.kernels);
    expect(ablation.passes).toBe(16);
    ablation.delta.forEach((value, i) => expect(value).toBeCloseTo(map.delta[i], 4));
    const ablate = await runCli(['inspect', 'ablate', '--model', HOUSE, '--prompt', prompt, '--json']);
    const ablatePrinted = JSON.parse(ablate.stdout.toString()) as { heads: { delta: number }[] };
    ablatePrinted.heads.forEach((head, i) => expect(head.delta).toBeCloseTo(ablation.delta[i], 4));
    // Timing: the map again, switching modes, until one run is within the budget (at most 10 runs). The
    // machine is shared, so a run can be slowed by other processes; as in the benchmark (bench-common.ts),
    // the fastest run is the one nothing else interrupted: the speed of the code itself.
    const times = [ablation.ms];
    let mode = 'zero';
    while (Math.min(...times) > ABLATION_BUDGET_MS && times.length < 10) {
      mode = mode === 'zero' ? 'mean' : 'zero';
      await page.getByRole('radio', { name: mode === 'zero' ? /zero the head/ : /by its mean/ }).check();
      const again = await published<Published & { ms: number; mode: string; delta: number[] }>(
        page,
        'heads.ablation',
        tokens,
        (f) => f.mode === mode,
      );
      times.push(again.ms);
    }
    // The other mode, checked against Node.
    await page.getByRole('radio', { name: /by its mean/ }).check();
    const meanFigure = await published<Published & { mode: string; delta: number[] }>(
      page,
      'heads.ablation',
      tokens,
      (f) => f.mode === 'mean',
    );
    const meanMap = ablationMap(node.model, trace, node.kernels, 'mean');
    meanFigure.delta.forEach((value, i) => expect(value).toBeCloseTo(meanMap.delta[i], 4));
    const timing = { tokens: tokens.length, passes: ablation.passes, ms: times.map((t) => +t.toFixed(1)) };
    console.log(`[e2e] ablation map in the worker: ${JSON.stringify(timing)}`);
    writeFileSync(join(ARTIFACTS, 'heads-ablation-timing.json'), JSON.stringify(timing, null, 2) + '\n');
    expect(Math.min(...times)).toBeLessThanOrEqual(ABLATION_BUDGET_MS);

    expect({ console: problems.console, failed: problems.failed, foreign: problems.foreign }).toEqual({
      console: [],
      failed: [],
      foreign: [],
    });
    await page.close();
  });

  it('works from the keyboard: heads, ablation cells, the induction seed, and the question', async () => {
    const node = nodeModel();
    const prompt = 'In the beginning God created the heavens and the earth.';
    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/heads?prompt=${encodeURIComponent(prompt)}`);
    const hook = await waitForAnalysis(page, prompt);
    const tokens = hook.tokens;
    const trace = node.trace(tokens);
    const H = node.model.config.nHeads;

    // Predict, then reveal: the layer of the head with the highest previous-token score.
    const scores = headPatternScores(trace);
    const best = scores.reduce((a, b) => ((b.previousToken ?? 0) > (a.previousToken ?? 0) ? b : a));
    await published(page, 'heads.patterns', tokens);
    await page.getByRole('button', { name: 'Just show me' }).click();
    await expect
      .poll(() => page.locator('.predict label.correct').textContent())
      .toMatch(new RegExp(`Layer ${best.layer}\\b`));

    // The small multiples: arrow keys move the head shown large.
    await page.locator('button.head').first().focus();
    await page.keyboard.press('ArrowRight');
    await published(page, 'heads.patterns', tokens, (f) => f.layer === 0 && f.head === 1);
    await page.keyboard.press('ArrowDown');
    const moved = await published<Published & { topKeys: { key: number; weight: number }[]; query: number }>(
      page,
      'heads.patterns',
      tokens,
      (f) => f.layer === 1 && f.head === 1,
    );
    // The large view's top keys: the Trace's row of layer 1, head 1 for the query (the last token).
    const T = tokens.length;
    const row = Array.from(
      trace.layers[1].weights.data.subarray(
        (1 * T + moved.query) * T,
        (1 * T + moved.query) * T + moved.query + 1,
      ),
    );
    const top = row
      .map((weight, key) => ({ key, weight }))
      .sort((a, b) => b.weight - a.weight || a.key - b.key);
    expect(moved.topKeys.map((k) => k.key)).toEqual(top.slice(0, 3).map((k) => k.key));
    moved.topKeys.forEach((k, i) => expect(k.weight).toBeCloseTo(top[i].weight, 5));
    await page.keyboard.press('End');
    await published(
      page,
      'heads.patterns',
      tokens,
      (f) => f.layer === node.model.config.nLayers - 1 && f.head === H - 1,
    );

    // The ablation map: arrow keys choose a head; its moved predictions follow.
    await published(page, 'heads.ablation', tokens);
    await page.locator('button.cell').first().focus();
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowDown');
    const chosen = await published<Published & { moved: { t: number; change: number }[] }>(
      page,
      'heads.ablation',
      tokens,
      (f) => f.layer === 1 && f.head === 1,
    );
    const map = ablationMap(node.model, trace, node.kernels);
    const positions = T - 1;
    const changes = Array.from(map.perPosition.subarray((H + 1) * positions, (H + 2) * positions));
    const largest = changes
      .map((change, t) => ({ t, change }))
      .sort((a, b) => Math.abs(b.change) - Math.abs(a.change) || a.t - b.t);
    expect(chosen.moved[0].t).toBe(largest[0].t);
    expect(chosen.moved[0].change).toBeCloseTo(largest[0].change, 4);

    // The induction seed: a keyboard press on "New tokens" draws seed 2.
    await page.getByRole('button', { name: 'New tokens' }).focus();
    await page.keyboard.press('Enter');
    const input = inductionInput(
      node.model.config,
      node.tokenizer.bosId,
      specialTokenIds(node.tokenizer),
      INDUCTION_DEFAULTS.length,
      2,
    );
    const second = await published<Published & { scores: number[] }>(page, 'heads.induction', input.tokens);
    const nodeScores = inductionScores(node.trace(input.tokens), INDUCTION_DEFAULTS.length);
    second.scores.forEach((score, i) => expect(score).toBeCloseTo(nodeScores[i].induction, 5));
    // And a typed length.
    await page.getByRole('spinbutton', { name: /Length/ }).fill('8');
    await page.keyboard.press('Enter');
    const short = inductionInput(
      node.model.config,
      node.tokenizer.bosId,
      specialTokenIds(node.tokenizer),
      8,
      2,
    );
    await published(page, 'heads.induction', short.tokens);

    expect(problems.console).toEqual([]);
    await page.close();
  });

  it('passes axe in light and dark mode, and screenshots the chapter at 1280 and 375 px', async () => {
    const prompt = 'In the beginning God created the heavens and the earth.';
    await checkAppearances(session, 'heads', prompt, async (page, hook) => {
      await published(page, 'heads.patterns', hook.tokens);
      await published(page, 'heads.ablation', hook.tokens);
      await published(page, 'heads.induction', undefined);
    });
  });
});
