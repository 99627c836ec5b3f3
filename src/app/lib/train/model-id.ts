/**
 * The course's name for a model trained in chapter 14: "trained:<run>". Such a model lives only in the
 * browser that trained it (IndexedDB): a link can name it, but only that browser can open it.
 */
const PREFIX = 'trained:';

/** e.g. "trained:run-lx3k2". */
export function trainedModelId(runId: string): string {
  return `${PREFIX}${runId}`;
}

/** The run a model name refers to, or undefined for any other model. */
export function trainedRunOf(model: string): string | undefined {
  const run = model.startsWith(PREFIX) ? model.slice(PREFIX.length) : '';
  return /^[a-z0-9-]{1,40}$/.test(run) ? run : undefined;
}

/**
 * The course's name for the house model at one of its training run's checkpoints (the time-machine of
 * chapter 14): "house@<step>", e.g. "house@630". Whether that step exists is for the checkpoints' index to
 * say (lib/checkpoints.ts); this only reads the name.
 */
const HOUSE_AT = /^house@(0|[1-9][0-9]{0,8})$/;

/** e.g. "house@630". */
export function houseCheckpointId(step: number): string {
  return `house@${step}`;
}

/** The step a model name refers to ("house@630" → 630), or undefined for any other model. */
export function houseCheckpointStepOf(model: string): number | undefined {
  const match = HOUSE_AT.exec(model);
  return match ? Number(match[1]) : undefined;
}

/** Whether `model` names the house model or one of its checkpoints (the models the time-machine belongs to). */
export function isHouseOrCheckpoint(model: string): boolean {
  return model === 'house' || houseCheckpointStepOf(model) !== undefined;
}
