import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { MAX_TEXT_BYTES, readTextFile } from '../src/cli/text-input.ts';
import { decode, encode, fromTokenizerJson } from '../src/tokenizers/bpe.ts';
import { fifo, runCli, unwritableFolder } from './cli-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'glassbox-tok-'));
const text = 'the cat and the hat and the bat\n'.repeat(50) + 'thé ünïcode 🙂\n';

describe('glassbox train-tokenizer', () => {
  it('writes a tokenizer.json that loads and round-trips, and the merges in order with counts', async () => {
    const input = join(dir, 'small.txt');
    writeFileSync(input, text);
    const out = join(dir, 'tokenizer.json');
    const merges = join(dir, 'merges.tsv');
    const result = await runCli([
      'train-tokenizer',
      '--input',
      input,
      '--vocab-size',
      '270',
      '--out',
      out,
      '--merges',
      merges,
    ]);
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/270 tokens learned/);

    const tokenizer = fromTokenizerJson(readFileSync(out, 'utf8'), out);
    expect(tokenizer.tokenBytes).toHaveLength(270);
    expect(decode(tokenizer, encode(tokenizer, text))).toBe(text);

    const rows = readFileSync(merges, 'utf8').trim().split('\n');
    expect(rows[0]).toBe('rank\tleft\tright\tmerged\tcount\tpiece');
    expect(rows).toHaveLength(1 + 12);
    // The most frequent adjacent byte pair within pre-tokens: " t" / "th"/"he"… counted by hand below.
    const [rank, left, right, merged, count] = rows[1].split('\t');
    expect([rank, merged]).toEqual(['0', '258']);
    const pair = String.fromCharCode(Number(left), Number(right));
    const occurrences = text.split(pair).length - 1;
    expect(Number(count)).toBe(occurrences);
  });

  it('reads gzip input and names bad input precisely', async () => {
    const gz = join(dir, 'small.txt.gz');
    writeFileSync(gz, gzipSync(Buffer.from(text)));
    expect(await readTextFile(gz)).toBe(text);

    const bad = join(dir, 'latin1.txt');
    writeFileSync(bad, Buffer.concat([Buffer.from('abc'), Buffer.from([0xff]), Buffer.from('def')]));
    await expect(readTextFile(bad)).rejects.toThrow(`${bad}: not valid UTF-8 (first bad byte at offset 3)`);
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    await expect(readTextFile(empty)).rejects.toThrow(/the text is empty/);
    const notGzip = join(dir, 'fake.gz');
    writeFileSync(notGzip, 'plain');
    await expect(readTextFile(notGzip)).rejects.toThrow(/not a readable gzip file/);
    await expect(readTextFile(join(dir, 'missing.txt'))).rejects.toThrow(/no such file/);
  });

  it('wrong arguments give usage and a specific message', async () => {
    expect((await runCli(['train-tokenizer', '--out', 'x.json'])).stderr).toMatch(/--input is required/);
    const small = await runCli(['train-tokenizer', '--input', 'x', '--out', 'y', '--vocab-size', '100']);
    expect(small.code).toBe(2);
    expect(small.stderr).toMatch(/--vocab-size must be a whole number from 258/);
  });
});

describe('glassbox train-tokenizer: outputs are checked before work starts, and nothing temporary is left', () => {
  const input = join(dir, 'outputs-input.txt');
  writeFileSync(input, text);
  const entries = (folder: string) => (isFolder(folder) ? readdirSync(folder).sort() : []);
  const isFolder = (path: string) => existsSync(path) && statSync(path).isDirectory();
  const unwritable = unwritableFolder();

  const cases: [string, () => string, RegExp][] = [
    ['a directory', () => mkdtempSync(join(dir, 'out-dir-')), /it is a directory, not a file/],
    ['a FIFO', () => fifo(join(dir, 'out.fifo')), /it is a FIFO \(named pipe\), not a file/],
    [
      'in a missing folder',
      () => join(dir, 'no-such-folder', 'tokenizer.json'),
      /the folder .* does not exist/,
    ],
    ['under a file', () => join(input, 'tokenizer.json'), /is not a folder/],
    ['in a folder it may not write', () => join(unwritable, 'tokenizer.json'), /permission denied/],
    ['the input itself', () => input, /it is also the input, which would be lost/],
  ];
  for (const [kind, makePath, message] of cases) {
    for (const flag of ['--out', '--merges']) {
      it(`${flag} ${kind}: one line naming the path, exit 1, nothing written beside it`, async () => {
        const path = makePath();
        const other = join(dir, `other-${flag.slice(2)}.json`);
        const parent = dirname(resolve(path));
        const before = entries(parent);
        const outputs =
          flag === '--out' ? ['--out', path, '--merges', other] : ['--out', other, '--merges', path];
        const result = await runCli(['train-tokenizer', '--input', input, '--vocab-size', '270', ...outputs]);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(message);
        expect(result.stderr.startsWith(`glassbox: ${path}: `)).toBe(true);
        expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
        expect(entries(parent)).toEqual(before);
        expect(readFileSync(input, 'utf8')).toBe(text);
      });
    }
  }

  it('the same path for --out and --merges is refused', async () => {
    const path = join(dir, 'both.json');
    const result = await runCli(['train-tokenizer', '--input', input, '--out', path, '--merges', path]);
    expect(result.stderr).toMatch(/is given as two different outputs/);
    expect(existsSync(path)).toBe(false);
  });

  it('a run that fails after the checks leaves no temporary file', async () => {
    const folder = mkdtempSync(join(dir, 'failing-'));
    const bad = join(folder, 'latin1.txt');
    writeFileSync(bad, Buffer.from([0x61, 0xff]));
    const result = await runCli(['train-tokenizer', '--input', bad, '--out', join(folder, 'tokenizer.json')]);
    expect(result.code).toBe(1);
    expect(entries(folder)).toEqual(['latin1.txt']);
  });

  it('an input that is a FIFO or a directory says so (and does not block reading a pipe)', async () => {
    const pipe = fifo(join(dir, 'in.fifo'));
    await expect(readTextFile(pipe)).rejects.toThrow(`${pipe}: is a FIFO (named pipe), not a text file`);
    await expect(readTextFile(dir)).rejects.toThrow(`${dir}: is a directory, not a text file`);
  });

  it('a gzip bomb is refused once decompression passes the limit', async () => {
    const bomb = join(dir, 'bomb.txt.gz');
    writeFileSync(bomb, gzipSync(Buffer.alloc(MAX_TEXT_BYTES + 1, 0x61), { level: 1 }));
    await expect(readTextFile(bomb)).rejects.toThrow(/decompresses to more than the \d+-byte limit/);
  });
});
