/**
 * Reading a text from disk (to train on, or to measure perplexity on): plain UTF-8 or gzip-compressed
 * (`.gz`), with a clear message for anything else (missing, empty, too large, not UTF-8).
 */
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { FormatError } from '../formats/errors.ts';
import { describeNonFile } from './output-path.ts';

/**
 * The largest text we read, before or after decompression. JavaScript strings hold at most about 2^29
 * characters, so much larger texts could not be decoded anyway; and the limit also bounds what refusing a
 * gzip bomb costs (decompression stops here).
 */
export const MAX_TEXT_BYTES = 256 * 1024 * 1024;

export async function readTextFile(path: string): Promise<string> {
  const info = await stat(path).catch((error: NodeJS.ErrnoException) => error);
  if (info instanceof Error) {
    throw new FormatError(path, info.code === 'ENOENT' ? 'no such file' : `cannot read it: ${info.message}`);
  }
  if (!info.isFile()) throw new FormatError(path, `is ${describeNonFile(info)}, not a text file`);
  if (info.size > MAX_TEXT_BYTES)
    throw new FormatError(path, `${info.size} bytes is more than the ${MAX_TEXT_BYTES}-byte limit`);
  let bytes: Uint8Array = await readFile(path);
  if (path.endsWith('.gz')) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_TEXT_BYTES });
    } catch (error) {
      const tooLarge = (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
      throw new FormatError(
        path,
        tooLarge
          ? `decompresses to more than the ${MAX_TEXT_BYTES}-byte limit`
          : `not a readable gzip file (${(error as Error).message})`,
      );
    }
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new FormatError(path, `not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)})`);
  }
  if (text.length === 0) throw new FormatError(path, 'the text is empty');
  return text;
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let low = 0;
  let high = bytes.length;
  // Binary search on "does this prefix decode?"; in stream mode a prefix cut mid-character still counts as
  // valid (its tail is only buffered), so the answer changes exactly once along the file.
  const prefixValid = (end: number) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (prefixValid(mid)) low = mid;
    else high = mid - 1;
  }
  return low;
}
