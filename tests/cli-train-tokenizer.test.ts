import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readTrainingText } from '../src/cli/text-input.ts';
import { decode, encode, fromTokenizerJson } from '../src/tokenizers/bpe.ts';
import { runCli } from './cli-helpers.ts';

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
    expect(await readTrainingText(gz)).toBe(text);

    const bad = join(dir, 'latin1.txt');
    writeFileSync(bad, Buffer.concat([Buffer.from('abc'), Buffer.from([0xff]), Buffer.from('def')]));
    await expect(readTrainingText(bad)).rejects.toThrow(
      `${bad}: not valid UTF-8 (first bad byte at offset 3)`,
    );
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    await expect(readTrainingText(empty)).rejects.toThrow(/the text is empty/);
    const notGzip = join(dir, 'fake.gz');
    writeFileSync(notGzip, 'plain');
    await expect(readTrainingText(notGzip)).rejects.toThrow(/not a readable gzip file/);
    await expect(readTrainingText(join(dir, 'missing.txt'))).rejects.toThrow(/no such file/);
  });

  it('wrong arguments give usage and a specific message', async () => {
    expect((await runCli(['train-tokenizer', '--out', 'x.json'])).stderr).toMatch(/--input is required/);
    const small = await runCli(['train-tokenizer', '--input', 'x', '--out', 'y', '--vocab-size', '100']);
    expect(small.code).toBe(2);
    expect(small.stderr).toMatch(/--vocab-size must be a whole number from 258/);
  });
});
