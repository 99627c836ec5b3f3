/**
 * train-log.jsonl: one JSON line per step. The log is written before the checkpoint at every save, so after
 * a crash it is never behind the checkpoint; a resumed run cuts it back to the checkpoint's step at once, so
 * the two agree however the previous run ended.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { TrainingLogLine } from '../../engine/train/loop.ts';
import { FormatError } from '../../formats/errors.ts';
import { writeFileAtomic } from './files.ts';

/** A line of the log: what the training loop reports after each step. */
export type LogLine = TrainingLogLine;

/** The log's lines up to and including `upToStep`; a line that is not JSON is named. */
export function readLog(path: string, upToStep: number): LogLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, index) => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        throw new FormatError(path, `line ${index + 1} is not JSON`);
      }
    })
    .filter((line) => line.step <= upToStep);
}

export function logText(log: readonly LogLine[]): string {
  return log.map((line) => JSON.stringify(line)).join('\n') + '\n';
}

/** Rewrites the log without the steps after `step` (those a checkpoint does not hold); returns what is kept. */
export function truncateLog(path: string, step: number): LogLine[] {
  const kept = readLog(path, step);
  if (existsSync(path)) writeFileAtomic(path, logText(kept));
  return kept;
}
