/**
 * Writing files so that a crash or Ctrl-C at any moment leaves either the old file or the new one, never a
 * half-written mix: write a temporary file beside the target, flush it to disk, then rename it over the
 * target (a rename within one directory is atomic on POSIX file systems).
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const temporary = `${path}.tmp-${process.pid}`;
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = openSync(temporary, 'w');
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temporary, path);
}
