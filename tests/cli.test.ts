import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadModelAndTokenizer } from '../src/cli/load.ts';
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
    [['generate', '--model', 'm.bin', '--temperature=-1'], /--temperature must be ≥ 0/],
    [['generate', '--model', 'm.bin', '--temperature', 'Infinity'], /--temperature must be a finite number/],
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

  for (const command of ['generate', 'trace', 'train', 'train-tokenizer']) {
    it(`${command} --help (and -h) prints usage to stdout and exits 0, whatever else is on the line`, async () => {
      for (const args of [
        [command, '--help'],
        [command, '-h'],
        [command, '--model', 'x', '--bogus', '--help'],
      ]) {
        const result = await runCli(args);
        expect(result.code).toBe(0);
        expect(result.stdout.toString()).toContain('Usage: glassbox');
        expect(result.stderr).toBe('');
      }
    });
  }

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
    // Nothing went through the model, so there is no speed to report.
    expect(result.stderr).not.toMatch(/tok\/s/);
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

describeShared('glassbox generate: tiny temperatures and context-sized prompts', () => {
  const generate = (...args: string[]) =>
    runCli(['generate', '--model', STORIES260K, '--tokenizer', TOK512, '--seed', '5', ...args]);

  it('a temperature that underflows (1e-40) samples greedily and says so, with or without top-p', async () => {
    const greedy = await generate('--prompt', 'Lily', '--steps', '30', '--temperature', '0');
    for (const topP of ['0.9', '0']) {
      const tiny = await generate(
        '--prompt',
        'Lily',
        '--steps',
        '30',
        '--temperature',
        '1e-40',
        '--top-p',
        topP,
      );
      expect(tiny.code).toBe(0);
      expect(tiny.stdout.toString()).toBe(greedy.stdout.toString());
      expect(tiny.stderr).toMatch(/temperature 1e-40 is below 0\.001: sampling greedily/);
    }
    expect(greedy.stderr).not.toMatch(/sampling greedily/);
  });

  /** A prompt of exactly `count` tokens (BOS included) under tok512: BOS, " Once", then " a" repeated. */
  async function promptOf(count: number): Promise<string> {
    const { tokenizer } = await loadModelAndTokenizer(STORIES260K, TOK512);
    const prompt = 'Once' + ' a'.repeat(count - 2);
    expect(tokenizer.encode(prompt, { bos: true, eos: false })).toHaveLength(count);
    return prompt;
  }

  it('prompts of context − 1 and context tokens run; one more token is refused, exit 2, no speed', async () => {
    for (const count of [511, 512]) {
      const result = await generate('--prompt', await promptOf(count), '--temperature', '0', '--steps', '0');
      expect(result.code).toBe(0);
      expect(result.stdout.toString()).toMatch(/^Once a a/);
    }
    const result = await generate('--prompt', await promptOf(513), '--temperature', '0');
    expect(result.code).toBe(2);
    expect(result.stdout.length).toBe(0);
    expect(result.stderr).toMatch(/the prompt is 513 tokens; this model's context holds 512/);
    expect(result.stderr).not.toMatch(/tok\/s/);
  });
});

describe('glassbox CLI fuzz: tiny, huge, negative and non-finite numbers in every numeric flag', () => {
  const out = mkdtempSync(join(tmpdir(), 'glassbox-numbers-'));
  const flags: Record<string, string[]> = {
    generate: ['steps', 'temperature', 'top-p', 'top-k', 'min-p', 'seed'],
    train: [
      ...['vocab-size', 'dim', 'layers', 'heads', 'kv-heads', 'hidden', 'seq-len', 'batch', 'steps'],
      ...[
        'lr',
        'min-lr',
        'warmup',
        'weight-decay',
        'clip',
        'eval-every',
        'checkpoint-every',
        'seed',
        'shards',
      ],
      'threads',
    ],
    'train-tokenizer': ['vocab-size'],
  };
  const base: Record<string, string[]> = {
    generate: ['--model', '/nonexistent/m.bin'],
    train: ['--input', '/nonexistent/text.txt', '--out', join(out, 'run')],
    'train-tokenizer': ['--input', '/nonexistent/text.txt', '--out', join(out, 'tokenizer.json')],
  };
  const nonFinite = ['Infinity', '-Infinity', 'NaN', '1e400', '-1e400'];
  const finite = ['1e-400', '1e-40', '-1e-40', '-1', '0', '4.5', '1e300'];
  for (const [command, names] of Object.entries(flags)) {
    for (const flag of names) {
      it(`${command} --${flag}: non-finite values are refused naming the flag; others never crash`, async () => {
        for (const value of [...nonFinite, ...finite]) {
          const result = await runCli([command, ...base[command], `--${flag}=${value}`]);
          const label = `${command} --${flag}=${value}: ${result.stderr.split('\n')[0]}`;
          expect(result.stderr, label).not.toMatch(/\n\s+at |undefined/);
          expect([1, 2], label).toContain(result.code);
          if (result.code === 2) expect(result.stderr, label).toContain(`--${flag}`);
          if (nonFinite.includes(value)) expect(result.code, label).toBe(2);
        }
      });
    }
  }
});

describe('glassbox train on a short text', () => {
  it('reports the vocabulary it learned, not the one asked for, when the text runs out of pairs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glassbox-short-'));
    const input = join(dir, 'short.txt');
    const paragraph =
      'In the beginning God created the heavens and the earth. The earth was formless and empty.';
    writeFileSync(input, Array.from({ length: 40 }, (_, i) => `${paragraph} (${i})`).join('\n\n'));
    const out = join(dir, 'run');
    const result = await runCli([
      'train',
      '--input',
      input,
      '--out',
      out,
      '--steps',
      '1',
      '--seq-len',
      '16',
      '--threads',
      '1',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const file = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number> };
      added_tokens: { id: number }[];
    };
    const ids = new Set([...Object.values(file.model.vocab), ...file.added_tokens.map((token) => token.id)]);
    const learned = ids.size;
    expect(learned).toBeLessThan(4096);
    expect(result.stderr).toContain(`trained a ${learned}-token BPE tokenizer`);
    expect(result.stderr).toContain('4096 asked');
  });
});
