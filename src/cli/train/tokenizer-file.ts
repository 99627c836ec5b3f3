/** Reading a tokenizer.json for training, with the same checks (and messages) as any other input file. */
import { readFileSync, statSync } from 'node:fs';
import { FormatError } from '../../formats/errors.ts';
import { fromTokenizerJson, TOKENIZER_JSON_LIMITS, type BpeTokenizer } from '../../tokenizers/bpe.ts';
import { describeNonFile } from '../output-path.ts';

export function readTokenizerJson(path: string): BpeTokenizer {
  let info;
  try {
    info = statSync(path);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new FormatError(
      path,
      missing ? 'tokenizer file not found' : `cannot read it: ${(error as Error).message}`,
    );
  }
  // Checked before reading: a FIFO would block the read, and a huge file would cost before the parser refuses.
  if (!info.isFile()) throw new FormatError(path, `the tokenizer is ${describeNonFile(info)}, not a file`);
  if (info.size > TOKENIZER_JSON_LIMITS.maxLength * 3) {
    throw new FormatError(path, `${info.size} bytes is more than any tokenizer.json needs`);
  }
  return fromTokenizerJson(readFileSync(path, 'utf8'), path);
}
