/**
 * The engine's Web Worker: it holds the model, runs the forward pass off the main thread, and answers the
 * page through Comlink. Each answer carries only what the figures need; the full Trace of the last pass
 * stays here for figures that ask for a slice of it.
 */
import * as Comlink from 'comlink';
import { requireModel } from './worker-state.ts';
import { forward } from '../../../engine/forward.ts';
import { generateTokens } from '../../../engine/generate.ts';
import { KVCache } from '../../../engine/kv-cache.ts';
import { parameterCount, type Model } from '../../../engine/model.ts';
import { XorShiftRng } from '../../../engine/rng.ts';
import { temperatureSoftmax } from '../../../engine/sampling.ts';
import type { Trace } from '../../../engine/trace.ts';
import { FormatError } from '../../../formats/errors.ts';
import { parseHfLlama } from '../../../formats/hf-llama.ts';
import { parseLlama2cCheckpoint } from '../../../formats/llama2c.ts';
import { describeKernels, selectKernels } from '../../../kernels/select.ts';
import { bpeTokenizer, fromTokenizerJson } from '../../../tokenizers/bpe.ts';
import { llama2cTokenizer, parseLlama2cTokenizer } from '../../../tokenizers/llama2c.ts';
import type { Tokenizer } from '../../../tokenizers/tokenizer.ts';
import type {
  Analysis,
  GeneratedStep,
  GenerateSettings,
  KernelChoice,
  LoadProgress,
  ModelInfo,
  TopToken,
  TraceRow,
} from './protocol.ts';

const TOP_COUNT = 10;

import { current, setLoaded } from './worker-state.ts';
import { tokenizationViews } from './views/tokenization.ts';
import { embeddingViews } from './views/embeddings.ts';
import { neuronViews } from './views/neurons.ts';
import { positionViews } from './views/position.ts';

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
    const text = new TextDecoder();
    const model = parseHfLlama(text.decode(configBytes), weights, {
      config: 'config.json',
      weights: 'model.safetensors',
    });
    const tokenizer = bpeTokenizer(fromTokenizerJson(text.decode(tokenizerBytes), 'tokenizer.json'));
    const bytes = configBytes.length + weights.length + tokenizerBytes.length;
    return install(model, tokenizer, id, label, bytes, started);
  },

  /**
   * Loads a model the reader chose from their disk: a llama2.c checkpoint (.bin) with its tokenizer
   * (.bin, or a tokenizer.json), or a Hugging Face folder's config.json + model.safetensors + tokenizer.
   * Throws a specific message for anything missing or malformed; the loaded model stays until this succeeds.
   */
  loadFiles(files: LocalFile[]): ModelInfo {
    const started = performance.now();
    const { model, tokenizer, source } = modelFromFiles(files);
    const bytes = files.reduce((sum, file) => sum + file.bytes.length, 0);
    return install(model, tokenizer, 'local', source, bytes, started);
  },

  /** One traced forward pass over `prompt` (BOS first) with the chosen kernels; returns chapter 1's numbers. */
  analyze(prompt: string, kernelChoice: KernelChoice = 'auto'): Analysis {
    const { model, tokenizer, info } = requireModel();
    current.choice = kernelChoice;
    const kernels = selectKernels(kernelChoice);
    info.kernels = describeKernels(kernels);
    const t0 = performance.now();
    const allTokens = tokenizer.encode(prompt, { bos: true, eos: false });
    const tokens = allTokens.slice(0, model.config.seqLen);
    const t1 = performance.now();
    const { logits, trace } = forward(model, tokens, new KVCache(model.config), {
      trace: true,
      logits: 'last',
      kernels,
    });
    const t2 = performance.now();
    current.lastPass = { tokens, trace: trace };
    const probabilities = temperatureSoftmax(logits, 1);
    const stream = residualStream(trace);
    const analysis: Analysis = {
      prompt,
      tokens,
      pieces: tokens.map((token) => tokenizer.pieceLabel(token)),
      droppedTokens: allTokens.length - tokens.length,
      stream,
      logitsShape: [...trace.logits.shape],
      lastLogits: logits,
      probabilities,
      top: topTokens(logits, probabilities, tokenizer),
      timings: { encodeMs: t1 - t0, forwardMs: t2 - t1 },
      kernels: info.kernels,
    };
    return Comlink.transfer(analysis, [
      logits.buffer,
      probabilities.buffer,
      ...stream.map((row) => row.lastRow.buffer as ArrayBuffer),
    ]);
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
      sampling: { temperature: settings.temperature },
      rng: new XorShiftRng(settings.seed),
      stopTokens: [tokenizer.bosId, tokenizer.eosId],
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

  // The chapters' own questions, each in its own module (views/): slices of a Trace or of the weights.
  ...tokenizationViews,
  ...embeddingViews,
  ...neuronViews,
  ...positionViews,
};

/** A file the reader chose, read by the page. */
export interface LocalFile {
  name: string;
  bytes: Uint8Array;
}

function install(
  model: Model,
  tokenizer: Tokenizer,
  id: string,
  label: string,
  bytes: number,
  started: number,
) {
  if (tokenizer.vocabSize !== model.config.vocabSize) {
    throw new FormatError(
      'tokenizer',
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${model.config.vocabSize}: they do not belong together`,
    );
  }
  selectKernels('auto').invalidateAll(); // the packed weights of a previous model are of no use now
  const info = modelInfo(model, tokenizer, id, label, bytes, performance.now() - started);
  setLoaded({ model, tokenizer, info });
  return info;
}

/** Tells the files apart by name (and, for two .bin files named alike, by size). */
function modelFromFiles(files: LocalFile[]): { model: Model; tokenizer: Tokenizer; source: string } {
  const named = (test: RegExp) => files.filter((file) => test.test(file.name));
  const text = (file: LocalFile) => new TextDecoder().decode(file.bytes);
  const safetensors = named(/\.safetensors$/i)[0];
  const config = files.find((file) => file.name.toLowerCase() === 'config.json');
  const tokenizerJson = named(/\.json$/i).find((file) => file !== config);
  // llama2.c tokenizers are named like tokenizer.bin or tok512.bin; otherwise the checkpoint is the larger file.
  const looksLikeTokenizer = (file: LocalFile) => /tok/i.test(file.name);
  const bins = named(/\.bin$/i).sort(
    (a, b) =>
      Number(looksLikeTokenizer(a)) - Number(looksLikeTokenizer(b)) || b.bytes.length - a.bytes.length,
  );
  const describe = files.map((file) => file.name).join(', ') || 'no files';

  let model: Model;
  let rest: LocalFile[];
  let source: string;
  if (safetensors) {
    if (!config) {
      throw new FormatError(
        safetensors.name,
        'a safetensors model needs its config.json: choose both files together',
      );
    }
    model = parseHfLlama(text(config), safetensors.bytes, { config: config.name, weights: safetensors.name });
    rest = bins;
    source = safetensors.name;
  } else if (bins.length > 0) {
    model = parseLlama2cCheckpoint(bins[0].bytes, bins[0].name);
    rest = bins.slice(1);
    source = bins[0].name;
  } else {
    throw new FormatError(
      describe,
      'no model here: choose a llama2.c .bin checkpoint, or config.json with model.safetensors',
    );
  }
  if (tokenizerJson) {
    return {
      model,
      source,
      tokenizer: bpeTokenizer(fromTokenizerJson(text(tokenizerJson), tokenizerJson.name)),
    };
  }
  if (rest[0]) {
    const tok = parseLlama2cTokenizer(rest[0].bytes, rest[0].name, model.config.vocabSize);
    return { model, source, tokenizer: llama2cTokenizer(tok) };
  }
  throw new FormatError(
    describe,
    'no tokenizer here: choose the tokenizer file too (tokenizer.json, or a llama2.c tokenizer .bin)',
  );
}

/** The last token's vector at each stage of the residual stream, with the Trace's names and shapes. */
function residualStream(trace: Trace): TraceRow[] {
  const lastRow = (name: string, tensor: { data: Float32Array; shape: readonly number[] }): TraceRow => {
    const width = tensor.shape[tensor.shape.length - 1];
    return { name, shape: [...tensor.shape], lastRow: tensor.data.slice(tensor.data.length - width) };
  };
  return [
    lastRow('embeddings', trace.embeddings),
    ...trace.layers.map((layer, l) => lastRow(`layers[${l}].residualAfterFfn`, layer.residualAfterFfn)),
    lastRow('finalNorm', trace.finalNorm),
  ];
}

/** The TOP_COUNT highest logits, most likely first (ties keep vocabulary order). */
function topTokens(logits: Float32Array, probabilities: Float32Array, tokenizer: Tokenizer): TopToken[] {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  return order.slice(0, TOP_COUNT).map((token) => ({
    token,
    piece: tokenizer.pieceLabel(token),
    text: appendableText(tokenizer, token),
    logit: logits[token],
    probability: probabilities[token],
  }));
}

function appendableText(tokenizer: Tokenizer, token: number): string {
  const text = tokenizer.decode([token]);
  return text.includes('\uFFFD') ? '' : text;
}

export type EngineApi = typeof api;

Comlink.expose(api);
