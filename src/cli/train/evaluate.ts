/**
 * The validation loss of a trained model on the held-out part of its training text(s), computed exactly as
 * `glassbox train` computes it (the same split, tokenization and windows), so the model card and the test
 * that checks it agree with the training log.
 */
import type { Model } from '../../engine/model.ts';
import { sequentialBatches, type Batch } from '../../engine/train/data.ts';
import { TrainingModel } from '../../engine/train/model.ts';
import { meanOverPositions } from '../../engine/train/shards.ts';
import { evaluateLoss } from '../../engine/train/step.ts';
import { selectKernels } from '../../kernels/select.ts';
import type { Tokenizer } from '../../tokenizers/tokenizer.ts';
import { tokenize, trainValidationSplit, type TrainSettings } from './run.ts';

type Windows = Pick<TrainSettings, 'batchSize' | 'seqLen'>;

function heldOutBatches(tokenizer: Tokenizer, text: string, settings: Windows): Batch[] {
  const valTokens = tokenize(tokenizer, trainValidationSplit(text).val);
  return sequentialBatches(valTokens, settings.batchSize, settings.seqLen);
}

function trainingModel(model: Model): TrainingModel<Float32Array> {
  return new TrainingModel(model.config, model.weights, { kernels: selectKernels('auto') });
}

export function houseValidationLoss(
  model: Model,
  tokenizer: Tokenizer,
  text: string,
  settings: Windows,
): number {
  return evaluateLoss(trainingModel(model), heldOutBatches(tokenizer, text, settings));
}

/**
 * Each source's validation loss and the loss over all of them (each held-out position weighing the same, as
 * the training log's valLoss): for a model trained on several texts.
 */
export function validationLossBySource(
  model: Model,
  tokenizer: Tokenizer,
  sources: readonly { name: string; text: string }[],
  settings: Windows,
): { bySource: Record<string, number>; all: number } {
  const evaluator = trainingModel(model);
  const bySource: Record<string, number> = {};
  const batches: Batch[] = [];
  const losses: number[] = [];
  for (const { name, text } of sources) {
    const own = heldOutBatches(tokenizer, text, settings);
    const ownLosses = own.map((batch) => evaluator.forward(batch));
    bySource[name] = meanOverPositions(own, ownLosses);
    batches.push(...own);
    losses.push(...ownLosses);
  }
  return { bySource, all: meanOverPositions(batches, losses) };
}
