/**
 * Training checkpoints as bytes: one safetensors file holding the weights, AdamW's two moments and (in its
 * metadata) the step, the batch sampler's position and the run's settings — everything needed to continue
 * exactly where training stopped. `glassbox train` writes them to a file (src/cli/train/checkpoint.ts), the
 * page's trainer to IndexedDB; either can be read by the other.
 */
import type { Model, ModelConfig, Tensor } from '../engine/model.ts';
import type { AdamWState } from '../engine/train/adamw.ts';
import type { SamplerState } from '../engine/train/data.ts';
import { namedParameters, type Weights } from '../engine/train/parameters.ts';
import { FormatError } from './errors.ts';
import { parseSafetensors, serializeSafetensors } from './safetensors.ts';

export const CHECKPOINT_FORMAT = 'glassbox-training-checkpoint-1';

export interface Checkpoint<Settings> {
  config: ModelConfig;
  weights: Weights;
  optimizer: AdamWState;
  sampler: SamplerState;
  settings: Settings;
}

export function serializeCheckpoint<Settings>(checkpoint: Checkpoint<Settings>): Uint8Array {
  const tensors: Record<string, Tensor> = {};
  for (const { name, tensor } of namedParameters(checkpoint.weights)) {
    tensors[`weights.${name}`] = tensor;
    tensors[`adam.m.${name}`] = { data: checkpoint.optimizer.firstMoment[name], shape: tensor.shape };
    tensors[`adam.v.${name}`] = { data: checkpoint.optimizer.secondMoment[name], shape: tensor.shape };
  }
  const metadata = {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(checkpoint.config),
    optimizerStep: String(checkpoint.optimizer.step),
    sampler: JSON.stringify(checkpoint.sampler),
    settings: JSON.stringify(checkpoint.settings),
  };
  return serializeSafetensors(tensors, metadata);
}

/**
 * Reads a checkpoint, checking it is one of ours and complete; `template` gives the weights' structure and
 * `file` names the checkpoint in messages.
 */
export function parseCheckpoint<Settings>(
  bytes: Uint8Array,
  file: string,
  template: (config: ModelConfig) => Model,
): Checkpoint<Settings> {
  const parsed = parseSafetensors(bytes, file);
  const meta = parsed.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new FormatError(file, `not a Glassbox training checkpoint (format "${meta.format ?? 'missing'}")`);
  }
  const json = <T>(key: string): T => {
    try {
      return JSON.parse(meta[key]) as T;
    } catch {
      throw new FormatError(file, `metadata field "${key}" is missing or not JSON`);
    }
  };
  const config = json<ModelConfig>('config');
  const { weights } = template(config);
  const optimizer: AdamWState = { step: Number(meta.optimizerStep), firstMoment: {}, secondMoment: {} };
  const take = (name: string, shape: readonly number[]): Float32Array => {
    const tensor = parsed.tensors.get(name);
    if (!tensor) throw new FormatError(file, `tensor "${name}" is missing`);
    if (tensor.shape.join(',') !== shape.join(',')) {
      throw new FormatError(file, `tensor "${name}" has shape [${tensor.shape}], expected [${shape}]`);
    }
    return tensor.data;
  };
  for (const { name, tensor } of namedParameters(weights)) {
    tensor.data.set(take(`weights.${name}`, tensor.shape));
    optimizer.firstMoment[name] = take(`adam.m.${name}`, tensor.shape);
    optimizer.secondMoment[name] = take(`adam.v.${name}`, tensor.shape);
  }
  return {
    config,
    weights,
    optimizer,
    sampler: json<SamplerState>('sampler'),
    settings: json<Settings>('settings'),
  };
}
