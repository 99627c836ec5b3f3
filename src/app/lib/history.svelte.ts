/**
 * The house model's history on the page (chapter 14's time-machine and the option on chapters 4, 7, 8 and
 * 10): its checkpoints' index, asked for by the first figure that shows it (and never by a chapter that
 * does not), and the step the reader has chosen on a scrubber, which chapter 14's two figures share.
 */
import builtWithHistory from 'virtual:glassbox-house-history';
import { checkpointAt, lastStep, loadCheckpointIndex, type CheckpointIndex } from './checkpoints.ts';
import { siteBase } from './paths.ts';
import { course } from './state/course.svelte.ts';
import { houseCheckpointStepOf } from './train/model-id.ts';

export const history: {
  /** The checked index, once asked for and when the site has one. */
  index: CheckpointIndex | undefined;
  /** Why the index could not be used (a malformed file), for chapter 14 to say. */
  failure: string | undefined;
  /** The step chosen on chapter 14's scrubber (undefined: the course's model's own step). */
  selected: number | undefined;
} = $state({ index: undefined, failure: undefined, selected: undefined });

let asked = false;

/**
 * Fetches the index once per page (later calls do nothing, unless it failed: then the next figure to show
 * it asks again). A site built from a house model without a history knows so from the build, and asks for
 * nothing.
 */
export function askForHistory(): void {
  if (asked || !builtWithHistory) return;
  asked = true;
  loadCheckpointIndex(siteBase()).then(
    (index) => {
      history.index = index;
      history.failure = undefined;
    },
    (error: unknown) => {
      history.failure = error instanceof Error ? error.message : String(error);
      asked = false;
    },
  );
}

/** The step of the course's model in the history: its checkpoint's, or the last for the house model itself. */
export function courseModelStep(index: CheckpointIndex): number | undefined {
  if (course.model === 'house') return lastStep(index);
  const step = houseCheckpointStepOf(course.model);
  return step !== undefined && checkpointAt(index, step) ? step : undefined;
}
