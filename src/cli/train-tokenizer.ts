/**
 * `glassbox train-tokenizer`: learn a byte-level BPE vocabulary from a text file and save it as a Hugging
 * Face tokenizer.json; optionally write every merge, in the order learned, with the count that won it.
 */
import {
  bpeTokenizer,
  encode,
  pieceLabel,
  toTokenizerJson,
  trainBpe,
  type TrainedBpe,
} from '../tokenizers/bpe.ts';
import { checkDistinctOutputs, checkOutputFile } from './output-path.ts';
import { writeFileAtomic } from './train/files.ts';
import { readTextFile } from './text-input.ts';

export interface TrainTokenizerOptions {
  input: string;
  vocabSize: number;
  out: string;
  merges?: string;
  log: (line: string) => void;
}

/** One line per merge: rank, the two parts, the new token, its count, and how the new token reads. */
export function mergesTsv(trained: TrainedBpe): string {
  const header = 'rank\tleft\tright\tmerged\tcount\tpiece\n';
  return (
    header +
    trained.merges
      .map(
        (m, rank) =>
          `${rank}\t${m.left}\t${m.right}\t${m.merged}\t${m.count}\t${JSON.stringify(pieceLabel(trained.tokenizer, m.merged))}`,
      )
      .join('\n') +
    '\n'
  );
}

export async function trainTokenizerCommand(options: TrainTokenizerOptions): Promise<TrainedBpe> {
  // Check where the results go before the (possibly long) training, not after.
  checkOutputFile(options.out, 'the tokenizer', [options.input]);
  if (options.merges) {
    checkDistinctOutputs(options.out, options.merges);
    checkOutputFile(options.merges, 'the merges', [options.input]);
  }
  const text = await readTextFile(options.input);
  const start = performance.now();
  const reportEvery = Math.max(1, Math.round((options.vocabSize - 258) / 10));
  const trained = trainBpe(text, {
    vocabSize: options.vocabSize,
    onMerge: (merge, rank) => {
      if ((rank + 1) % reportEvery === 0)
        options.log(`merge ${rank + 1}: the winning pair occurred ${merge.count} times`);
    },
  });
  const seconds = (performance.now() - start) / 1000;
  writeFileAtomic(options.out, toTokenizerJson(trained.tokenizer));
  if (options.merges) writeFileAtomic(options.merges, mergesTsv(trained));
  const tokens = encode(trained.tokenizer, text).length;
  const bytes = new TextEncoder().encode(text).length;
  options.log(
    `${bpeTokenizer(trained.tokenizer).vocabSize} tokens learned in ${seconds.toFixed(1)} s; ` +
      `${(bytes / tokens).toFixed(3)} bytes per token on the training text; wrote ${options.out}`,
  );
  return trained;
}
