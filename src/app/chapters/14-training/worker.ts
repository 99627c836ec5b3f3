/**
 * Chapter 14 (training): what its figures ask the engine worker. Training itself runs in its own worker
 * (src/app/lib/train/trainer-worker.ts); here only the question's answer is computed: the loss of a model
 * with random weights (as every run starts) on the reader's text, with the loaded model's shape and
 * tokenizer, by the trainer's own forward pass.
 */
import { randomModel } from '../../../engine/init.ts';
import type { Model } from '../../../engine/model.ts';
import { TrainingModel } from '../../../engine/train/model.ts';
import { selectKernels } from '../../../kernels/select.ts';
import { current, requireModel } from '../../lib/worker/state.ts';
import { textBatch } from '../../../analysis/learning.ts';

/** The seed of the random model (the presets' seed). */
const SEED = 1337;

export interface UntrainedLossAnswer {
  tokens: number[];
  vocabSize: number;
  /** Mean cross-entropy of the random model over the text's next tokens, in nats. */
  loss: number;
  /** ln(vocabSize): the loss of a uniform guess. */
  uniform: number;
}

let random: { key: Model; model: TrainingModel } | undefined;

export const handlers = {
  untrainedLoss(tokens: number[]): UntrainedLossAnswer {
    const { model } = requireModel();
    if (random?.key !== model) {
      const fresh = randomModel({ ...model.config }, SEED);
      random = {
        key: model,
        model: new TrainingModel(fresh.config, fresh.weights, { kernels: selectKernels(current.choice) }),
      };
    }
    const loss = random.model.forward(textBatch(tokens));
    return { tokens, vocabSize: model.config.vocabSize, loss, uniform: Math.log(model.config.vocabSize) };
  },
};
