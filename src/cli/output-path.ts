/**
 * Checking where the CLI will write before it does any work: a tokenizer that took an hour to train should not
 * then fail on `EISDIR`, and a failed write should not leave a temporary file behind. Each check throws a
 * FormatError naming the path and saying what is wrong with it, in words.
 */
import { closeSync, openSync, realpathSync, rmSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { FormatError } from '../formats/errors.ts';
import { temporaryPathFor } from './train/files.ts';

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** What kind of thing is at a path that is not a regular file, in words ("a directory", "a FIFO", …). */
export function describeNonFile(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isFIFO()) return 'a FIFO (named pipe)';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** Turns a failed open into a reason a reader understands. */
function writeFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'the file system is read-only';
  if (code === 'ENOSPC') return 'the disk is full';
  return (error as Error).message;
}

/** The folder `path` will be written in must exist, be a folder, and let us create files. */
function checkParentFolder(path: string, what: string): void {
  const parent = dirname(resolve(path));
  const info = statOrUndefined(parent);
  if (!info) throw new FormatError(path, `cannot write ${what} here: the folder ${parent} does not exist`);
  if (!info.isDirectory())
    throw new FormatError(path, `cannot write ${what} here: ${parent} is not a folder`);
}

/**
 * Opens (and removes) the very temporary file the atomic write will use: the one honest test of "can we write
 * here", since permissions, read-only mounts and root's exemptions are hard to predict from stat alone.
 */
function probeWrite(path: string, report: (reason: string) => FormatError): void {
  const temporary = temporaryPathFor(path);
  try {
    closeSync(openSync(temporary, 'wx'));
  } catch (error) {
    throw report(writeFailure(error));
  }
  rmSync(temporary, { force: true });
}

/**
 * Checks that `path` can take a new version of the file `what`: either nothing is there or a regular file is;
 * the folder exists; we may write in it; and it is not one of `inputs` (writing would destroy them).
 */
export function checkOutputFile(path: string, what: string, inputs: readonly string[] = []): void {
  const info = statOrUndefined(path);
  if (info && !info.isFile()) {
    throw new FormatError(path, `cannot write ${what} here: it is ${describeNonFile(info)}, not a file`);
  }
  checkParentFolder(path, what);
  if (info) {
    const target = realpathSync(path);
    for (const input of inputs) {
      if (statOrUndefined(input) && realpathSync(input) === target) {
        throw new FormatError(path, `cannot write ${what} here: it is also the input, which would be lost`);
      }
    }
  }
  probeWrite(path, (reason) => new FormatError(path, `cannot write ${what} here: ${reason}`));
}

/** Checks two outputs are not the same file (the second would silently replace the first). */
export function checkDistinctOutputs(first: string, second: string): void {
  if (resolve(first) === resolve(second))
    throw new FormatError(second, 'is given as two different outputs; choose two paths');
}

/**
 * Checks that `folder` is, or can become, a folder we may write in: it is a folder (or nothing yet, under an
 * existing folder — a new run may create only its own folder), and files can be created in it.
 */
export function checkOutputFolder(folder: string): void {
  const info = statOrUndefined(folder);
  if (info && !info.isDirectory()) {
    throw new FormatError(folder, `cannot use it as the output folder: it is ${describeNonFile(info)}`);
  }
  if (!info) checkParentFolder(folder, 'the output folder');
  // A new folder is probed in its parent, where it will be created.
  const probe = info ? resolve(folder, '.glassbox-write-check') : `${resolve(folder)}-write-check`;
  probeWrite(probe, (reason) => new FormatError(folder, `cannot write the run's files here: ${reason}`));
}
