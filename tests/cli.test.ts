import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli-helpers.ts';
import { describeShared, STORIES260K, TOK512 } from './shared.ts';

describe('glassbox CLI: wrong or missing arguments', () => {
  const cases: [string[], RegExp][] = [
    [[], /no command given/],
    [['fly'], /unknown command "fly"/],
    [['generate'], /--model is required/],
    [['generate', '--model', 'm.bin', '--temprature', '1'], /Unknown option '--temprature'/],
    [['generate', '--model', 'm.bin', '--steps', 'ten'], /--steps must be a number, got "ten"/],
    [['generate', '--model', 'm.bin', '--steps=-3'], /--steps must be a whole number/],
    [['generate', '--model', 'm.bin', '--temperature=-1'], /temperature must be ≥ 0/],
    [['generate', '--model', 'm.bin', '--top-p', '2'], /top-p must be between 0 and 1/],
    [['generate', '--model', 'm.bin', '--seed', 'abc'], /--seed must be a whole number/],
    [['trace', '--model', 'm.bin', '--prompt', 'x'], /add --json/],
    [['generate', '--model', 'm.bin', '--kernels', 'gpu'], /--kernels must be one of auto, wasm, ts/],
    [['generate', '--model', 'm.bin', '--threads', '4'], /--threads must be one of 1, 2, auto/],
    [['trace', '--model', 'm.bin', '--json'], /--prompt is required/],
  ];
  for (const [args, message] of cases) {
    it(`${JSON.stringify(args)} → usage, exit 2, and: ${message.source}`, async () => {
      const result = await runCli(args);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toContain('Usage: glassbox');
      expect(result.stdout.length).toBe(0);
    });
  }

  it('help prints usage to stdout and exits 0', async () => {
    const result = await runCli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toContain('glassbox generate');
  });

  it('a missing model file is a one-line error naming the file, not a stack trace', async () => {
    const result = await runCli(['generate', '--model', '/nonexistent/model.bin']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('glassbox: /nonexistent/model.bin: no such file or directory\n');
  });

  it('a malformed model file names the file and the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-cli-'));
    const path = join(dir, 'broken.bin');
    writeFileSync(path, new Uint8Array(10));
    const result = await runCli(['generate', '--model', path, '--tokenizer', path]);
    expect(result.code).toBe(1);
    expect(result.stderr.startsWith(`glassbox: ${path}: `)).toBe(true);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });
});

describeShared('glassbox CLI on stories260K', () => {
  const generate = (...args: string[]) =>
    runCli(['generate', '--model', STORIES260K, '--tokenizer', TOK512, ...args]);

  it('--steps smaller than the prompt prints only that many prompt positions, without sampling', async () => {
    // "Once upon a time" is [BOS, " Once", " upon", " a", " time"]: steps 3 prints positions 1..3.
    const result = await generate('--prompt', 'Once upon a time', '--steps', '3', '--temperature', '0');
    expect(result.stdout.toString()).toBe('Once upon a\n');
    expect(result.stderr).toMatch(/achieved tok\/s/);
  });

  it('a prompt is echoed, then continued; top-k 1 at any temperature is greedy', async () => {
    const greedy = await generate('--prompt', 'Lily and Tom', '--steps', '40', '--temperature', '0');
    const topK1 = await generate(
      '--prompt',
      'Lily and Tom',
      '--steps',
      '40',
      '--temperature',
      '1.5',
      '--top-k',
      '1',
      '--seed',
      '5',
    );
    expect(greedy.stdout.toString().startsWith('Lily and Tom')).toBe(true);
    expect(topK1.stdout.equals(greedy.stdout)).toBe(true);
  });

  it('the tokenizer is found beside the model when --tokenizer is omitted', async () => {
    const result = await runCli(['generate', '--model', STORIES260K, '--temperature', '0', '--steps', '5']);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toBe('Once upon a time,\n');
  });

  it('the installed bin runs the compiled CLI (npx glassbox)', async () => {
    const bin = join(import.meta.dirname, '..', 'bin', 'glassbox.js');
    if (!existsSync(join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'main.js'))) {
      console.warn('dist/ is not built (npm run build): skipping the compiled-CLI check');
      return;
    }
    const { stdout } = await promisify(execFile)(process.execPath, [
      bin,
      'generate',
      '--model',
      STORIES260K,
      '--tokenizer',
      TOK512,
      '--temperature',
      '0',
      '--steps',
      '5',
    ]);
    expect(stdout).toBe('Once upon a time,\n');
  });
});
