/**
 * Reading a training text from disk: plain UTF-8 or gzip-compressed (`.gz`), with a clear message for
 * anything else (missing, empty, too large, not UTF-8).
 */
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { FormatError } from '../formats/errors.ts';

/** Larger texts than this would not fit the training loop's token array comfortably. */
const MAX_TEXT_BYTES = 1024 * 1024 * 1024;

export async function readTrainingText(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new FormatError(path, 'no such file');
  if (info.size > MAX_TEXT_BYTES)
    throw new FormatError(path, `${info.size} bytes is more than the 1 GiB limit`);
  let bytes: Uint8Array = await readFile(path);
  if (path.endsWith('.gz')) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: MAX_TEXT_BYTES });
    } catch (error) {
      throw new FormatError(path, `not a readable gzip file (${(error as Error).message})`);
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
