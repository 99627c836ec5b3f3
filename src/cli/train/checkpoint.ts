/**
 * Training checkpoints on disk: the bytes of src/formats/training-checkpoint.ts in one file, written
 * atomically, so an interrupted save leaves the previous checkpoint intact.
 */
import { readFileSync } from 'node:fs';
import type { Model, ModelConfig } from '../../engine/model.ts';
import { parseCheckpoint, serializeCheckpoint, type Checkpoint } from '../../formats/training-checkpoint.ts';
import { writeFileAtomic } from './files.ts';

export { CHECKPOINT_FORMAT, type Checkpoint } from '../../formats/training-checkpoint.ts';

export function saveCheckpoint<Settings>(path: string, checkpoint: Checkpoint<Settings>): void {
  writeFileAtomic(path, serializeCheckpoint(checkpoint));
}

/** Reads a checkpoint, checking it is one of ours and complete; `template` gives the weights' structure. */
export function loadCheckpoint<Settings>(
  path: string,
  template: (config: ModelConfig) => Model,
): Checkpoint<Settings> {
  return parseCheckpoint(new Uint8Array(readFileSync(path)), path, template);
}
