/** Runs the CLI in-process and captures what it writes. */
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
