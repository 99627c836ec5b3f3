/**
 * The training run's output folder: which files belong to a run, and the checks before a run starts. A new
 * run never silently adopts an earlier run's files (a stale tokenizer.json once turned a 300-token run into a
 * 537-token one without a word): it refuses, unless told to continue (--resume) or to start over (--force).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { checkOutputFolder } from '../output-path.ts';
import { removeStaleTemporaries } from './files.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const LOG_FILE = 'train-log.jsonl';
/** The run's settings and how much it saw: what a model card needs besides the weights. */
export const TRAINING_SUMMARY_FILE = 'training.json';
export const TOKENIZER_FILE = 'tokenizer.json';

/** Every file a run writes in its folder. */
export const RUN_FILES: readonly string[] = [
  CHECKPOINT_FILE,
  LOG_FILE,
  TRAINING_SUMMARY_FILE,
  TOKENIZER_FILE,
  'config.json',
  'model.safetensors',
  'loss.svg',
];

export interface FolderIntent {
  /** Continue the run whose checkpoint is in the folder. */
  resume: boolean;
  /** Start over: remove an earlier run's files first. */
  force?: boolean;
}

/**
 * Makes `out` ready for a run: checks it can be written, creates it, removes temporary files a killed run
 * left, and then either requires a checkpoint (resume), clears an earlier run (force), or refuses to mix a
 * new run with an earlier one's files.
 */
export function prepareOutputFolder(out: string, intent: FolderIntent, log: (line: string) => void): void {
  checkOutputFolder(out);
  mkdirSync(out, { recursive: true });
  const removed = removeStaleTemporaries(out, RUN_FILES);
  if (removed.length > 0) log(`removed temporary files a stopped run left: ${removed.join(', ')}`);

  const checkpointPath = join(out, CHECKPOINT_FILE);
  if (intent.resume) {
    if (!existsSync(checkpointPath))
      throw new Error(`--resume: there is no checkpoint to resume from at ${checkpointPath}`);
    return;
  }
  const earlier = RUN_FILES.filter((name) => existsSync(join(out, name)));
  if (earlier.length === 0) return;
  if (!intent.force) {
    throw new Error(
      `${out} holds an earlier run's files (${earlier.join(', ')}): pass --resume to continue that run, ` +
        `--force to replace it, or choose another --out`,
    );
  }
  for (const name of earlier) rmSync(join(out, name));
  log(`--force: removed the earlier run's ${earlier.join(', ')}`);
}
