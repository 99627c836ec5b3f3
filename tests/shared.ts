/**
 * Where the test data from ../shared lives. Those files (models and llama2.c oracle outputs) never enter the
 * repository; suites that need them skip, saying so, when ../shared is absent.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe } from 'vitest';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const SHARED = process.env.GLASSBOX_SHARED ?? resolve(repoRoot, '..', 'shared');

export const STORIES260K = join(SHARED, 'models', 'stories260K', 'stories260K.bin');
export const TOK512 = join(SHARED, 'models', 'stories260K', 'tok512.bin');
export const STORIES260K_HF = join(SHARED, 'models', 'stories260K-hf');
export const ORACLE = join(SHARED, 'oracle', 'stories260K');

export const haveShared = existsSync(STORIES260K) && existsSync(TOK512) && existsSync(ORACLE);

if (!haveShared) {
  console.warn(
    `[glassbox tests] ${SHARED} not found: skipping the suites that need the shared models and oracle.`,
  );
}

/** `describe` that skips (and says why) when ../shared is missing. */
export const describeShared = (name: string, body: () => void) =>
  haveShared ? describe(name, body) : describe.skip(`${name} (skipped: ../shared is absent)`, body);

export function readOracleJson<T>(relativePath: string): T {
  return JSON.parse(readFileSync(join(ORACLE, relativePath), 'utf8')) as T;
}
