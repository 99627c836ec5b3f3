/**
 * What the page and the engine worker say to each other (through Comlink): plain data, typed. Large
 * arrays cross the boundary once, as transferred typed arrays; everything else is small.
 */
import type { SamplingSettings } from '../../../engine/sampling.ts';
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

/**
 * The reader's text as the model read it: one traced forward pass ran in the worker (every chapter's
 * figures slice its Trace), and this is what every page needs of it.
 */
export interface Reading {
  prompt: string;
  /** The ids the model read, BOS first (at most seqLen of them). */
  tokens: number[];
  pieces: string[];
  /** Tokens the text had beyond the model's context (dropped from the end), 0 normally. */
  droppedTokens: number;
  timings: { encodeMs: number; forwardMs: number };
  /** Which kernels computed this pass (describeKernels of the chosen set). */
  kernels: string;
}

export interface GenerateSettings {
  /** New tokens to add at most. */
  maxTokens: number;
  /** Temperature and the filters (top-k, top-p, min-p) of the reader's settings, as the CLI takes them. */
  sampling: SamplingSettings;
  seed: number;
  kernels: KernelChoice;
}

export interface GeneratedStep {
  token: number;
  piece: string;
  /** The whole text after this token (decoded from all tokens, so multi-byte characters come out whole). */
  text: string;
}
