/**
 * The engine's Web Worker: it holds the model, runs the forward pass off the main thread, and answers the
 * page through Comlink. Each answer carries only what the figures need; the Traces stay here (state.ts)
 * for the chapters' handlers to slice. Which file is the model and which the tokenizer, and whether they
 * belong together, is decided by src/formats/bundle.ts, as in the CLI.
 */
import * as Comlink from 'comlink';
import { generateTokens, stopTokensFor } from '../../../engine/generate.ts';
import { parameterCount, type Model } from '../../../engine/model.ts';
import { XorShiftRng } from '../../../engine/rng.ts';
import { modelFromFiles, tokenizerFromFile, type NamedFile } from '../../../formats/bundle.ts';
import { parseHfConfig } from '../../../formats/hf-llama.ts';
import { randomModel } from '../../../engine/init.ts';
import {
  checkpointAt,
  checkpointLabel,
  CHECKPOINTS_PATH,
  lastStep,
  loadCheckpointIndex,
} from '../checkpoints.ts';
import { houseCheckpointId } from '../train/model-id.ts';
import { describeKernels, invalidateAllKernels, selectKernels } from '../../../kernels/select.ts';
import type { Tokenizer } from '../../../tokenizers/tokenizer.ts';
import type {
  GeneratedStep,
  GenerateSettings,
  KernelChoice,
  LoadProgress,
  ModelInfo,
  Reading,
} from './protocol.ts';
import { current, requireModel, setLoaded, traceFor } from './state.ts';
import { trainedModel, trainedModelId } from '../train/trained-model.ts';
import { bpeTokenizer } from '../../../tokenizers/bpe.ts';
import { unzip } from '../../../formats/zip.ts';

/** The files of any .zip among `files` in its place (a downloaded model folder opens as it is). */
async function withZipsOpened(files: NamedFile[]): Promise<NamedFile[]> {
  const opened: NamedFile[] = [];
  for (const file of files) {
    if (!file.name.toLowerCase().endsWith('.zip')) opened.push(file);
    else {
      for (const entry of await unzip(file.bytes, file.name)) {
        opened.push({ name: entry.name.split('/').at(-1)!, bytes: entry.bytes });
      }
    }
  }
  return opened;
}

/**
 * Each chapter's own questions, found like the chapters themselves: `chapters/NN-slug/worker.ts` exports
 * `handlers`, served here under the chapter's slug (the page asks `chapters[slug].name(…)` through
 * chapterWorker). Namespaces keep two chapters' handlers apart; within a chapter a repeated name is a
 * duplicate key of one object literal, which TypeScript refuses.
 */
const chapterModules = import.meta.glob<{ handlers: Record<string, unknown> }>('../../chapters/*/worker.ts', {
  eager: true,
});
const chapters = Object.fromEntries(
  Object.entries(chapterModules).map(([path, module]) => [
    path.split('/').at(-2)!.replace(/^\d+-/, ''),
    module.handlers,
  ]),
);

/** Fetches several files at once, reporting the bytes received of all of them together. */
async function fetchAll(urls: string[], onProgress: (progress: LoadProgress) => void): Promise<Uint8Array[]> {
  const responses = await Promise.all(urls.map((url) => fetch(url)));
  responses.forEach((response, i) => {
    if (!response.ok) {
      throw new Error(
        `${urls[i]} could not be loaded (HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}). ` +
          (response.status === 404
            ? 'The site was built without this model file: put the model in models/house/ and run `npm start` again.'
            : ''),
      );
    }
  });
  const lengths = responses.map((response) => Number(response.headers.get('Content-Length') ?? 0));
  const total = lengths.every((length) => length > 0) ? lengths.reduce((a, b) => a + b, 0) : 0;
  let received = 0;
  let reported = 0;
  return Promise.all(
    responses.map(async (response) => {
      const reader = response.body!.getReader();
      const chunks: Uint8Array[] = [];
      let size = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        size += value.length;
        received += value.length;
        // A message per 64 KB at most: enough for a smooth bar, few enough to cost nothing.
        if (received - reported >= 65536 || received === total) {
          reported = received;
          onProgress({ received, total });
        }
      }
      const bytes = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      return bytes;
    }),
  );
}

function modelInfo(
  model: Model,
  tokenizer: Tokenizer,
  id: string,
  label: string,
  bytes: number,
  loadMs: number,
) {
  return {
    id,
    label,
    config: model.config,
    parameters: parameterCount(model),
    tokenizer: tokenizer.kind,
    kernels: describeKernels(selectKernels(current.choice)),
    bytes,
    loadMs,
  } satisfies ModelInfo;
}

const api = {
  /** Loads a Hugging Face Llama folder (config.json, model.safetensors, tokenizer.json) from `baseUrl`. */
  async loadHfFolder(
    baseUrl: string,
    id: string,
    label: string,
    onProgress: (progress: LoadProgress) => void,
  ): Promise<ModelInfo> {
    const started = performance.now();
    const names = ['config.json', 'model.safetensors', 'tokenizer.json'];
    const [configBytes, weights, tokenizerBytes] = await fetchAll(
      names.map((name) => `${baseUrl}${name}`),
      onProgress,
    );
    const { model, tokenizer } = modelFromFiles([
      { name: 'config.json', bytes: configBytes },
      { name: 'model.safetensors', bytes: weights },
      { name: 'tokenizer.json', bytes: tokenizerBytes },
    ]);
    const bytes = configBytes.length + weights.length + tokenizerBytes.length;
    return install(model, tokenizer, id, label, bytes, started);
  },

  /**
   * Loads the house model as it was at `step` of its training run (chapter 14's time-machine), with the
   * house tokenizer, under the site's root `base`: step 0 is rebuilt by randomModel from config.json and the
   * run's seed (exactly the weights the run started from); a step between is its Q8_0 GGUF file from
   * checkpoints/; the last step is the house model itself. Throws a specific message for a step the run did
   * not keep, or a file that does not belong to this house model.
   *
   * The GGUF's matrices stay in their 8-bit blocks and the engine multiplies them as stored (what `glassbox`
   * does with the same file in Node, so a figure's numbers can be checked against a Node run). They are not
   * dequantized here: the figures that read weights themselves (chapter 4's embedding table and map, chapter
   * 9's neurons, chapter 16's histograms) read `weight.data`, which a quantized Weight computes as float32 on
   * first read (quantizedWeight in src/engine/quant-matmul.ts), and the GGUF loader widens the token
   * embedding table and the norms on load. So every figure gets plain float32 arrays without the whole model
   * being held twice.
   */
  async loadHouseCheckpoint(
    base: string,
    step: number,
    onProgress: (progress: LoadProgress) => void,
  ): Promise<ModelInfo> {
    const started = performance.now();
    const index = await loadCheckpointIndex(base);
    if (!index) throw new Error('this site has no checkpoints of the house model');
    const entry = checkpointAt(index, step);
    const last = lastStep(index);
    if (!entry) {
      throw new Error(
        `the house model's run kept no checkpoint at step ${step.toLocaleString('en')} ` +
          `(it kept steps ${index.steps.map((kept) => kept.step.toLocaleString('en')).join(', ')})`,
      );
    }
    const folder = `${base}/models/house/`;
    if (step === last) return api.loadHfFolder(folder, 'house', 'the house model', onProgress);
    const urls = [`${folder}config.json`, `${folder}tokenizer.json`];
    if (entry.file) urls.push(`${base}/${CHECKPOINTS_PATH}${entry.file}`);
    const [configBytes, tokenizerBytes, ggufBytes] = await fetchAll(urls, onProgress);
    const houseConfig = parseHfConfig(new TextDecoder().decode(configBytes), 'config.json');
    let model: Model;
    if (!entry.file) model = randomModel(houseConfig, index.seed);
    else {
      model = modelFromFiles([{ name: entry.file, bytes: ggufBytes }]).model;
      const differs = (
        ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'seqLen'] as const
      ).find((key) => model.config[key] !== houseConfig[key]);
      if (differs) {
        throw new Error(
          `${CHECKPOINTS_PATH}${entry.file} does not belong to this house model: its ${differs} is ` +
            `${model.config[differs]}, the house model's ${houseConfig[differs]}`,
        );
      }
    }
    const tokenizer = tokenizerFromFile(
      { name: 'tokenizer.json', bytes: tokenizerBytes },
      model.config.vocabSize,
    );
    const bytes = configBytes.length + tokenizerBytes.length + (ggufBytes?.length ?? 0);
    return install(model, tokenizer, houseCheckpointId(step), checkpointLabel(step, last), bytes, started);
  },

  /**
   * Loads a model the reader chose from their disk: a GGUF file (tokenizer inside), a llama2.c checkpoint
   * (.bin) with its tokenizer (.bin, or a tokenizer.json), or a Hugging Face folder's config.json +
   * model.safetensors + tokenizer (or a .zip of that folder, as chapter 14 downloads it).
   * Throws a specific message for anything missing or malformed; the loaded model stays until this succeeds.
   */
  async loadFiles(files: NamedFile[]): Promise<ModelInfo> {
    const started = performance.now();
    const { model, tokenizer, source } = modelFromFiles(await withZipsOpened(files));
    const bytes = files.reduce((sum, file) => sum + file.bytes.length, 0);
    return install(model, tokenizer, 'local', source, bytes, started);
  },

  /**
   * Loads a model trained in this browser (chapter 14) from its last good checkpoint in IndexedDB, with the
   * tokenizer it was trained with.
   */
  async loadTrainedRun(runId: string): Promise<ModelInfo> {
    const started = performance.now();
    const { model, tokenizer, label, bytes } = await trainedModel(runId);
    return install(model, bpeTokenizer(tokenizer), trainedModelId(runId), label, bytes, started);
  },

  /**
   * Reads the reader's text: its tokens (BOS first, cut to the model's context) and one traced forward pass
   * over them with the chosen kernels, kept for every chapter's figures to slice (traceFor). This is the one
   * forward pass a keystroke costs.
   */
  read(prompt: string, kernelChoice: KernelChoice = 'auto'): Reading {
    const { model, tokenizer, info } = requireModel();
    current.choice = kernelChoice;
    info.kernels = describeKernels(selectKernels(kernelChoice));
    const t0 = performance.now();
    const allTokens = tokenizer.encode(prompt, { bos: true, eos: false });
    const tokens = allTokens.slice(0, model.config.seqLen);
    const t1 = performance.now();
    traceFor(tokens);
    const t2 = performance.now();
    return {
      prompt,
      tokens,
      pieces: tokens.map((token) => tokenizer.pieceLabel(token)),
      droppedTokens: allTokens.length - tokens.length,
      timings: { encodeMs: t1 - t0, forwardMs: t2 - t1 },
      kernels: info.kernels,
    };
  },

  /** How many traced forward passes the worker has run (for the e2e suite's one-pass-per-keystroke check). */
  tracedPasses(): number {
    return current.tracedPasses;
  },

  /**
   * Extends `prompt` token by token with the engine's own loop (generate.ts), seeded, calling `onStep`
   * after each token; stops early when `onStep` answers false, at the stop token, or at the context's end.
   */
  async generate(
    prompt: string,
    settings: GenerateSettings,
    onStep: (step: GeneratedStep) => boolean | Promise<boolean>,
  ): Promise<number> {
    const { model, tokenizer } = requireModel();
    const promptTokens = tokenizer.encode(prompt, { bos: true, eos: false }).slice(0, model.config.seqLen);
    const tokens = [...promptTokens];
    let added = 0;
    // `steps` counts positions, prompt included; the last sampled token sits at position `steps`.
    const steps = Math.min(model.config.seqLen, promptTokens.length - 1 + settings.maxTokens);
    if (steps < promptTokens.length) return 0;
    for (const step of generateTokens(model, promptTokens, {
      steps,
      sampling: settings.sampling,
      rng: new XorShiftRng(settings.seed),
      stopTokens: stopTokensFor(tokenizer),
      kernels: selectKernels(settings.kernels),
    })) {
      if (step.fromPrompt) continue;
      tokens.push(step.token);
      added++;
      const text = tokenizer.decode(tokens);
      if (!(await onStep({ token: step.token, piece: tokenizer.pieceLabel(step.token), text }))) break;
    }
    return added;
  },

  chapters,
};

function install(
  model: Model,
  tokenizer: Tokenizer,
  id: string,
  label: string,
  bytes: number,
  started: number,
) {
  invalidateAllKernels(); // the packed weights of a previous model are of no use now (on any thread count)
  const info = modelInfo(model, tokenizer, id, label, bytes, performance.now() - started);
  setLoaded({ model, tokenizer, info });
  return info;
}

export type EngineApi = typeof api;

Comlink.expose(api);
