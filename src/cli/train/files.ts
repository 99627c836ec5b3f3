/**
 * Writing files so that a crash or Ctrl-C at any moment leaves either the old file or the new one, never a
 * half-written mix: write a temporary file beside the target, flush it to disk, then rename it over the
 * target (a rename within one directory is atomic on POSIX file systems). A write that fails removes its
 * temporary file; one a killed process left behind is found by its name and removed by the next run
 * (removeStaleTemporaries).
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** `<name>.tmp-<pid>`: beside its target, and naming the process that writes it. */
const TEMPORARY_SUFFIX = /\.tmp-(\d+)$/;

export function temporaryPathFor(path: string): string {
  return join(dirname(path), `${basename(path)}.tmp-${process.pid}`);
}

/**
 * Called just before each rename that commits a file. Tests set it to stop the process at a chosen point
 * (the state a kill there would leave); it is undefined otherwise.
 */
export const commitHooks: { beforeRename?: (target: string) => void } = {};

export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const temporary = temporaryPathFor(path);
  writeAndFlush(temporary, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  commitHooks.beforeRename?.(path);
  try {
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Writes a whole new file and flushes it to disk; on failure removes what it wrote. */
function writeAndFlush(path: string, bytes: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
    closeSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw error;
  }
}

/** True if a process with this id is running (signal 0 checks without sending anything). */
function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files of `names` in `folder` that a killed process left (`<name>.tmp-<pid>` whose
 * process is gone); returns the names removed.
 */
export function removeStaleTemporaries(folder: string, names: readonly string[]): string[] {
  const removed: string[] = [];
  for (const entry of readdirSync(folder)) {
    const match = TEMPORARY_SUFFIX.exec(entry);
    if (!match || !names.includes(entry.slice(0, match.index))) continue;
    const pid = Number(match[1]);
    if (pid !== process.pid && processIsAlive(pid)) continue;
    rmSync(join(folder, entry), { force: true });
    removed.push(entry);
  }
  return removed;
}
