/**
 * JSON for `glassbox trace`. Float32 values are written with 9 significant digits (enough to read back the
 * exact float32); −Infinity (masked attention scores) is written as null, since JSON has no infinities.
 */
import type { Model, Tensor } from '../engine/model.ts';
import type { Trace } from '../engine/trace.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';

function float32ToJson(value: number): number | null {
  return Number.isFinite(value) ? Number(value.toPrecision(9)) : null;
}

function rows(tensor: Tensor): (number | null)[][] {
  const width = tensor.shape[tensor.shape.length - 1];
  const out: (number | null)[][] = [];
  for (let start = 0; start < tensor.data.length; start += width) {
    out.push(Array.from(tensor.data.subarray(start, start + width), float32ToJson));
  }
  return out;
}

function tensorJson(tensor: Tensor) {
  return { shape: tensor.shape, data: Array.from(tensor.data, float32ToJson) };
}

export function traceToJson(
  model: Model,
  tokenizer: Tokenizer,
  trace: Trace,
  options: { all: boolean },
): string {
  const result: Record<string, unknown> = {
    config: model.config,
    tokens: trace.tokens,
    pieces: trace.tokens.map((id) => tokenizer.pieceLabel(id)),
    logits: rows(trace.logits),
  };
  if (options.all) {
    result.trace = {
      startPos: trace.startPos,
      embeddings: tensorJson(trace.embeddings),
      layers: trace.layers.map((layer) =>
        Object.fromEntries(
          Object.entries(layer).map(([name, tensor]) => [name, tensorJson(tensor as Tensor)]),
        ),
      ),
      finalNorm: tensorJson(trace.finalNorm),
      logits: tensorJson(trace.logits),
    };
  }
  return JSON.stringify(result);
}
