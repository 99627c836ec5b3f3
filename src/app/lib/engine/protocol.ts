/**
 * What the page and the engine worker say to each other (through Comlink): plain data, typed. Large
 * arrays cross the boundary once, as transferred typed arrays; everything else is small.
 */
import type { ModelConfig } from '../../../engine/model.ts';

/** Which kernels the reader asked for (selectKernels): the fastest available, WebAssembly, or the reference. */
export type KernelChoice = 'auto' | 'wasm' | 'ts';

export const KERNEL_CHOICES: readonly KernelChoice[] = ['auto', 'wasm', 'ts'];

export interface ModelInfo {
  /** Short name for the URL and messages, e.g. "house". */
  id: string;
  /** What the reader sees, e.g. "the house model (World English Bible)". */
  label: string;
  config: ModelConfig;
  parameters: number;
  tokenizer: string;
  /** Which kernels compute the products (describeKernels). */
  kernels: string;
  /** Bytes downloaded to load it. */
  bytes: number;
  loadMs: number;
}

export interface LoadProgress {
  received: number;
  /** 0 until every response's length is known. */
  total: number;
}

export interface TopToken {
  token: number;
  /** The token as the reader should see it (pieceLabel). */
  piece: string;
  /** The text it adds when appended to the reader's text; '' when it is not whole characters (a byte of a
   * longer character) or a special token. */
  text: string;
  logit: number;
  probability: number;
}

/** One tensor of the Trace, as a figure needs it: its name and shape, and its last row (the last token). */
export interface TraceRow {
  /** The Trace's name for it, e.g. "layers[2].residualAfterFfn". */
  name: string;
  shape: number[];
  /** The row of the last position: what the model has made of the last token at this stage. */
  lastRow: Float32Array;
}

/** One forward pass over the reader's text: what the figures of chapter 1 show. */
export interface Analysis {
  prompt: string;
  /** The ids the model read, BOS first (at most seqLen of them). */
  tokens: number[];
  pieces: string[];
  /** Tokens the text had beyond the model's context (dropped from the end), 0 normally. */
  droppedTokens: number;
  /** The residual stream at each stage, from the Trace: embeddings, each layer's output, the final norm. */
  stream: TraceRow[];
  /** The shape of the Trace's logits, [T, vocabSize]. */
  logitsShape: number[];
  /** logits[-1]: one score per vocabulary entry for the position after the last token. */
  lastLogits: Float32Array;
  /** softmax(logits[-1]) at temperature 1. */
  probabilities: Float32Array;
  /** The ten most likely next tokens, most likely first. */
  top: TopToken[];
  timings: { encodeMs: number; forwardMs: number };
  /** Which kernels computed this pass (describeKernels of the chosen set). */
  kernels: string;
}

export interface GenerateSettings {
  /** New tokens to add at most. */
  maxTokens: number;
  temperature: number;
  seed: number;
  kernels: KernelChoice;
}

export interface GeneratedStep {
  token: number;
  piece: string;
  /** The whole text after this token (decoded from all tokens, so multi-byte characters come out whole). */
  text: string;
}
