/**
 * The validation loss of a trained model on the held-out part of its training text, computed exactly as
 * `glassbox train` computes it (the same split, tokenization and windows), so the model card and the test
 * that checks it agree with the training log.
 */
import type { Model } from '../../engine/model.ts';
import { sequentialBatches } from '../../engine/train/data.ts';
import { TrainingModel } from '../../engine/train/model.ts';
import { evaluateLoss } from '../../engine/train/step.ts';
import { selectKernels } from '../../kernels/select.ts';
import type { Tokenizer } from '../../tokenizers/tokenizer.ts';
import { tokenize, trainValidationSplit, type TrainSettings } from './run.ts';

export function houseValidationLoss(
  model: Model,
  tokenizer: Tokenizer,
  text: string,
  settings: Pick<TrainSettings, 'batchSize' | 'seqLen'>,
): number {
  const valTokens = tokenize(tokenizer, trainValidationSplit(text).val);
  const trainingModel = new TrainingModel(model.config, model.weights, { kernels: selectKernels('auto') });
  return evaluateLoss(trainingModel, sequentialBatches(valTokens, settings.batchSize, settings.seqLen));
}
