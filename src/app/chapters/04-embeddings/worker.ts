/**
 * Chapter 4 (embeddings): what its figures ask the engine worker. The rows come from the Trace of the
 * reader's pass; neighbours and the map read the model's whole token embedding table, which never leaves
 * the worker (only the answers do). Row lengths and the principal components are computed once per model.
 */
import * as Comlink from 'comlink';
import type { Model } from '../../../engine/model.ts';
import { requireModel, traceFor } from '../../lib/worker/state.ts';
import {
  nearestNeighbours,
  principalComponents,
  project,
  questionChoices,
  rowNorms,
  similaritiesTo,
} from '../../../analysis/embeddings.ts';

/** The reader's tokens' rows: the Trace's `embeddings` tensor, [T, dim]. */
export interface EmbeddingRows {
  tokens: number[];
  /** T × dim, row-major: row t is row tokens[t] of the table. */
  rows: Float32Array;
  dim: number;
  vocabSize: number;
  /** True when the same table also scores the output (the classifier is the embedding table). */
  tied: boolean;
  /** All parameters of the model, to say what share the table is. */
  parameters: number;
}

export interface NeighbourEntry {
  token: number;
  piece: string;
  similarity: number;
}

export interface NeighbourList {
  token: number;
  piece: string;
  /** The row's length (its Euclidean norm). */
  norm: number;
  /** Most similar first, the token itself left out. */
  neighbours: NeighbourEntry[];
}

/** The vocabulary projected on its first principal components. */
export interface EmbeddingMap {
  vocabSize: number;
  dim: number;
  /** vocabSize × components, row-major: token t's coordinate along component c at t·components + c. */
  points: Float32Array;
  components: number;
  /** Each component's share of the total variance. */
  explained: number[];
  pieces: string[];
  /** Milliseconds the worker took (covariance, power iteration, projection). */
  computeMs: number;
}

export interface QuestionChoice {
  token: number;
  piece: string;
  similarity: number;
  /** 1 for the most similar row in the whole vocabulary (the token itself not counted). */
  rank: number;
}

export interface EmbeddingQuestion {
  token: number;
  piece: string;
  choices: QuestionChoice[];
  /** Index into choices of the most similar token. */
  answer: number;
}

/** How many principal components the map computes (the reader can plot 1–2 or 2–3). */
const MAP_COMPONENTS = 3;

const norms = new WeakMap<Model, Float64Array>();
const maps = new WeakMap<Model, { map: EmbeddingMap; points: Float32Array }>();

function tableOf(model: Model) {
  const table = model.weights.tokenEmbedding.data;
  const dim = model.config.dim;
  let lengths = norms.get(model);
  if (!lengths) {
    lengths = rowNorms(table, dim);
    norms.set(model, lengths);
  }
  return { table, dim, norms: lengths };
}

function checkToken(model: Model, token: number): void {
  if (!Number.isInteger(token) || token < 0 || token >= model.config.vocabSize) {
    throw new Error(`token ${token} is not in the vocabulary (0 … ${model.config.vocabSize - 1})`);
  }
}

export const handlers = {
  /** The rows of the embedding table for exactly these tokens, as the forward pass recorded them. */
  embeddingRows(tokens: number[]): EmbeddingRows {
    const { model } = requireModel();
    const { embeddings } = traceFor(tokens);
    const rows = embeddings.data.slice();
    const answer: EmbeddingRows = {
      tokens: [...tokens],
      rows,
      dim: model.config.dim,
      vocabSize: model.config.vocabSize,
      tied: model.config.sharedClassifier || model.weights.classifier === model.weights.tokenEmbedding,
      parameters: requireModel().info.parameters,
    };
    return Comlink.transfer(answer, [rows.buffer]);
  },

  /** The `count` rows of the whole table most similar in direction (cosine) to `token`'s row. */
  embeddingNeighbours(token: number, count: number): NeighbourList {
    const { model, tokenizer } = requireModel();
    checkToken(model, token);
    const { table, dim, norms } = tableOf(model);
    return {
      token,
      piece: tokenizer.pieceLabel(token),
      norm: norms[token],
      neighbours: nearestNeighbours(table, dim, token, count, norms).map((n) => ({
        ...n,
        piece: tokenizer.pieceLabel(n.token),
      })),
    };
  },

  /** "Which is closest to `token`?": its real nearest row, against other tokens of the reader's text. */
  embeddingQuestion(token: number, textTokens: number[]): EmbeddingQuestion {
    const { model, tokenizer } = requireModel();
    checkToken(model, token);
    const { table, dim, norms } = tableOf(model);
    const similarities = similaritiesTo(table, dim, token, norms);
    const special = new Set([tokenizer.bosId, tokenizer.eosId]);
    const { tokens, answer, ranks } = questionChoices(similarities, token, textTokens, special, (t) =>
      tokenizer.pieceLabel(t),
    );
    return {
      token,
      piece: tokenizer.pieceLabel(token),
      choices: tokens.map((t, i) => ({
        token: t,
        piece: tokenizer.pieceLabel(t),
        similarity: similarities[t],
        rank: ranks[i],
      })),
      answer,
    };
  },

  /** Every row of the table projected on its top principal components (computed once per model). */
  embeddingMap(): EmbeddingMap {
    const { model, tokenizer } = requireModel();
    let cached = maps.get(model);
    if (!cached) {
      const started = performance.now();
      const { table, dim } = tableOf(model);
      const pca = principalComponents(table, dim, MAP_COMPONENTS);
      const points = project(table, dim, pca);
      const pieces = Array.from({ length: model.config.vocabSize }, (_, t) => tokenizer.pieceLabel(t));
      const map: EmbeddingMap = {
        vocabSize: model.config.vocabSize,
        dim,
        points,
        components: pca.components.length,
        explained: pca.explained,
        pieces,
        computeMs: performance.now() - started,
      };
      cached = { map, points };
      maps.set(model, cached);
    }
    // The cached points stay here; the page gets its own copy, transferred.
    const points = cached.points.slice();
    return Comlink.transfer({ ...cached.map, points }, [points.buffer]);
  },
};
