/**
 * Chapter 16 (quantization): what its figures ask the engine worker. The loaded model's matrices (their
 * histograms, one row, the group-size sweep, the model's largest weight), and the model quantized to each type:
 * its bytes from the block formats and its perplexity on held-out text, once per model (cached here); per
 * keystroke, how many of the reader's next-token predictions flip against float32 (the float32 logits are the
 * Trace's, the quantized ones one untraced pass each); and the reader's text continued greedily by f32 and q4_0.
 *
 * The perplexities, flips and continuations use the weights stored in each type and read back as float32
 * (roundTripModel), multiplied by the float32 kernels: fast enough for every keystroke, and the numbers the
 * quantized engine multiplies with (it also rounds each activation vector to 8 bits, as llama.cpp does). The
 * decode speed, on the reader's request, is the engine running the stored blocks directly (quantizeModel).
 */
import { HELD_OUT_CHAPTERS, HELD_OUT_TEXT } from '../../../analysis/held-out.ts';
import { perplexity } from '../../../analysis/perplexity.ts';
import {
  groupSizeSweep,
  histogram,
  matrixByName,
  modelBytes,
  MODEL_TYPES,
  outlierBlock,
  predictionFlips,
  roundTripModel,
  weightMatrices,
  firstDifference,
  type GroupSizeRow,
  type Histogram,
  type ModelType,
  type OutlierBlock,
  type OutlierPick,
} from '../../../analysis/quantization.ts';
import { forward } from '../../../engine/forward.ts';
import { quantizeModel, weightBytes } from '../../../engine/quant-matmul.ts';
import { generateTokens, stopTokensFor } from '../../../engine/generate.ts';
import { KVCache } from '../../../engine/kv-cache.ts';
import type { Model } from '../../../engine/model.ts';
import { XorShiftRng } from '../../../engine/rng.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel, traceFor, type Loaded } from '../../lib/worker/state.ts';

export interface MatrixInfo {
  name: string;
  shape: number[];
}

export interface HistogramAnswer extends Histogram {
  name: string;
  shape: number[];
}

export interface RowAnswer {
  name: string;
  shape: number[];
  row: number;
  values: Float32Array;
}

export interface Evaluation {
  type: ModelType;
  /** Bytes of the weights stored as `type`, and as f32. */
  bytes: number;
  f32Bytes: number;
  keptAtF16: string[];
  /** Perplexity on the held-out excerpt (every token predicted once, in windows of the context). */
  perplexity: number;
  nll: number;
  tokens: number;
  windows: number;
  heldOut: string[];
}

export interface FlipRow {
  type: ModelType;
  /** Positions whose most likely next token differs from f32's. */
  flipped: number[];
  /** At each flipped position: f32's top token and this type's. */
  changes: { position: number; f32: string; quantized: string }[];
}

export interface FlipsAnswer {
  tokens: number[];
  /** f32's most likely next token at each position. */
  reference: number[];
  rows: FlipRow[];
}

export interface SideBySide {
  tokens: number[];
  steps: number;
  /** The prompt, decoded. */
  prompt: string;
  /** The new tokens' pieces, f32's and q4_0's. */
  f32: { tokens: number[]; pieces: string[] };
  q4: { tokens: number[]; pieces: string[] };
  /** Index (into the new tokens) of the first that differs, or undefined. */
  firstDifference: number | undefined;
}

export interface SpeedRow {
  type: ModelType;
  /** Bytes of weights the engine reads for each token, as it stores them. */
  bytes: number;
  /** Mean milliseconds per decode step (one token read, its logits out), over `steps` steps. */
  msPerToken: number;
  steps: number;
  /** The tokens those greedy steps chose. */
  tokens: number[];
  /** Which code multiplied the weights. */
  code: string;
}

export interface SpeedAnswer {
  tokens: number[];
  rows: SpeedRow[];
}

/** What the worker keeps for the loaded model: every quantized copy and every answer that costs time. */
interface Cache {
  loaded: Loaded;
  models: Map<ModelType, Model>;
  /** The model as the engine runs it stored in each type (quantizeModel), for the speed measurement. */
  stored: Map<ModelType, Model>;
  evaluations: Map<ModelType, Evaluation>;
  histograms: Map<string, HistogramAnswer>;
  sweeps: Map<string, GroupSizeRow[]>;
  outliers: Map<OutlierPick, OutlierBlock>;
}
let cache: Cache | undefined;

function cached(): Cache {
  const loaded = requireModel();
  if (cache?.loaded !== loaded) {
    cache = {
      loaded,
      models: new Map(),
      stored: new Map(),
      evaluations: new Map(),
      histograms: new Map(),
      sweeps: new Map(),
      outliers: new Map(),
    };
  }
  return cache;
}

/** The loaded model with its matrices stored as `type` and read back: made once per model and type. */
function modelAs(type: ModelType): Model {
  const store = cached();
  let model = store.models.get(type);
  if (!model) {
    model = roundTripModel(store.loaded.model, type);
    store.models.set(type, model);
  }
  return model;
}

/** The loaded model with its matrices stored as `type`, run as stored by the engine: made once per type. */
function storedAs(type: ModelType): Model {
  const store = cached();
  let model = store.stored.get(type);
  if (!model) {
    // f32: the dense float32 weights (a model opened from a quantized file would otherwise run its blocks).
    model = type === 'f32' ? modelAs('f32') : quantizeModel(store.loaded.model, type);
    store.stored.set(type, model);
  }
  return model;
}

const kernels = () => selectKernels(current.choice);

/** The most likely next token at each position: f32's from the Trace, the quantized model's from one pass. */
function allLogits(model: Model, tokens: readonly number[]): Float32Array {
  return forward(model, tokens, new KVCache(model.config), { logits: 'all', kernels: kernels() }).logits;
}

function greedy(model: Model, tokens: readonly number[], steps: number): number[] {
  const { tokenizer } = requireModel();
  const out: number[] = [];
  for (const step of generateTokens(model, tokens, {
    steps: Math.min(model.config.seqLen, tokens.length - 1 + steps), // positions, the prompt's included
    sampling: { temperature: 0 },
    rng: new XorShiftRng(1),
    stopTokens: stopTokensFor(tokenizer),
    kernels: kernels(),
  })) {
    if (!step.fromPrompt) out.push(step.token);
  }
  return out.filter((token) => !stopTokensFor(tokenizer).includes(token));
}

export const handlers = {
  /** The model's weight matrices, embedding first. */
  matrices(): MatrixInfo[] {
    return weightMatrices(requireModel().model).map(({ name, tensor }) => ({
      name,
      shape: [...tensor.shape],
    }));
  },

  /** A histogram of matrix `name` in `bins` bins, with its spread and the values beyond 4 standard deviations. */
  histogram(name: string, bins: number): HistogramAnswer {
    const store = cached();
    const key = `${name}:${bins}`;
    let answer = store.histograms.get(key);
    if (!answer) {
      const tensor = matrixByName(store.loaded.model, name);
      answer = { name, shape: [...tensor.shape], ...histogram(tensor.data, bins) };
      store.histograms.set(key, answer);
    }
    return answer;
  },

  /** Row `row` of matrix `name` (clamped to its rows). */
  row(name: string, row: number): RowAnswer {
    const tensor = matrixByName(requireModel().model, name);
    const [rows, columns] = tensor.shape;
    const r = Math.max(0, Math.min(rows - 1, Math.floor(row)));
    return {
      name,
      shape: [...tensor.shape],
      row: r,
      values: tensor.data.slice(r * columns, (r + 1) * columns),
    };
  },

  /** Rounding error and bytes per weight of matrix `name` at every group size, for each scheme. */
  sweep(name: string): { name: string; rows: GroupSizeRow[] } {
    const store = cached();
    let rows = store.sweeps.get(name);
    if (!rows) {
      rows = groupSizeSweep(matrixByName(store.loaded.model, name).data);
      store.sweeps.set(name, rows);
    }
    return { name, rows };
  },

  /** The model's largest weight, or the one that stands out most in its block, and its q4_0 block with and without it. */
  outlier(pick: OutlierPick): OutlierBlock {
    const store = cached();
    let answer = store.outliers.get(pick);
    if (!answer) {
      answer = outlierBlock(store.loaded.model, pick);
      store.outliers.set(pick, answer);
    }
    return answer;
  },

  /** The model stored as `type`: its bytes and its perplexity on the held-out excerpt (once per model). */
  evaluate(type: ModelType): Evaluation {
    if (!MODEL_TYPES.includes(type)) throw new Error(`${type} is not a type this chapter compares`);
    const store = cached();
    let answer = store.evaluations.get(type);
    if (!answer) {
      const { tokenizer, model } = store.loaded;
      const ids = tokenizer.encode(HELD_OUT_TEXT, { bos: false, eos: false });
      // The context is the model's; a text longer than it is read in windows (perplexity.ts).
      const result = perplexity(modelAs(type), ids, tokenizer.bosId, kernels());
      const bytes = modelBytes(model, type);
      answer = {
        type,
        bytes: bytes.bytes,
        f32Bytes: bytes.f32Bytes,
        keptAtF16: bytes.keptAtF16,
        perplexity: result.perplexity,
        nll: result.nll,
        tokens: result.tokens,
        windows: result.windows,
        heldOut: HELD_OUT_CHAPTERS,
      };
      store.evaluations.set(type, answer);
    }
    return answer;
  },

  /**
   * How many of the reader's next-token predictions flip against f32: f32's logits from the Trace of the text
   * (the pass every figure shares), each quantized model's from one untraced pass.
   */
  flips(tokens: number[]): FlipsAnswer {
    const { model, tokenizer } = requireModel();
    const V = model.config.vocabSize;
    const reference = traceFor(tokens).logits.data;
    let top: number[] = [];
    const rows = MODEL_TYPES.filter((type) => type !== 'f32').map((type) => {
      const flips = predictionFlips(reference, allLogits(modelAs(type), tokens), V);
      top = flips.reference;
      return {
        type,
        flipped: flips.flipped,
        changes: flips.flipped.map((position) => ({
          position,
          f32: tokenizer.pieceLabel(flips.reference[position]),
          quantized: tokenizer.pieceLabel(flips.other[position]),
        })),
      };
    });
    return { tokens: [...tokens], reference: top, rows };
  },

  /**
   * Decode speed of the model stored in each type, the engine multiplying the stored blocks directly: the
   * reader's text read once (not timed), then `steps` greedy decode steps of one token each, timed.
   */
  speed(tokens: number[], steps: number): SpeedAnswer {
    const set = kernels();
    const rows = MODEL_TYPES.map((type): SpeedRow => {
      const model = storedAs(type);
      const cache = new KVCache(model.config);
      const room = Math.max(0, Math.min(steps, model.config.seqLen - tokens.length));
      let { logits } = forward(model, tokens, cache, { logits: 'last', kernels: set });
      const chosen: number[] = [];
      const started = performance.now();
      for (let step = 0; step < room; step++) {
        let best = 0;
        for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        chosen.push(best);
        ({ logits } = forward(model, [best], cache, { logits: 'last', kernels: set }));
      }
      const elapsed = performance.now() - started;
      return {
        type,
        bytes: weightBytes(model),
        msPerToken: room > 0 ? elapsed / room : NaN,
        steps: room,
        tokens: chosen,
        code: type === 'f32' ? set.name : set.quantizedMatmul ? set.name : 'readable TypeScript',
      };
    });
    return { tokens: [...tokens], rows };
  },

  /** The reader's text continued greedily for `steps` tokens by f32 and by q4_0 (to the end of the context). */
  sideBySide(tokens: number[], steps: number): SideBySide {
    const { model, tokenizer } = requireModel();
    const f32 = greedy(model, tokens, steps);
    const q4 = greedy(modelAs('q4_0'), tokens, steps);
    // Each new token as the text it adds (decoding the whole text each time, so a character split over byte
    // tokens comes out whole where it completes).
    const pieces = (ids: number[]) =>
      ids.map((_, i) =>
        tokenizer
          .decode([...tokens, ...ids.slice(0, i + 1)])
          .slice(tokenizer.decode([...tokens, ...ids.slice(0, i)]).length),
      );
    return {
      tokens: [...tokens],
      steps,
      prompt: tokenizer.decode(tokens),
      f32: { tokens: f32, pieces: pieces(f32) },
      q4: { tokens: q4, pieces: pieces(q4) },
      firstDifference: firstDifference(f32, q4),
    };
  },
};
