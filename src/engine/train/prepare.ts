/**
 * A training run's settings and its data, before the loop (loop.ts) starts: the pure part of `glassbox
 * train`, shared with the page that trains in a browser worker, so that both turn the same text and the same
 * settings into the same tokens and the same model.
 *
 *   text → train/validation split → tokenizer (given, or trained on the training split) → token ids
 *        → the model's configuration
 *
 * No I/O: Node reads the text from a file, the page from the reader.
 */
import { splitCorpus } from '../../corpus/split.ts';
import { trainBpe, type BpeTokenizer } from '../../tokenizers/bpe.ts';
import type { Tokenizer } from '../../tokenizers/tokenizer.ts';
import type { ModelConfig } from '../model.ts';
import type { LoopSettings } from './loop.ts';

/** The model's shape and the run's seed and shards: everything but the text that fixes a run's numbers. */
export interface RunShape extends LoopSettings {
  vocabSize: number;
  dim: number;
  layers: number;
  heads: number;
  kvHeads: number;
  hidden: number;
  seed: number;
  /**
   * Each batch is cut into this many shards whose gradients are averaged (shards.ts); threads compute them
   * at once. The shards, not the threads, fix the numbers. Runs from before this setting existed used one.
   */
  shards: number;
}

/**
 * Holds out whole blank-line-separated blocks (chapters of our corpus) by the corpus's seeded rule; a text
 * without such blocks (or where the rule picks none) holds out its last 5% instead.
 */
export function trainValidationSplit(text: string): { train: string[]; val: string[] } {
  const split = splitCorpus(text);
  if (split.trainChapters.length > 0 && split.valChapters.length > 0) {
    return { train: split.trainChapters.map((c) => c.text), val: split.valChapters.map((c) => c.text) };
  }
  const cut = Math.floor(text.length * 0.95);
  return { train: [text.slice(0, cut)], val: [text.slice(cut)] };
}

/** A BPE tokenizer learned from the training documents (joined by blank lines, as the text had them). */
export function trainRunTokenizer(trainDocuments: readonly string[], vocabSize: number): BpeTokenizer {
  return trainBpe(trainDocuments.join('\n\n'), { vocabSize }).tokenizer;
}

/** Each document starts with BOS, so a generation from BOS alone begins a new document. */
export function tokenize(tokenizer: Tokenizer, documents: readonly string[]): Int32Array {
  const ids: number[] = [];
  for (const document of documents) {
    for (const id of tokenizer.encode(document, { bos: true, eos: false })) ids.push(id);
  }
  return Int32Array.from(ids);
}

export function modelConfig(settings: RunShape, vocabSize: number): ModelConfig {
  return {
    dim: settings.dim,
    hiddenDim: settings.hidden,
    nLayers: settings.layers,
    nHeads: settings.heads,
    nKvHeads: settings.kvHeads,
    vocabSize,
    seqLen: settings.seqLen,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeLayout: 'half', // Hugging Face's layout, so the saved model is a standard Llama checkpoint
    sharedClassifier: true,
  };
}

/** Parameters of the model `settings` describe (classifier shared with the embedding, as training makes it). */
export function runParameterCount(s: RunShape): number {
  const kvDim = (s.dim / s.heads) * s.kvHeads;
  const perLayer = 2 * s.dim * s.dim + 2 * s.dim * kvDim + 3 * s.dim * s.hidden + 2 * s.dim;
  return s.vocabSize * s.dim + s.layers * perLayer + s.dim;
}

/**
 * What is wrong with a run's settings, in one sentence naming the setting, or undefined when they can
 * start: a setting that would only fail later (a width the heads cannot share, more shards than sequences)
 * is refused before anything runs.
 */
export function runSettingsProblem(s: RunShape): string | undefined {
  const whole: (keyof RunShape)[] = [
    'dim',
    'layers',
    'heads',
    'kvHeads',
    'hidden',
    'seqLen',
    'batchSize',
    'steps',
    'evalEvery',
    'checkpointEvery',
    'shards',
    'vocabSize',
  ];
  for (const key of whole) {
    const value = s[key];
    if (!(Number.isSafeInteger(value) && value >= 1))
      return `${key} must be a whole number ≥ 1, got ${value}`;
  }
  if (!(Number.isSafeInteger(s.warmupSteps) && s.warmupSteps >= 0))
    return `warmupSteps must be a whole number ≥ 0, got ${s.warmupSteps}`;
  for (const key of ['learningRate', 'minLearningRate', 'weightDecay', 'maxGradNorm'] as const) {
    if (!(s[key] >= 0 && Number.isFinite(s[key]))) return `${key} must be a number ≥ 0, got ${s[key]}`;
  }
  if (s.dim % s.heads !== 0) {
    return `the width ${s.dim} cannot be shared by ${s.heads} heads: it must be divisible by the number of heads`;
  }
  if ((s.dim / s.heads) % 2 !== 0) {
    return `each head would be ${s.dim / s.heads} wide, but RoPE rotates pairs of numbers: the head width must be even`;
  }
  if (s.heads % s.kvHeads !== 0) {
    return `${s.heads} query heads cannot share ${s.kvHeads} key/value heads: the heads must be a multiple of the key/value heads`;
  }
  if (s.shards > s.batchSize) return `${s.shards} shards cannot cut a batch of ${s.batchSize} sequences`;
  if (s.vocabSize < 258)
    return `the vocabulary must hold at least the 256 bytes and 2 special tokens (258), got ${s.vocabSize}`;
  return undefined;
}
