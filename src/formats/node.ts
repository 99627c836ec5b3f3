/**
 * Loading models from disk in Node (the CLI, scripts and tests). The parsers themselves take bytes and run
 * anywhere; this file only finds and reads the files, and is the one place in src/formats that touches node:fs.
 */
import { statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Model } from '../engine/model.ts';
import { FormatError } from './errors.ts';
import { parseGgufLlama, type GgufBundle } from './gguf-llama.ts';
import { parseHfLlama } from './hf-llama.ts';
import { parseLlama2cCheckpoint } from './llama2c.ts';

/**
 * The largest file we read. The loaders hold a whole file in memory, and Node's fs.readFile cannot return more
 * than 2^31 − 1 bytes anyway, so bigger files get a clear message instead of ERR_FS_FILE_TOO_LARGE.
 */
export const MAX_MODEL_FILE_BYTES = 2 ** 31 - 1;

const HF_CONFIG = 'config.json';
const HF_WEIGHTS = 'model.safetensors';
const HF_SHARD_INDEX = 'model.safetensors.index.json';

/**
 * Why a path could not be looked at, in words: only a path that is truly absent is "not found"; a folder on
 * the way that may not be searched, or any other failure, says so instead.
 */
export function statFailure(error: unknown, what: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return `${what} not found`;
  if (code === 'EACCES' || code === 'EPERM') {
    return `${what} cannot be looked at: permission denied (a folder on the way may not be searchable)`;
  }
  return `${what} cannot be looked at: ${(error as Error).message}`;
}

/** The file's facts, undefined when it does not exist; any other failure is a FormatError naming it. */
async function statOrUndefined(path: string, what: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new FormatError(path, statFailure(error, what));
  }
}

/** Reads a whole file, refusing huge ones before reading and turning I/O errors into FormatError. */
async function readModelFile(path: string, what: string): Promise<Uint8Array> {
  const info = await statOrUndefined(path, what);
  if (!info) throw new FormatError(path, `${what} not found`);
  if (!info.isFile()) throw new FormatError(path, `${what} is not a regular file`);
  if (info.size > MAX_MODEL_FILE_BYTES) {
    throw new FormatError(
      path,
      `file is ${info.size} bytes (${(info.size / 2 ** 30).toFixed(1)} GiB); this loader reads whole files ` +
        `into memory and refuses files over ${MAX_MODEL_FILE_BYTES} bytes (2 GiB)`,
    );
  }
  try {
    const buffer = await readFile(path);
    // A plain Uint8Array, not a Buffer: Buffer#slice returns views where Uint8Array#slice copies.
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    throw new FormatError(path, `cannot read ${what}: ${(error as Error).message}`);
  }
}

/** A Hugging Face checkpoint: config.json and the safetensors file, normally side by side in one directory. */
async function loadHfLlama(configPath: string, weightsPath: string): Promise<Model> {
  const directory = dirname(weightsPath);
  const weightsInfo = await statOrUndefined(weightsPath, 'the safetensors weights');
  if (!weightsInfo && (await statOrUndefined(join(directory, HF_SHARD_INDEX), HF_SHARD_INDEX))) {
    throw new FormatError(
      directory,
      `this checkpoint is sharded (${HF_SHARD_INDEX}); only a single ${HF_WEIGHTS} is supported`,
    );
  }
  for (const [path, what] of [
    [configPath, 'config.json (the hyper-parameters)'],
    [weightsPath, 'the safetensors weights'],
  ]) {
    if (!(await statOrUndefined(path, what))) {
      throw new FormatError(dirname(path), `missing ${what}: looked for ${path}`);
    }
  }
  const configBytes = await readModelFile(configPath, 'config.json');
  let configText: string;
  try {
    configText = new TextDecoder('utf-8', { fatal: true }).decode(configBytes);
  } catch {
    throw new FormatError(configPath, 'not valid UTF-8 text');
  }
  const weights = await readModelFile(weightsPath, 'safetensors file');
  return parseHfLlama(configText, weights, { config: configPath, weights: weightsPath });
}

/** A GGUF file: the model, the tokenizer in its metadata, and its stored (quantized) tensors. */
export async function loadGguf(path: string): Promise<GgufBundle> {
  return parseGgufLlama(await readModelFile(path, 'GGUF file'), path);
}

export const isGgufPath = (path: string) => basename(path).toLowerCase().endsWith('.gguf');

/**
 * Loads a model from disk:
 * - a `.gguf` file → llama.cpp's GGUF (the weights dequantized to float32);
 * - a `.bin` file → llama2.c float32 checkpoint;
 * - a directory, or the path of its config.json or of a `.safetensors` file → Hugging Face Llama layout.
 * Every problem, including missing files, is a FormatError that names the file.
 */
export async function loadModel(path: string): Promise<Model> {
  const info = await statOrUndefined(path, 'the model');
  if (!info) throw new FormatError(path, 'no such file or directory');
  if (info.isDirectory()) return loadHfLlama(join(path, HF_CONFIG), join(path, HF_WEIGHTS));

  const name = basename(path).toLowerCase();
  if (name === HF_CONFIG) return loadHfLlama(path, join(dirname(path), HF_WEIGHTS));
  if (name.endsWith('.safetensors')) return loadHfLlama(join(dirname(path), HF_CONFIG), path);
  if (name.endsWith('.bin')) return parseLlama2cCheckpoint(await readModelFile(path, 'model file'), path);
  if (isGgufPath(path)) return (await loadGguf(path)).model;
  throw new FormatError(
    path,
    `cannot tell what kind of model this is: expected a llama2.c .bin file, a .gguf file, or a Hugging Face directory ` +
      `(or its config.json / model.safetensors)`,
  );
}

/**
 * The tokenizer file beside a model, or undefined. A Hugging Face directory prefers its tokenizer.json; a
 * llama2.c .bin prefers llama2.c's tokenizer.bin, then tok512.bin (the stories260K one).
 */
export function findTokenizerFile(modelPath: string): string | undefined {
  let isDirectory = false;
  try {
    isDirectory = statSync(modelPath).isDirectory();
  } catch {
    // A path that does not exist still has a directory to look in.
  }
  const directory = isDirectory ? modelPath : dirname(modelPath);
  const hfLayout = isDirectory || !basename(modelPath).toLowerCase().endsWith('.bin');
  const candidates = hfLayout
    ? ['tokenizer.json', 'tokenizer.bin', 'tok512.bin']
    : ['tokenizer.bin', 'tok512.bin', 'tokenizer.json'];
  for (const candidate of candidates) {
    const path = join(directory, candidate);
    try {
      if (statSync(path).isFile()) return path;
    } catch {
      // not there; try the next name
    }
  }
  return undefined;
}
