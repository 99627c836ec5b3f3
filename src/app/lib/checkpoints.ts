/**
 * The house model's history, for the training time-machine (chapter 14, and an option on chapters 4, 7, 8
 * and 10): the index of the checkpoints its training run kept, written by scripts/house-checkpoints.ts as
 * models/house/checkpoints/index.json and served beside the model (src/app/build/plugins.ts).
 *
 * Step 0 has no file (randomModel(config, seed) rebuilds it exactly), nor has the last step (it is the
 * house model itself); every step between has a Q8_0 GGUF file. A site built with a house model that has no
 * checkpoints serves no index: then there is no history, and the time-machine is not offered.
 *
 * Plain TypeScript (no Svelte): the page and the engine worker both read the index through here, each
 * fetching it once.
 */

/** Where the checkpoints are served, under the site's base. */
export const CHECKPOINTS_PATH = 'models/house/checkpoints/';
/** The house model's real training log (one JSON object a line), served beside it. */
export const TRAIN_LOG_PATH = 'models/house/train-log.jsonl';

export interface CheckpointStep {
  step: number;
  /** Tokens the run had read by this step (step × batch × window). */
  tokensSeen: number;
  /** The GGUF file in checkpoints/, or null: step 0 (rebuilt from the seed) and the last (the house model). */
  file: string | null;
  bytes: number;
  /** Validation loss per source of the corpus (e.g. web, brown) and over all of them ("all"). */
  valLoss: Record<string, number>;
  /** Greedy continuations of the index's prompts, one per prompt, by this checkpoint. */
  samples: string[];
}

export interface CheckpointIndex {
  /** The seed of randomModel that made step 0 (the run's own seed). */
  seed: number;
  prompts: string[];
  steps: CheckpointStep[];
  /**
   * The steps at which the run's learning rate rose again, where a finished run was resumed with a longer
   * schedule (`warmRestarts` of its log); empty for a run trained in one go.
   */
  restarts: number[];
}

/** A checkpoints index that cannot be used, saying exactly what is wrong with it. */
export class CheckpointIndexError extends Error {
  constructor(problem: string) {
    super(`${CHECKPOINTS_PATH}index.json: ${problem}`);
    this.name = 'CheckpointIndexError';
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isCount = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
/** A file name in checkpoints/ itself: no folders, no way out of it. */
const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*\.gguf$/;

/** The index's text, checked field by field; throws CheckpointIndexError naming the first problem. */
export function parseCheckpointIndex(text: string): CheckpointIndex {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CheckpointIndexError(`not JSON (${(error as Error).message})`);
  }
  if (!isObject(json)) throw new CheckpointIndexError('must be a JSON object');
  if (!isCount(json.seed)) throw new CheckpointIndexError('missing the field seed (a non-negative integer)');
  const prompts = json.prompts ?? [];
  if (!Array.isArray(prompts) || !prompts.every((prompt) => typeof prompt === 'string'))
    throw new CheckpointIndexError('prompts must be a list of strings');
  if (!Array.isArray(json.steps)) throw new CheckpointIndexError('missing the field steps (a list)');
  if (json.steps.length < 2)
    throw new CheckpointIndexError(
      `steps lists ${json.steps.length} step${json.steps.length === 1 ? '' : 's'}; a history needs at least the first and the last`,
    );
  const steps: CheckpointStep[] = json.steps.map((entry: unknown, i: number, all: unknown[]) => {
    const where = `steps[${i}]`;
    if (!isObject(entry)) throw new CheckpointIndexError(`${where} must be an object`);
    const field = (name: string) => {
      if (!(name in entry)) throw new CheckpointIndexError(`${where} is missing the field ${name}`);
      return entry[name];
    };
    const step = field('step');
    if (!isCount(step)) throw new CheckpointIndexError(`${where}.step must be a non-negative integer`);
    if (i === 0 && step !== 0)
      throw new CheckpointIndexError(`the first step must be 0 (the untrained model), not ${step}`);
    const tokensSeen = field('tokensSeen');
    if (!isCount(tokensSeen))
      throw new CheckpointIndexError(`${where}.tokensSeen must be a non-negative integer`);
    const file = field('file');
    const last = i === all.length - 1;
    if (step === 0 || last) {
      if (file !== null)
        throw new CheckpointIndexError(
          `${where} (step ${step}) must have file null: ${step === 0 ? 'step 0 is rebuilt from the seed' : 'the last step is the house model itself'}`,
        );
    } else if (typeof file !== 'string' || !FILE_NAME.test(file)) {
      throw new CheckpointIndexError(
        `${where}.file must name a .gguf file in checkpoints/, got ${JSON.stringify(file)}`,
      );
    }
    const bytes = field('bytes');
    if (!isCount(bytes)) throw new CheckpointIndexError(`${where}.bytes must be a non-negative integer`);
    const valLoss = field('valLoss');
    if (
      !isObject(valLoss) ||
      Object.keys(valLoss).length === 0 ||
      !Object.values(valLoss).every((loss) => typeof loss === 'number' && Number.isFinite(loss))
    )
      throw new CheckpointIndexError(`${where}.valLoss must map each source to a finite loss`);
    const samples = field('samples');
    if (!Array.isArray(samples) || !samples.every((sample) => typeof sample === 'string'))
      throw new CheckpointIndexError(`${where}.samples must be a list of strings`);
    return {
      step,
      tokensSeen,
      file: file as string | null,
      bytes,
      valLoss: valLoss as Record<string, number>,
      samples: samples as string[],
    };
  });
  const restarts = json.restarts ?? [];
  if (!Array.isArray(restarts) || !restarts.every((step) => isCount(step) && step > 0))
    throw new CheckpointIndexError('restarts must be a list of step numbers');
  for (let i = 1; i < steps.length; i++) {
    if (steps[i].step <= steps[i - 1].step)
      throw new CheckpointIndexError(
        `steps must increase: steps[${i}] is step ${steps[i].step}, after step ${steps[i - 1].step}`,
      );
  }
  return { seed: json.seed, prompts: prompts as string[], steps, restarts: restarts as number[] };
}

/** The index's entry for `step`, or undefined when the run kept no checkpoint there. */
export function checkpointAt(index: CheckpointIndex, step: number): CheckpointStep | undefined {
  return index.steps.find((entry) => entry.step === step);
}

/** The step of the house model itself (the run's last). */
export function lastStep(index: CheckpointIndex): number {
  return index.steps[index.steps.length - 1].step;
}

/** How the course names the house model at `step`: "the house model at step 630 of 3,000". */
export function checkpointLabel(step: number, last: number): string {
  return `the house model at step ${step.toLocaleString('en')} of ${last.toLocaleString('en')}`;
}

/** A checkpoint's validation loss over all the held-out text (its one source's, for a one-source run). */
export function overallLoss(entry: CheckpointStep): number {
  return entry.valLoss.all ?? Object.values(entry.valLoss)[0];
}

/** What chapter 14's prose says of the run's history, every number from the index. */
export interface HistorySummary {
  /** How many checkpoints the run kept, step 0 and the last included. */
  count: number;
  last: number;
  /** The first two kept steps after step 0 (the same one twice when there is only one). */
  first: number;
  second: number;
  /**
   * The usual factor from one kept step to the next (step 0 aside): the median of the factors, so that a run
   * resumed with a longer schedule, whose few later checkpoints are spaced on its new scale, does not skew it.
   */
  ratio: number;
  /** How many GGUF files, and their megabytes together. */
  files: number;
  megabytes: number;
  /** Tokens the whole run read. */
  tokens: number;
  /** The overall validation loss at step 0, at the kept step nearest a tenth of the run, and at the last. */
  untrained: number;
  early: { step: number; loss: number };
  final: number;
  /** Where the run was resumed with a longer schedule (the index's restarts). */
  restarts: number[];
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export function historySummary(index: CheckpointIndex): HistorySummary {
  const steps = index.steps.map((entry) => entry.step);
  const last = lastStep(index);
  const files = index.steps.filter((entry) => entry.file !== null);
  const early = index.steps.reduce((best, entry) =>
    Math.abs(entry.step - last / 10) < Math.abs(best.step - last / 10) ? entry : best,
  );
  return {
    count: steps.length,
    last,
    first: steps[1],
    second: steps[2] ?? steps[1],
    ratio: median(steps.slice(2).map((step, i) => step / steps[i + 1])) ?? 1,
    files: files.length,
    megabytes: files.reduce((sum, entry) => sum + entry.bytes, 0) / 1e6,
    tokens: index.steps[index.steps.length - 1].tokensSeen,
    untrained: overallLoss(index.steps[0]),
    early: { step: early.step, loss: overallLoss(early) },
    final: overallLoss(index.steps[index.steps.length - 1]),
    restarts: index.restarts,
  };
}

/**
 * The index served under `base` (the site's root URL, no trailing slash): undefined when the site has none
 * (a house model without history: HTTP 404), else the checked index; anything else (a server error, a
 * malformed index) throws. Fetched once per `base`; a failure is not remembered, so a later call tries again.
 */
const fetched = new Map<string, Promise<CheckpointIndex | undefined>>();
export function loadCheckpointIndex(
  base: string,
  fetcher: typeof fetch = (...args) => fetch(...args),
): Promise<CheckpointIndex | undefined> {
  let pending = fetched.get(base);
  if (!pending) {
    pending = (async () => {
      const url = `${base}/${CHECKPOINTS_PATH}index.json`;
      const response = await fetcher(url);
      if (response.status === 404) return undefined;
      if (!response.ok) throw new Error(`${url} could not be loaded (HTTP ${response.status})`);
      return parseCheckpointIndex(await response.text());
    })();
    fetched.set(base, pending);
    pending.catch(() => fetched.delete(base));
  }
  return pending;
}
