/** Runs the CLI in-process and captures what it writes. */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/main.ts';

export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export async function runCli(args: string[]): Promise<CliResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const sink = (chunks: Buffer[]) => ({
    write: (chunk: string | Uint8Array) => chunks.push(Buffer.from(chunk)),
  });
  const code = await main(args, { stdout: sink(out), stderr: sink(err) });
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
}

/** Makes a FIFO (named pipe) at `path` and returns the path. */
export function fifo(path: string): string {
  if (!existsSync(path)) execFileSync('mkfifo', [path]);
  return path;
}

/**
 * A folder this process may not create files in. Root ignores permission bits, so as root it is /sys,
 * where the kernel refuses new files to everyone.
 */
export function unwritableFolder(): string {
  if (process.getuid?.() === 0) return '/sys';
  const folder = mkdtempSync(join(tmpdir(), 'glassbox-readonly-'));
  chmodSync(folder, 0o500);
  return folder;
}
