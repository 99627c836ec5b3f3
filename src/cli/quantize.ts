/**
 * `glassbox quantize --model IN [--tokenizer T] --to q8_0|q4_0|q4_1|f16|bf16|f32 --out FILE.gguf [--force]`:
 * any model glassbox reads, written as a GGUF file (tokenizer included) with its matrices stored in the chosen
 * type. As llama.cpp does, norms stay f32 and a matrix whose rows are not whole blocks of the type is kept at
 * f16; the command names those matrices and compares the file's size with float32's.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { existsSync } from 'node:fs';
import type { Model } from '../engine/model.ts';
import { BLOCK_FORMATS } from '../engine/quant.ts';
import { checkTokenizerFits, rawTokenizerFromFile } from '../formats/bundle.ts';
import { FormatError } from '../formats/errors.ts';
import { GGUF_WRITE_TYPES, toGguf, type GgufWriteType, type RawTokenizer } from '../formats/gguf-llama.ts';
import { findTokenizerFile, isGgufPath, loadGguf, loadModel } from '../formats/node.ts';
import { bpeTokenizer } from '../tokenizers/bpe.ts';
import { llama2cTokenizer } from '../tokenizers/llama2c.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';
import { parse, requireModel, UsageError } from './args.ts';
import { checkOutputFile } from './output-path.ts';
import { writeFileAtomic } from './train/files.ts';

const TYPES = Object.keys(GGUF_WRITE_TYPES) as GgufWriteType[];

export function quantizeUsage(): string {
  return `quantize options:
  --model PATH        any model the other commands read (.gguf, llama2.c .bin, Hugging Face folder)
  --tokenizer PATH    its tokenizer (default: the one inside a .gguf, or the one beside the model)
  --to TYPE           ${TYPES.join(', ')}: how the matrices are stored (norms stay f32; a
                      matrix whose rows are not whole blocks of 32 stays f16, as in llama.cpp, and is named)
  --out FILE.gguf     the GGUF file to write (atomically: a crash leaves the old file or the new one)
  --force             replace --out if it exists
`;
}

interface Report {
  log: (line: string) => void;
}

export async function quantizeCommand(args: string[], io: Report): Promise<number> {
  const values = parse(args, {
    model: { type: 'string' },
    tokenizer: { type: 'string' },
    to: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean' },
  });
  const modelPath = requireModel(values.model);
  const type = values.to as GgufWriteType | undefined;
  if (!type) throw new UsageError(`--to is required: one of ${TYPES.join(', ')}`);
  if (!TYPES.includes(type)) {
    throw new UsageError(
      `--to ${values.to} is not a type glassbox writes: choose one of ${TYPES.join(', ')}`,
    );
  }
  const out = values.out;
  if (!out) throw new UsageError('--out is required (the .gguf file to write)');
  if (!isGgufPath(out)) throw new UsageError(`--out ${out} must name a .gguf file`);
  if (existsSync(out) && !values.force) {
    throw new FormatError(out, 'already exists: add --force to replace it');
  }
  checkOutputFile(out, 'the GGUF file', [modelPath, ...(values.tokenizer ? [values.tokenizer] : [])]);

  const started = performance.now();
  const { model, tokenizer } = await loadWithRawTokenizer(modelPath, values.tokenizer);
  const name = basename(modelPath).replace(/\.(gguf|bin|safetensors|json)$/i, '');
  const { bytes, keptAtF16, tensors } = toGguf(model, tokenizer, type, name);
  writeFileAtomic(out, bytes);

  const storedBytes = tensors.reduce((sum, tensor) => sum + tensor.bytes.length, 0);
  const float32Bytes = tensors.reduce(
    (sum, tensor) => sum + (4 * tensor.bytes.length) / bytesPerNumber(tensor.type),
    0,
  );
  if (keptAtF16.length > 0) {
    io.log(
      `kept at f16 (rows not whole ${type} blocks of ${BLOCK_FORMATS[type].blockSize}): ${keptAtF16.join(', ')}`,
    );
  }
  io.log(
    `wrote ${out}: ${bytes.length.toLocaleString('en-US')} bytes; the weights take ` +
      `${storedBytes.toLocaleString('en-US')} bytes, ${((100 * storedBytes) / float32Bytes).toFixed(1)}% of their ` +
      `${float32Bytes.toLocaleString('en-US')} as f32 (${((performance.now() - started) / 1000).toFixed(2)} s)`,
  );
  return 0;
}

const bytesPerNumber = (type: keyof typeof BLOCK_FORMATS) =>
  BLOCK_FORMATS[type].blockBytes / BLOCK_FORMATS[type].blockSize;

/** The model and its tokenizer's own data (which the GGUF metadata stores), checked to belong together. */
async function loadWithRawTokenizer(
  modelPath: string,
  tokenizerPath: string | undefined,
): Promise<{ model: Model; tokenizer: RawTokenizer }> {
  let model: Model;
  if (isGgufPath(modelPath)) {
    const bundle = await loadGguf(modelPath);
    if (!tokenizerPath) return { model: bundle.model, tokenizer: bundle.rawTokenizer };
    model = bundle.model;
  } else {
    model = await loadModel(modelPath);
  }
  const path = tokenizerPath ?? findTokenizerFile(modelPath);
  if (!path) throw new FormatError(modelPath, 'no tokenizer found beside the model: pass --tokenizer PATH');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (error) {
    throw new FormatError(path, `cannot read the tokenizer: ${(error as Error).message}`);
  }
  const tokenizer = rawTokenizerFromFile({ name: path, bytes }, model.config.vocabSize);
  let wrapped: Tokenizer;
  try {
    wrapped =
      tokenizer.kind === 'llama' ? llama2cTokenizer(tokenizer.tokenizer) : bpeTokenizer(tokenizer.tokenizer);
  } catch (error) {
    throw new FormatError(path, (error as Error).message); // e.g. a tokenizer.json without <|bos|>
  }
  checkTokenizerFits(model, wrapped, path);
  return { model, tokenizer };
}
