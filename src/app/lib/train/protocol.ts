/**
 * What the page and the trainer worker (trainer-worker.ts) say to each other through Comlink: plain data.
 */
import type { ModelConfig } from '../../../engine/model.ts';
import type { TrainingLogLine } from '../../../engine/train/loop.ts';
import type { RunShape } from '../../../engine/train/prepare.ts';
import type { KernelPreference } from '../../../kernels/select.ts';

/** Where a run's tokenizer comes from: learned from its own training text, or the house model's. */
export type TokenizerSource = { kind: 'trained' } | { kind: 'given'; name: string; json: string };

/** Everything that starts a run from scratch: the text, the settings, and how to compute. */
export interface StartRequest {
  /** A new run's key in IndexedDB. */
  runId: string;
  /** What the text is, in words, e.g. "The Gospel of Mark (World English Bible)". */
  label: string;
  text: string;
  settings: RunShape;
  tokenizer: TokenizerSource;
  kernels: KernelPreference;
  /** Threads the reader's page may use for the shards (2 where it is cross-origin isolated). */
  threads: number;
  /** A sample every this many steps (and at the last step). */
  sampleEvery: number;
  /** Tokens per sample, start token excluded. */
  sampleTokens: number;
  /**
   * Start from these weights instead of random ones (fine-tuning): a Hugging Face folder's config.json and
   * model.safetensors, whose tokenizer is `tokenizer`.
   */
  initial?: { configJson: string; safetensors: Uint8Array };
}

/** What the trainer knows about the run it holds, once its data is ready. */
export interface RunInfo {
  runId: string;
  label: string;
  settings: RunShape;
  config: ModelConfig;
  parameters: number;
  trainTokens: number;
  validationTokens: number;
  /** "trained on the text (N tokens)" or the given tokenizer's name. */
  tokenizer: string;
  /** Seconds it took to learn the tokenizer (0 when one was given). */
  tokenizerSeconds: number;
  /** Worker threads computing the shards (1: the trainer computes them itself). */
  threads: number;
  /** Which kernels compute the products (the kernel set's name). */
  kernels: string;
  /** A sample every this many steps. */
  sampleEvery: number;
  /** The optimizer's step count now (0 for a new run). */
  step: number;
  /** The log so far (a resumed run's earlier lines too). */
  log: TrainingLogLine[];
  samples: Sample[];
  /** True once the run has trained all its steps or was stopped for good. */
  finished: boolean;
  /** Fine-tuned from this model, if any. */
  initialModel?: string;
  /** The tokens the embedding map follows, chosen once per run. */
  mapTokens: MapTokens;
}

/**
 * The tokens of the embedding map (src/analysis/embedding-map.ts): the run's most frequent tokens in its
 * training text, most frequent first, with their pieces and kinds (indices into TOKEN_CATEGORIES).
 */
export interface MapTokens {
  tokens: number[];
  pieces: string[];
  categories: number[];
}

export interface StepUpdate {
  line: TrainingLogLine;
  lastValLoss: number | undefined;
  secondsPerStep: number;
}

export interface Sample {
  step: number;
  text: string;
  /** Chapter 8's scores of every head at this step (layer-major), on fixed probe texts. */
  heads?: HeadScores[];
  /** Chapter 10's logit lens at the last token of the reader's text, at this step. */
  lens?: LensReading;
  /** Chapter 4's embedding map of the run's frequent tokens (RunInfo.mapTokens), at this step. */
  embeddings?: EmbeddingReading;
}

/** The embedding map of RunInfo.mapTokens with the weights of one step (src/analysis/embedding-map.ts). */
export interface EmbeddingReading {
  /** [N, 2], row-major: token i's place on the principal plane, turned to match the previous sample's. */
  points: Float32Array;
  /** The share of these rows' variance that the plane keeps. */
  planeShare: number;
  /** For each token, the index (into mapTokens) of its nearest other token, by cosine in the full space. */
  nearest: Int32Array;
  /** How many tokens' nearest neighbour is of their own kind, and that as a share of them. */
  same: number;
  share: number;
  /** The share a random dealing of the same kinds would give on average. */
  chance: number;
  /** Milliseconds the trainer spent on it (PCA, projection, alignment, nearest neighbours). */
  computeMs: number;
}

/** The logit lens (src/analysis/lens.ts) at the last position of the reader's text. */
export interface LensReading {
  /** The reader's text as the run's tokenizer cuts it (at most the context), BOS first. */
  pieces: string[];
  /** One row per boundary of the residual stream: its name, the most likely next token read there, and its p. */
  rows: { name: string; piece: string; probability: number }[];
}

/** One head's pattern scores (src/analysis/heads.ts) as training goes. */
export interface HeadScores {
  layer: number;
  head: number;
  /** Mean weight on the previous token, over the start of the held-out text. */
  previousToken: number;
  /** Mean weight on the token after the earlier occurrence, over a repeated random sequence. */
  induction: number;
}

/** What happened to a checkpoint save: `saved` false means the last good one is still the one kept. */
export interface SaveUpdate {
  step: number;
  saved: boolean;
  /** The step of the checkpoint that a reload would resume from. */
  lastGoodStep: number | undefined;
  /** One sentence for the reader when something went wrong, else undefined. */
  problem?: string;
}

export interface TrainerHooks {
  onStep(update: StepUpdate): void;
  onSample(sample: Sample): void;
  onSave(update: SaveUpdate): void;
}

export interface TrainOutcome {
  step: number;
  finished: boolean;
  /** Why the run did not train (another tab holds the lock) or stopped with an error, in one sentence. */
  problem?: string;
}

/** A run kept in IndexedDB, as the page lists it. */
export interface SavedRun {
  runId: string;
  label: string;
  step: number;
  steps: number;
  finished: boolean;
  savedAt: number;
  /** "4 layers × 64 wide" etc. */
  shape: string;
}

/** How surprised a model was by the start of the held-out text, token by token. */
export interface SurpriseReading {
  /** The optimizer step of the weights that read it. */
  step: number;
  tokens: number[];
  pieces: string[];
  /** −ln p of tokens[t] for t ≥ 1 (index t − 1), in nats. */
  surprise: number[];
  meanNll: number;
}

/** A trained model as files, the Hugging Face layout the CLI and "Open a model file…" read. */
export interface ModelFiles {
  configJson: string;
  safetensors: Uint8Array;
  tokenizerJson: string;
}

export type { KernelPreference, RunShape };
