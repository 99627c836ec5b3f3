/** What node.ts says when a path cannot be looked at: only a path that is truly absent is "not found". */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, statFailure } from '../src/formats/node.ts';

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('node.ts: why a path could not be looked at', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'glassbox-stat-'));
  afterAll(() => {
    try {
      chmodSync(join(scratch, 'locked'), 0o755);
    } catch {
      // the folder exists only where the last test ran
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  it('says "not found" only for ENOENT and ENOTDIR', () => {
    expect(statFailure(errno('ENOENT', 'x'), 'config.json')).toBe('config.json not found');
    expect(statFailure(errno('ENOTDIR', 'x'), 'config.json')).toBe('config.json not found');
    expect(statFailure(errno('EACCES', 'x'), 'config.json')).toMatch(/permission denied.*not be searchable/);
    expect(statFailure(errno('EPERM', 'x'), 'config.json')).toMatch(/permission denied/);
    expect(statFailure(errno('ELOOP', 'too many symbolic links'), 'config.json')).toBe(
      'config.json cannot be looked at: too many symbolic links',
    );
  });

  // Root may search any folder, so the real case can only be seen as another user.
  it.skipIf(process.getuid?.() === 0)('an unsearchable folder is not "missing config.json"', async () => {
    const locked = join(scratch, 'locked');
    mkdirSync(join(locked, 'model'), { recursive: true });
    chmodSync(locked, 0o000);
    await expect(loadModel(join(locked, 'model'))).rejects.toThrow(/permission denied/);
  });
});
