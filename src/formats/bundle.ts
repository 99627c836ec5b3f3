/**
 * "Which file is which": given files by name and bytes (chosen in the page, or read from disk by the CLI), find
 * the model and its tokenizer, parse both with the loaders, and check they belong together. Runs anywhere:
 * no node: imports (the CLI's file reading is in src/cli/load.ts and src/formats/node.ts).
 *
 * Recognised sets: a llama2.c checkpoint .bin (float32, or runq's int8) with its tokenizer (.bin, or a tokenizer.json); a Hugging Face
 * config.json + model.safetensors with its tokenizer.json; or a GGUF file, which carries its tokenizer (a
 * tokenizer file chosen with it takes its place).
 */
import type { Model } from '../engine/model.ts';
import { bpeTokenizer, fromTokenizerJson } from '../tokenizers/bpe.ts';
import { llama2cTokenizer, parseLlama2cTokenizer } from '../tokenizers/llama2c.ts';
import type { Tokenizer } from '../tokenizers/tokenizer.ts';
import { FormatError } from './errors.ts';
import { parseGgufLlama, type RawTokenizer } from './gguf-llama.ts';
import { parseHfLlama } from './hf-llama.ts';
import { parseLlama2cCheckpoint } from './llama2c.ts';

export interface NamedFile {
  name: string;
  bytes: Uint8Array;
}

export interface ModelBundle {
  model: Model;
  tokenizer: Tokenizer;
  /** The name of the file the weights came from. */
  source: string;
}

/** A file's bytes as UTF-8 text, or a FormatError naming it. */
function utf8Text(file: NamedFile): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(file.bytes);
  } catch {
    throw new FormatError(file.name, 'not valid UTF-8 text');
  }
}

/** A tokenizer's own data from its file: tokenizer.json (byte-level BPE) by its name, else a llama2.c .bin. */
export function rawTokenizerFromFile(file: NamedFile, modelVocabSize: number): RawTokenizer {
  if (!file.name.toLowerCase().endsWith('.json'))
    return { kind: 'llama', tokenizer: parseLlama2cTokenizer(file.bytes, file.name, modelVocabSize) };
  return { kind: 'gpt2', tokenizer: fromTokenizerJson(utf8Text(file), file.name) };
}

/** A tokenizer from its file: tokenizer.json (byte-level BPE) by its name, else a llama2.c tokenizer .bin. */
export function tokenizerFromFile(file: NamedFile, modelVocabSize: number): Tokenizer {
  const raw = rawTokenizerFromFile(file, modelVocabSize);
  if (raw.kind === 'llama') return llama2cTokenizer(raw.tokenizer);
  try {
    return bpeTokenizer(raw.tokenizer);
  } catch (error) {
    // e.g. "this tokenizer has no <|bos|> token": every refusal names the file.
    throw new FormatError(file.name, (error as Error).message);
  }
}

/** One clear error when a tokenizer's vocabulary is not the model's. */
export function checkTokenizerFits(model: Model, tokenizer: Tokenizer, tokenizerFile: string): void {
  if (tokenizer.vocabSize !== model.config.vocabSize) {
    throw new FormatError(
      tokenizerFile,
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary has ${model.config.vocabSize}: ` +
        `they do not belong together`,
    );
  }
}

/** Tells the files apart by name (and, for two .bin files, by "tok" in the name, then by size). */
export function modelFromFiles(files: readonly NamedFile[]): ModelBundle {
  const named = (test: RegExp) => files.filter((file) => test.test(file.name));
  const gguf = named(/\.gguf$/i)[0];
  const safetensors = named(/\.safetensors$/i)[0];
  const config = files.find((file) => baseName(file.name).toLowerCase() === 'config.json');
  const tokenizerJson = named(/\.json$/i).find((file) => file !== config);
  // llama2.c tokenizers are named like tokenizer.bin or tok512.bin; otherwise the checkpoint is the larger file.
  const looksLikeTokenizer = (file: NamedFile) => /tok/i.test(baseName(file.name));
  const bins = named(/\.bin$/i).sort(
    (a, b) =>
      Number(looksLikeTokenizer(a)) - Number(looksLikeTokenizer(b)) || b.bytes.length - a.bytes.length,
  );
  const describe = files.map((file) => file.name).join(', ') || 'no files';

  let model: Model;
  let rest: NamedFile[];
  let source: string;
  if (gguf) {
    const bundle = parseGgufLlama(gguf.bytes, gguf.name);
    const chosen = tokenizerJson ?? bins[0];
    if (!chosen) return { model: bundle.model, tokenizer: bundle.tokenizer, source: gguf.name };
    model = bundle.model;
    rest = [chosen];
    source = gguf.name;
  } else if (safetensors) {
    if (!config) {
      throw new FormatError(
        safetensors.name,
        'a safetensors model needs its config.json: choose both files together',
      );
    }
    model = parseHfLlama(utf8Text(config), safetensors.bytes, {
      config: config.name,
      weights: safetensors.name,
    });
    rest = bins;
    source = safetensors.name;
  } else if (bins.length > 0) {
    model = parseLlama2cCheckpoint(bins[0].bytes, bins[0].name);
    rest = bins.slice(1);
    source = bins[0].name;
  } else {
    throw new FormatError(
      describe,
      'no model here: choose a .gguf file, a llama2.c .bin checkpoint, or config.json with model.safetensors',
    );
  }
  const tokenizerFile = tokenizerJson ?? rest[0];
  if (!tokenizerFile) {
    throw new FormatError(
      describe,
      'no tokenizer here: choose the tokenizer file too (tokenizer.json, or a llama2.c tokenizer .bin)',
    );
  }
  const tokenizer = tokenizerFromFile(tokenizerFile, model.config.vocabSize);
  checkTokenizerFits(model, tokenizer, tokenizerFile.name);
  return { model, tokenizer, source };
}

/** The last part of a path or name ("models/config.json" → "config.json"), with either separator. */
function baseName(name: string): string {
  return name.slice(Math.max(name.lastIndexOf('/'), name.lastIndexOf('\\')) + 1);
}
