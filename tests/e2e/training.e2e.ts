/**
 * Chapter 14 in Chromium: the page's trainer against Node's. A short seeded run in the page (a tiny
 * configuration on a book of the corpus, WebAssembly SIMD kernels on both sides) gives the same losses,
 * step by step, and the same model.safetensors, byte for byte, as `glassbox train` run in this test process
 * on the same text, seed and settings (the losses within V8's last-bit differences, see expectSameLosses). A reload in the middle resumes from the checkpoint in IndexedDB and
 * ends with the same bits as the uninterrupted run.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_TRAIN_SETTINGS, trainModel, type TrainSettings } from '../../src/cli/train/run.ts';
import type { RunShape } from '../../src/engine/train/prepare.ts';
import { unzip } from '../../src/formats/zip.ts';
import { runCli } from '../cli-helpers.ts';
import {
  frequentTokens,
  MAP_TOKEN_COUNT,
  neighbourAgreement,
  pieceCategory,
  tokenMap,
} from '../../src/analysis/embedding-map.ts';
import { logitLens } from '../../src/analysis/lens.ts';
import { textSurprise } from '../../src/analysis/surprise.ts';
import { forward } from '../../src/engine/forward.ts';
import { KVCache } from '../../src/engine/kv-cache.ts';
import { createAdamWState } from '../../src/engine/train/adamw.ts';
import { BatchSampler, sequentialBatches } from '../../src/engine/train/data.ts';
import { runTrainingLoop } from '../../src/engine/train/loop.ts';
import { TrainingModel } from '../../src/engine/train/model.ts';
import { zerosLike, type Weights } from '../../src/engine/train/parameters.ts';
import { tokenize, trainValidationSplit } from '../../src/engine/train/prepare.ts';
import { LocalShardWorker, shardGradients } from '../../src/engine/train/shards.ts';
import { FINE_TUNE } from '../../src/app/chapters/14-training/presets.ts';
import { selectKernels } from '../../src/kernels/select.ts';
import { fromTokenizerJson, tokenPiece } from '../../src/tokenizers/bpe.ts';
import { loadModelFolder } from '../helpers.ts';
import {
  ARTIFACTS,
  axeViolations,
  e2eSkipReason,
  HOUSE,
  openPage,
  sessionForSuite,
  SITE,
  waitForAnalysis,
} from './harness.ts';

const unavailable = e2eSkipReason();

/** Room for the quota test's run and one checkpoint of TINY, not two (about 230 KB each). */
const QUOTA_BYTES = 420_000;

/** The book both sides train on, as the site serves it. */
const BOOK = 'web-ruth';

/** A configuration small enough for a test: a few seconds of training on either side. */
const TINY: Partial<RunShape> = {
  layers: 1,
  dim: 32,
  heads: 2,
  kvHeads: 1,
  hidden: 64,
  seqLen: 32,
  vocabSize: 300,
  batchSize: 8,
  steps: 16,
  learningRate: 0.005,
};

interface TrainerHook {
  phase: string;
  step: number;
  losses: number[];
  valLosses: [number, number][];
  problem: string | undefined;
  saveProblem: string | undefined;
  saved: { step: number; saved: boolean; lastGoodStep?: number } | undefined;
  info: { runId: string; threads: number; kernels: string } | undefined;
  modelSha256(): Promise<string>;
}

/** The settings the page's fields make of TINY (the rest from the default preset, as the page has them). */
async function pageSettings(page: Page): Promise<RunShape> {
  return page.evaluate(() => {
    const hook = (globalThis as unknown as { __glassboxTrainerSettings?: () => RunShape })
      .__glassboxTrainerSettings;
    if (!hook) throw new Error('no settings hook');
    return hook();
  });
}

/** Opens chapter 14, chooses the book, the tiny settings and the kernels by the page's own controls. */
async function setUp(page: Page, origin: string, steps = TINY.steps!): Promise<void> {
  await page.goto(`${origin}/training`);
  await page.getByRole('combobox', { name: 'Book' }).selectOption(BOOK);
  for (const [key, value] of Object.entries({ ...TINY, steps })) {
    const label = {
      layers: 'layers',
      dim: 'width (dim)',
      heads: 'heads',
      kvHeads: 'key/value heads',
      hidden: 'FFN width',
      seqLen: 'context (tokens)',
      vocabSize: 'vocabulary',
      batchSize: 'batch (sequences)',
      steps: 'steps',
      learningRate: 'learning rate',
    }[key]!;
    const field = page.getByLabel(label, { exact: true });
    await field.fill(String(value));
    await field.dispatchEvent('change');
  }
  await page.getByRole('combobox', { name: 'Kernels' }).selectOption('wasm-simd');
}

function hook(page: Page): Promise<Omit<TrainerHook, 'modelSha256'>> {
  return page.evaluate(() => {
    const h = (globalThis as unknown as { __glassboxTrainer: TrainerHook }).__glassboxTrainer;
    return {
      phase: h.phase,
      step: h.step,
      losses: h.losses,
      valLosses: h.valLosses,
      problem: h.problem,
      saveProblem: h.saveProblem,
      saved: h.saved,
      info: h.info,
    };
  });
}

async function waitForPhase(page: Page, phase: string, timeout = 120_000): Promise<void> {
  await page.waitForFunction(
    (wanted) =>
      (globalThis as unknown as { __glassboxTrainer?: TrainerHook }).__glassboxTrainer?.phase === wanted,
    phase,
    { timeout },
  );
}

function modelSha256(page: Page): Promise<string> {
  return page.evaluate(() =>
    (globalThis as unknown as { __glassboxTrainer: TrainerHook }).__glassboxTrainer.modelSha256(),
  );
}

/** `glassbox train` on the same text and settings, in this process: its losses and model file's hash. */
async function nodeRun(settings: RunShape): Promise<{ losses: number[]; sha256: string }> {
  const folder = mkdtempSync(join(tmpdir(), 'glassbox-train-e2e-'));
  try {
    const input = join(folder, 'text.txt');
    writeFileSync(input, readFileSync(join(SITE, 'corpus', 'books', `${BOOK}.txt`)));
    const out = join(folder, 'out');
    const full: TrainSettings = { ...DEFAULT_TRAIN_SETTINGS, ...settings, input };
    const result = await trainModel(
      full,
      out,
      { resume: false, kernels: 'wasm-simd', threads: 1 },
      { log: () => {}, stopRequested: () => false },
    );
    const sha256 = createHash('sha256')
      .update(readFileSync(join(out, 'model.safetensors')))
      .digest('hex');
    return { losses: result.losses, sha256 };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

/**
 * The losses are float64 sums of Math.exp and Math.log, which V8 computes differently in the last bit from
 * one version to another: Node 20's and Chromium 156's Math.exp differ on about 10% of arguments and Math.log
 * on about 2% (measured here on 200,000 of each). The gradients are float32, and those last-bit differences
 * vanish in their rounding (the weights above are the same file, byte for byte); the float64 loss can keep
 * one. So each loss must equal Node's or be its neighbour within 2 units in the last place.
 */
function expectSameLosses(page: number[], node: number[]): void {
  expect(page).toHaveLength(node.length);
  page.forEach((loss, i) => {
    const ulp = Math.abs(node[i]) * Number.EPSILON;
    expect(Math.abs(loss - node[i]), `step ${i + 1}: page ${loss}, Node ${node[i]}`).toBeLessThanOrEqual(
      2 * ulp,
    );
  });
  // Most are bit-identical; a last-bit difference is the exception, not the rule.
  expect(page.filter((loss, i) => loss === node[i]).length).toBeGreaterThanOrEqual(node.length / 2);
}

/** Waits until the trainer has saved a checkpoint at `step` or later (or reports a failed save). */
async function waitForSave(page: Page, step: number): Promise<void> {
  await page.waitForFunction(
    (wanted) => {
      const h = (globalThis as unknown as { __glassboxTrainer?: TrainerHook }).__glassboxTrainer;
      return (h?.saved?.lastGoodStep ?? -1) >= wanted;
    },
    step,
    { timeout: 120_000 },
  );
}

/** Resumes the stored run from the list of runs kept in this browser. */
async function resumeStored(page: Page): Promise<void> {
  await page.locator('summary', { hasText: 'Runs kept in this browser' }).click();
  await page.getByRole('button', { name: 'Resume', exact: true }).first().click();
}

/** What chapter 14's embedding map publishes (TrainEmbeddings.svelte) for the sample it shows. */
interface PublishedEmbeddingMap {
  step: number;
  tokens: number[];
  categories: number[];
  points: number[];
  nearest: number[];
  same: number;
  share: number;
  chance: number;
}

/**
 * The embedding map the page drew at its newest sample, recomputed in Node from the run's final weights and
 * tokenizer (the downloaded folder, Node's bits): the same most frequent tokens of the training text, their
 * kinds, every nearest neighbour and the share, exactly; the points within float32 rounding, once Node's
 * picture is turned onto the page's (a rotation or reflection changes no distance, so it cannot fake a match).
 */
async function expectEmbeddingMap(page: Page, folder: string): Promise<void> {
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { __glassbox?: { figures?: Record<string, unknown> } }).__glassbox?.figures?.[
        'training.embeddings'
      ] !== undefined,
  );
  const published = await page.evaluate(
    () =>
      (globalThis as unknown as { __glassbox: { figures: Record<string, PublishedEmbeddingMap> } }).__glassbox
        .figures['training.embeddings'],
  );
  const { model, tokenizer } = loadModelFolder(folder);
  const bpe = fromTokenizerJson(readFileSync(join(folder, 'tokenizer.json'), 'utf8'));
  const text = readFileSync(join(SITE, 'corpus', 'books', `${BOOK}.txt`), 'utf8');
  const trainTokens = tokenize(tokenizer, trainValidationSplit(text).train);
  const special = new Set(bpe.specialTokens.map((token) => token.id));
  const tokens = frequentTokens(trainTokens, model.config.vocabSize, MAP_TOKEN_COUNT, special);
  expect(published.tokens).toEqual(tokens);
  expect(published.tokens.length).toBeGreaterThan(100);
  const categories = tokens.map((token) => pieceCategory(tokenPiece(bpe, token)));
  expect(published.categories).toEqual(categories);
  const table = model.weights.tokenEmbedding.data;
  const agreement = neighbourAgreement(table, model.config.dim, tokens, categories);
  expect(published.nearest).toEqual(Array.from(agreement.nearest));
  expect(published.same).toBe(agreement.same);
  expect(published.share).toBe(agreement.share);
  expect(published.chance).toBe(agreement.chance);
  const node = tokenMap(table, model.config.dim, tokens, published.points);
  let scale = 0;
  for (const value of node.points) scale = Math.max(scale, Math.abs(value));
  node.points.forEach((value, i) => expect(Math.abs(value - published.points[i])).toBeLessThan(1e-4 * scale));
  // The map is drawn: its canvas has coloured pixels, and its text alternative says the share.
  const figure = page.locator('figure[aria-labelledby="training-embeddings-title"]');
  const painted = await figure.locator('canvas').evaluate((canvas: HTMLCanvasElement) => {
    const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    let count = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count++;
    return count;
  });
  expect(painted).toBeGreaterThan(1000);
  const caption = (await page.locator('#training-embeddings-summary').textContent())!;
  expect(caption.replace(/\s+/g, ' ')).toContain(
    `${agreement.same} of the ${tokens.length} tokens (${(agreement.share * 100).toFixed(1)}%)`,
  );
  // Both widths in both schemes (a map of coloured points is where dark mode and a phone's width can fail).
  for (const [width, scheme] of [
    [1280, 'light'],
    [1280, 'dark'],
    [375, 'light'],
    [375, 'dark'],
  ] as const) {
    await page.setViewportSize({ width, height: 900 });
    await page.emulateMedia({ colorScheme: scheme, reducedMotion: 'reduce' });
    await figure.screenshot({ path: join(ARTIFACTS, `training-embeddings-${width}-${scheme}.png`) });
    if (width === 1280) expect(await axeViolations(page), scheme).toEqual([]);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: 'light', reducedMotion: 'no-preference' });
}

describe.skipIf(unavailable !== undefined)('chapter 14 (training) in Chromium', () => {
  const session = sessionForSuite();
  /** Node's uninterrupted run of the tiny settings, computed once. */
  let reference: Promise<{ losses: number[]; sha256: string }> | undefined;
  const nodeReference = (settings: RunShape) => (reference ??= nodeRun(settings));

  it('a seeded run in the page gives Node’s weights byte for byte (and its losses to V8’s last bit), on two shard workers', async () => {
    const { page, problems } = await openPage(session);
    await setUp(page, session.origin);
    const settings = await pageSettings(page);
    expect(settings).toMatchObject(TINY);
    const node = await nodeReference(settings);
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await waitForPhase(page, 'finished');
    const done = await hook(page);
    expect(done.problem).toBeUndefined();
    // The page is cross-origin isolated: the shards ran on two workers, and still gave Node's one-thread bits.
    expect(done.info?.threads).toBe(2);
    expect(done.info?.kernels).toBe('wasm-simd');
    expect(done.losses).toHaveLength(TINY.steps!);
    expect(await modelSha256(page)).toBe(node.sha256);
    expectSameLosses(done.losses, node.losses);
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it('a reload in the middle of training resumes from IndexedDB and ends with the uninterrupted run’s bits', async () => {
    const { page, problems } = await openPage(session);
    await setUp(page, session.origin);
    const node = await nodeReference(await pageSettings(page));
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await waitForSave(page, 6);
    await page.reload(); // the workers die wherever they are, perhaps in the middle of a save
    await resumeStored(page);
    await waitForPhase(page, 'finished');
    const done = await hook(page);
    expect(done.problem).toBeUndefined();
    expect(await modelSha256(page)).toBe(node.sha256);
    expectSameLosses(done.losses, node.losses);
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it('a full disk keeps the last good checkpoint, says so, and the run resumes from it with the same bits', async () => {
    const steps = 150; // long enough for several saves
    // A fresh origin (localhost, not 127.0.0.1), whose quota is set before it stores anything (Chromium
    // reads the override when an origin's storage starts): room for the run and one checkpoint, but not for
    // a second one written beside it, so the first save succeeds and every later one fails.
    const origin = session.origin.replace('127.0.0.1', 'localhost');
    const { page } = await openPage(session);
    const cdp = await session.context.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: QUOTA_BYTES });
    await setUp(page, origin, steps);
    const node = await nodeRun(await pageSettings(page));
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await waitForPhase(page, 'finished');
    const full = await hook(page);
    expect(full.saveProblem).toMatch(
      /^The browser's storage for this site is full, so step \d+ was not saved; the last good checkpoint \(step \d+\) is kept\./,
    );
    const kept = Number(/\(step (\d+)\)/.exec(full.saveProblem!)![1]);
    expect(kept).toBeLessThan(steps);
    expect(
      await page.getByRole('alert').filter({ hasText: 'storage for this site is full' }).isVisible(),
    ).toBe(true);
    // The last good checkpoint is whole: with room again, a reload resumes from it and ends with Node's bits.
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });
    await page.reload();
    await page.locator('summary', { hasText: 'Runs kept in this browser' }).click();
    expect(await page.getByText(`step ${kept} of ${steps}`).first().isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Resume', exact: true }).first().click();
    await waitForPhase(page, 'finished');
    expect(await modelSha256(page)).toBe(node.sha256);
    await page.close();
  });

  it('a second tab cannot train while one does, and is told why', async () => {
    const { page } = await openPage(session);
    await setUp(page, session.origin, 5000);
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await waitForSave(page, 2);
    const second = await openPage(session);
    await setUp(second.page, session.origin);
    await second.page.getByRole('button', { name: 'Start', exact: true }).click();
    await second.page.waitForFunction(
      () =>
        (globalThis as unknown as { __glassboxTrainer: TrainerHook }).__glassboxTrainer.problem !== undefined,
    );
    expect((await hook(second.page)).problem).toMatch(
      /^Another tab of this course is training a model right now/,
    );
    expect(await second.page.getByRole('alert').filter({ hasText: 'Another tab' }).isVisible()).toBe(true);
    await second.page.close();
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await waitForPhase(page, 'paused');
    await page.close();
  });

  it('the downloaded .zip opens in the CLI, the model runs every chapter, and both write the same text', async () => {
    const { page, problems } = await openPage(session);
    await setUp(page, session.origin);
    const node = await nodeReference(await pageSettings(page));
    await page.getByRole('button', { name: 'Start', exact: true }).click();
    await waitForPhase(page, 'finished');
    const { info } = await hook(page);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download the model (.zip)' }).click(),
    ]);
    const zip = new Uint8Array(readFileSync(await download.path()));
    const entries = await unzip(zip, download.suggestedFilename());
    const folder = mkdtempSync(join(tmpdir(), 'glassbox-download-'));
    try {
      for (const entry of entries) {
        mkdirSync(join(folder, entry.name, '..'), { recursive: true });
        writeFileSync(join(folder, entry.name), entry.bytes);
      }
      const names = entries.map((entry) => entry.name);
      const model = join(folder, names[0].split('/')[0]);
      expect(names.map((name) => name.split('/').at(-1)).sort()).toEqual([
        'config.json',
        'model.safetensors',
        'tokenizer.json',
      ]);
      // The weights in the download are the trained ones, Node's bits.
      expect(
        createHash('sha256')
          .update(readFileSync(join(model, 'model.safetensors')))
          .digest('hex'),
      ).toBe(node.sha256);

      // The logit lens the page read at the last sample, on the reader's text: Node's lens on the download.
      const lens = await page.evaluate(
        () =>
          (
            globalThis as unknown as {
              __glassboxTrainer: { samples: { lens?: { rows: { piece: string; probability: number }[] } }[] };
            }
          ).__glassboxTrainer.samples.at(-1)!.lens!,
      );
      const readerText = await page.inputValue('#prompt');
      const downloaded = loadModelFolder(model);
      const readerTokens = downloaded.tokenizer
        .encode(readerText, { bos: true, eos: false })
        .slice(0, downloaded.model.config.seqLen);
      const { trace } = forward(downloaded.model, readerTokens, new KVCache(downloaded.model.config), {
        trace: true,
        logits: 'all',
        kernels: selectKernels('wasm-simd'),
      });
      const nodeLens = logitLens(downloaded.model, trace!, selectKernels('wasm-simd'), 1);
      expect(lens.rows).toHaveLength(nodeLens.rows);
      lens.rows.forEach((row, r) => {
        const at = r * nodeLens.positions + nodeLens.positions - 1;
        expect(row.piece).toBe(downloaded.tokenizer.pieceLabel(nodeLens.ids[at]));
        expect(row.probability).toBeCloseTo(nodeLens.probabilities[at], 6);
      });

      // The embedding map the page drew at its last sample: Node's map of the download.
      await expectEmbeddingMap(page, model);

      // Every chapter on it: a link that names it opens it from this browser's storage (after a reload).
      await page.getByRole('button', { name: 'Use it in every chapter' }).click();
      await page.getByText('Every chapter now runs on').waitFor();
      const prompt = 'And Naomi said';
      await page.goto(
        `${session.origin}/whole-machine?prompt=${encodeURIComponent(prompt)}&model=trained:${info!.runId}&kernels=ts`,
      );
      const reading = await waitForAnalysis(page, prompt);
      expect(reading.model.id).toBe(`trained:${info!.runId}`);
      expect(await page.getByText(/read by your model trained on Ruth/).isVisible()).toBe(true);
      await page.getByRole('button', { name: /^Generate/ }).click();
      await page.getByRole('button', { name: /^Generate/ }).waitFor({ timeout: 30_000 });
      const generated = await page.inputValue('#prompt');
      expect(generated.length).toBeGreaterThan(prompt.length);

      // The CLI on the unzipped folder, with chapter 1's settings (temperature 0.8, top-p 0.9, seed 42, 24
      // new tokens at most), writes the same text.
      const cli = await runCli([
        'generate',
        '--model',
        model,
        '--prompt',
        prompt,
        '--temperature',
        '0.8',
        '--top-p',
        '0.9',
        '--seed',
        '42',
        '--steps',
        String(reading.tokens.length - 1 + 24),
        '--kernels',
        'ts',
      ]);
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stdout.toString('utf8').replace(/\n$/, '')).toBe(generated);

      // Back to the house model: it loads, and the link stops naming the trained one.
      await page.getByRole('button', { name: /^Settings/ }).click();
      await page.getByRole('button', { name: 'Back to the house model' }).click();
      await expect
        .poll(() =>
          page.evaluate(
            () =>
              (globalThis as unknown as { __glassbox?: { model?: { id: string } } }).__glassbox?.model?.id,
          ),
        )
        .toBe('house');
      await expect.poll(() => page.url()).not.toContain('trained');

      // "Open a model file…" takes the .zip as it was downloaded, and writes the same text again.
      await page.goto(`${session.origin}/whole-machine?prompt=${encodeURIComponent(prompt)}&kernels=ts`);
      await waitForAnalysis(page, prompt);
      await page.getByRole('button', { name: /^Settings/ }).click();
      await page.locator('input[type=file]').setInputFiles(
        await download.path().then((path) => ({
          name: download.suggestedFilename(),
          mimeType: 'application/zip',
          buffer: readFileSync(path),
        })),
      );
      await page.waitForFunction(
        () =>
          (globalThis as unknown as { __glassbox?: { model?: { id: string } } }).__glassbox?.model?.id ===
          'local',
      );
      await waitForAnalysis(page, prompt);
      await page.getByRole('button', { name: /^Generate/ }).click();
      await page.getByRole('button', { name: /^Generate/ }).waitFor({ timeout: 30_000 });
      expect(await page.inputValue('#prompt')).toBe(generated);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
    expect(problems.console).toEqual([]);
    await page.close();
  });

  it('fine-tuning the house model lowers its surprise on held-out text by what Node computes', async () => {
    const book = 'brown-a';
    // Node: the house model, the same text, split, tokenizer, batches and steps, through the same loop.
    const { model, tokenizer } = loadModelFolder(HOUSE);
    const text = readFileSync(join(SITE, 'corpus', 'books', `${book}.txt`), 'utf8');
    const split = trainValidationSplit(text);
    const trainTokens = tokenize(tokenizer, split.train);
    const validationTokens = tokenize(tokenizer, split.val);
    const settings = { ...FINE_TUNE, seqLen: Math.min(FINE_TUNE.seqLen, model.config.seqLen) };
    const weights = model.weights as Weights;
    const kernels = selectKernels('wasm-simd');
    const probe = Array.from(validationTokens.subarray(0, FINE_TUNE.probeTokens));
    const surprise = () => {
      kernels.invalidateAll();
      const { logits } = forward(model, probe, new KVCache(model.config), { logits: 'all', kernels });
      return textSurprise(probe, logits, model.config.vocabSize);
    };
    const before = surprise();
    const perShard = shardGradients(weights, settings.shards);
    await runTrainingLoop(
      settings,
      {
        weights,
        optimizer: createAdamWState(weights),
        sampler: new BatchSampler(trainTokens, settings.batchSize, settings.seqLen, settings.seed),
        validationBatches: sequentialBatches(validationTokens, settings.batchSize, settings.seqLen),
        workers: [new LocalShardWorker(new TrainingModel(model.config, weights, { kernels }), perShard)],
        shardGradients: perShard,
        gradients: zerosLike(weights),
        log: [],
      },
      { save() {}, onStep() {}, stopRequested: () => false },
    );
    const after = surprise();
    expect(after.meanNll).toBeLessThan(before.meanNll);

    const { page, problems } = await openPage(session);
    await page.goto(`${session.origin}/training`);
    await page.getByRole('combobox', { name: 'Book' }).selectOption(book);
    await page.getByRole('combobox', { name: 'Kernels' }).selectOption('wasm-simd');
    await page.getByRole('button', { name: /^Fine-tune on the chosen text/ }).click();
    const caption = page.locator('#training-finetune-summary');
    await caption.filter({ hasText: 'the mean surprise went from' }).waitFor({ timeout: 120_000 });
    const said = (await caption.textContent())!;
    const [, from, to] = /went from ([\d.]+) to ([\d.]+) nats/.exec(said)!;
    expect(Number(from)).toBeCloseTo(before.meanNll, 2);
    expect(Number(to)).toBeCloseTo(after.meanNll, 2);
    expect(said).toMatch(new RegExp(`on\\s+${probe.length - 1}\\s+held-out\\s+tokens`));
    expect(problems.console).toEqual([]);
    await page.close();
  }, 180_000);
});
