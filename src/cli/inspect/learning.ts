/**
 * `glassbox inspect learning`: chapter 13's numbers for a text (src/analysis/learning.ts): the loss of every
 * token (−ln softmax(logits[t − 1])[token t]) and their mean, the trainer's loss on the same tokens, and one
 * weight's gradient by the trainer's backward pass beside central finite differences at each step size.
 */
import {
  centralDifference,
  FINITE_DIFFERENCE_STEPS,
  parameterNamed,
  parameterShapes,
  textBatch,
} from '../../analysis/learning.ts';
import { textSurprise } from '../../analysis/surprise.ts';
import { forward } from '../../engine/forward.ts';
import { KVCache } from '../../engine/kv-cache.ts';
import { TrainingModel } from '../../engine/train/model.ts';
import { zerosLike } from '../../engine/train/parameters.ts';
import { indexOption, UsageError } from '../args.ts';
import type { InspectView } from '../inspect.ts';

export const learningView: InspectView = {
  summary:
    "each token's loss, the trainer's loss, and one weight's gradient: backprop beside finite differences",
  options: { parameter: { type: 'string' }, row: { type: 'string' }, col: { type: 'string' } },
  usage: [
    '  --parameter NAME    a weight tensor, e.g. layers.0.wq, tokenEmbedding, finalNorm (default layers.0.wq)',
    '  --row R --col C     the weight within it (default 0, 0; a norm gain has one row)',
  ],
  run({ model, tokens, kernels, options }) {
    if (tokens.length < 2)
      throw new UsageError('--prompt must give at least one token after the start token');
    const name = (options.parameter as string | undefined) ?? 'layers.0.wq';
    const shape = parameterShapes(model.config).find((p) => p.name === name);
    if (!shape) {
      const names = parameterShapes(model.config).map((p) => p.name);
      throw new UsageError(`--parameter ${name} does not exist: choose one of ${names.join(', ')}`);
    }
    const row = indexOption(options.row as string | undefined, 'row', shape.rows, 0, `rows of ${name}`);
    const col = indexOption(options.col as string | undefined, 'col', shape.cols, 0, `columns of ${name}`);
    const { logits } = forward(model, tokens, new KVCache(model.config), { logits: 'all', kernels });
    const surprise = textSurprise(tokens, logits, model.config.vocabSize);

    const trainer = new TrainingModel(model.config, model.weights, { kernels });
    const batch = textBatch(tokens);
    const trainerLoss = trainer.forward(batch);
    const gradients = zerosLike(model.weights);
    trainer.backward(gradients);
    const tensor = parameterNamed(model.weights, name);
    const index = row * shape.cols + col;
    const changed = () => kernels.invalidate(tensor.data);
    return {
      losses: Array.from(surprise.surprise),
      mean: surprise.meanNll,
      trainerLoss,
      parameter: name,
      row,
      col,
      value: tensor.data[index],
      backprop: parameterNamed(gradients, name).data[index],
      differences: FINITE_DIFFERENCE_STEPS.map((h) =>
        centralDifference(() => trainer.forward(batch), tensor.data, index, h, changed),
      ),
    };
  },
};
