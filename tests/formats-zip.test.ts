/**
 * ZIP archives: what zipStored writes, Info-ZIP's `unzip` reads back byte for byte; what Info-ZIP's `zip`
 * writes (deflated), unzip reads back; a damaged archive is refused by name.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { crc32, unzip, zipStored } from '../src/formats/zip.ts';

const hasZipTools = (() => {
  try {
    execFileSync('zip', ['-v'], { stdio: 'ignore' });
    execFileSync('unzip', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const files = [
  { name: 'model/config.json', bytes: new TextEncoder().encode('{"dim": 64}\n') },
  { name: 'model/model.safetensors', bytes: Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 251) },
  { name: 'model/tokenizer.json', bytes: new TextEncoder().encode('{"model": {"type": "BPE"}} é ✓') },
];

describe('zip', () => {
  it('computes the standard CRC-32', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
  });

  it('reads back what it writes, and writes the same bytes every time', async () => {
    const zip = zipStored(files);
    expect(zipStored(files)).toEqual(zip);
    expect(await unzip(zip, 'model.zip')).toEqual(files);
  });

  it.skipIf(!hasZipTools)(
    'writes what Info-ZIP unzip extracts, and reads what Info-ZIP zip deflates',
    async () => {
      const folder = mkdtempSync(join(tmpdir(), 'glassbox-zip-'));
      try {
        writeFileSync(join(folder, 'ours.zip'), zipStored(files));
        execFileSync('unzip', ['-q', 'ours.zip', '-d', 'out'], { cwd: folder });
        for (const file of files)
          expect(new Uint8Array(readFileSync(join(folder, 'out', file.name)))).toEqual(file.bytes);
        execFileSync('zip', ['-q', '-r', '-9', 'theirs.zip', 'model'], { cwd: join(folder, 'out') });
        const theirs = await unzip(
          new Uint8Array(readFileSync(join(folder, 'out', 'theirs.zip'))),
          'theirs.zip',
        );
        expect(theirs.map((entry) => entry.name).sort()).toEqual(files.map((file) => file.name).sort());
        for (const file of files)
          expect(theirs.find((entry) => entry.name === file.name)!.bytes).toEqual(file.bytes);
      } finally {
        rmSync(folder, { recursive: true, force: true });
      }
    },
  );

  it('refuses what is not a whole archive, naming the file', async () => {
    const zip = zipStored(files);
    await expect(unzip(zip.subarray(0, 100), 'cut.zip')).rejects.toThrow(/cut\.zip.*not a ZIP archive/);
    const damaged = zip.slice();
    damaged[200] ^= 0xff; // inside the first file's bytes
    await expect(unzip(damaged, 'damaged.zip')).rejects.toThrow(/damaged\.zip.*CRC-32 does not match/);
  });
});
