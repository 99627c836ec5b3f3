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
