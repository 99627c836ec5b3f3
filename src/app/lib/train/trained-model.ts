/**
 * A model trained in this browser, read back from IndexedDB (store.ts) for the engine worker, so that
 * every chapter can run on it: its last good checkpoint's weights and the tokenizer it was trained with.
 * It lives only in this browser's storage (see model-id.ts).
 */
import { randomModel } from '../../../engine/init.ts';
import type { Model } from '../../../engine/model.ts';
import { parseCheckpoint } from '../../../formats/training-checkpoint.ts';
import { fromTokenizerJson, type BpeTokenizer } from '../../../tokenizers/bpe.ts';
import { getRun, lastGoodCheckpoint } from './store.ts';

export { trainedModelId } from './model-id.ts';

export async function trainedModel(
  runId: string,
): Promise<{ model: Model; tokenizer: BpeTokenizer; label: string; bytes: number }> {
  const [run, checkpoint] = await Promise.all([getRun(runId), lastGoodCheckpoint(runId)]);
  if (!run || !checkpoint) {
    throw new Error('that trained model is not stored in this browser (it lives only where it was trained)');
  }
  const { config, weights } = parseCheckpoint(checkpoint.bytes, 'the saved checkpoint', (c) =>
    randomModel(c, 1),
  );
  const what = run.initialModel
    ? `the house model fine-tuned on ${run.label}`
    : `your model trained on ${run.label}`;
  return {
    model: { config, weights },
    tokenizer: fromTokenizerJson(run.tokenizerJson),
    label: `${what} (step ${checkpoint.step})`,
    bytes: checkpoint.bytes.length,
  };
}
