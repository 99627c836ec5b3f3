/**
 * Loading a model and its tokenizer from disk for the CLI (the browser app loads from bytes instead).
 */
import { readFile, stat } from 'node:fs/promises';
import { FormatError } from '../formats/errors.ts';
import { describeNonFile } from './output-path.ts';
import { findTokenizerFile, isGgufPath, loadGguf, loadModel } from '../formats/node.ts';
import type { Model } from '../engine/model.ts';
import { checkTokenizerFits, tokenizerFromFile } from '../formats/bundle.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';

/** Tokenizer files are small; anything this big is not one. */
const MAX_TOKENIZER_BYTES = 256 * 1024 * 1024;

export async function loadTokenizer(path: string, vocabSize: number): Promise<Tokenizer> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => error);
  if (info instanceof Error) {
    throw new FormatError(
      path,
      info.code === 'ENOENT' ? 'tokenizer file not found' : `cannot read the tokenizer: ${info.message}`,
    );
  }
  if (!info.isFile()) throw new FormatError(path, `the tokenizer is ${describeNonFile(info)}, not a file`);
  if (info.size > MAX_TOKENIZER_BYTES)
    throw new FormatError(path, `${info.size} bytes is too large for a tokenizer`);
  const bytes = new Uint8Array(await readFile(path));
  return tokenizerFromFile({ name: path, bytes }, vocabSize);
}

export async function loadModelAndTokenizer(
  modelPath: string,
  tokenizerPath?: string,
): Promise<{ model: Model; tokenizer: Tokenizer }> {
  if (isGgufPath(modelPath)) {
    // A GGUF file carries its tokenizer; --tokenizer may still choose another.
    const { model, tokenizer } = await loadGguf(modelPath);
    if (!tokenizerPath) return { model, tokenizer };
    const chosen = await loadTokenizer(tokenizerPath, model.config.vocabSize);
    checkTokenizerFits(model, chosen, tokenizerPath);
    return { model, tokenizer: chosen };
  }
  const model = await loadModel(modelPath);
  const path = tokenizerPath ?? findTokenizerFile(modelPath);
  if (!path) {
    throw new FormatError(modelPath, 'no tokenizer found beside the model: pass --tokenizer PATH');
  }
  const tokenizer = await loadTokenizer(path, model.config.vocabSize);
  checkTokenizerFits(model, tokenizer, path);
  return { model, tokenizer };
}
