/**
 * Chapter 14's training presets: small Llama configurations the page trains from scratch. Each is a full
 * RunShape (src/engine/train/prepare.ts), the same settings `glassbox train` takes, so a page run can be
 * repeated in Node (`glassbox train --dim … --kernels wasm-simd`) and gives the same bits.
 */
import type { RunShape } from '../../../engine/train/prepare.ts';

export interface Preset {
  id: string;
  name: string;
  /** What it is for, in a few words. */
  note: string;
  settings: RunShape;
  /** A sample every this many steps. */
  sampleEvery: number;
}

const COMMON = {
  minLearningRate: 3e-4,
  weightDecay: 0.1,
  maxGradNorm: 1,
  seed: 1337,
  shards: 2,
} as const;

export const PRESETS: readonly Preset[] = [
  {
    id: 'small',
    name: 'Small (2 layers × 64)',
    note: 'readable-ish words within two minutes on two cores',
    settings: {
      ...COMMON,
      vocabSize: 512,
      dim: 64,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      hidden: 192,
      seqLen: 64,
      batchSize: 16,
      steps: 600,
      learningRate: 3e-3,
      warmupSteps: 20,
      evalEvery: 25,
      checkpointEvery: 50,
    },
    sampleEvery: 25,
  },
  {
    id: 'tiny',
    name: 'Tiny (1 layer × 32)',
    note: 'seconds per hundred steps; letters and short words',
    settings: {
      ...COMMON,
      vocabSize: 300,
      dim: 32,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      hidden: 96,
      seqLen: 32,
      batchSize: 8,
      steps: 300,
      learningRate: 5e-3,
      warmupSteps: 10,
      evalEvery: 20,
      checkpointEvery: 20,
    },
    sampleEvery: 20,
  },
  {
    id: 'medium',
    name: 'Medium (4 layers × 96)',
    note: 'about ten minutes; better sentences',
    settings: {
      ...COMMON,
      vocabSize: 1024,
      dim: 96,
      layers: 4,
      heads: 4,
      kvHeads: 2,
      hidden: 256,
      seqLen: 96,
      batchSize: 16,
      steps: 1500,
      learningRate: 2e-3,
      warmupSteps: 50,
      evalEvery: 50,
      checkpointEvery: 50,
    },
    sampleEvery: 50,
  },
];

export const DEFAULT_PRESET = PRESETS[0];

/** The book the page offers first. */
export const DEFAULT_BOOK = 'web-genesis';

/** The fields a reader may edit, in order, with their labels. */
export const FIELDS: readonly { key: keyof RunShape; label: string; step?: number }[] = [
  { key: 'layers', label: 'layers' },
  { key: 'dim', label: 'width (dim)' },
  { key: 'heads', label: 'heads' },
  { key: 'kvHeads', label: 'key/value heads' },
  { key: 'hidden', label: 'FFN width' },
  { key: 'seqLen', label: 'context (tokens)' },
  { key: 'vocabSize', label: 'vocabulary' },
  { key: 'batchSize', label: 'batch (sequences)' },
  { key: 'steps', label: 'steps' },
  { key: 'learningRate', label: 'learning rate', step: 0.0001 },
];

/** A fine-tune's steps and schedule: a few steps with a small learning rate, so that it keeps what it knew. */
export const FINE_TUNE = {
  steps: 24,
  batchSize: 8,
  /** Tokens per window (at most the model's context). */
  seqLen: 64,
  learningRate: 1e-4,
  minLearningRate: 1e-5,
  warmupSteps: 5,
  weightDecay: 0,
  maxGradNorm: 1,
  evalEvery: 8,
  checkpointEvery: 8,
  seed: 1337,
  shards: 2,
  /** Tokens of held-out text whose surprise is read before and after. */
  probeTokens: 48,
} as const;
