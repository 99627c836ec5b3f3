/**
 * The page's side of the engine worker: starts it, loads the default model with a progress bar, and keeps
 * the reading of the reader's current text (its tokens, and the one traced forward pass every figure slices)
 * up to date. Components read `engine` (reactive); only the newest request's answer is kept, so fast typing
 * never shows a stale figure. A chapter's figures ask their own questions through `chapterWorker`.
 */
import * as Comlink from 'comlink';
import type {
  GeneratedStep,
  GenerateSettings,
  KernelChoice,
  LoadProgress,
  ModelInfo,
  Reading,
} from './protocol.ts';
import type { EngineApi } from './server.ts';
import { course } from '../state/course.svelte.ts';
import { houseCheckpointId, houseCheckpointStepOf, trainedModelId, trainedRunOf } from '../train/model-id.ts';
import { siteBase } from '../paths.ts';
import { lastChoiceWins } from './last-choice.ts';

export type EngineStatus = 'idle' | 'loading' | 'ready' | 'error';

interface EngineState {
  status: EngineStatus;
  progress: LoadProgress;
  /** Why loading or analysing failed, in words for the reader. */
  error: string | undefined;
  model: ModelInfo | undefined;
  /** The reader's text as the model read it (tokens, pieces), for the pass every figure slices. */
  reading: Reading | undefined;
  /** True while a newer reading than the one shown is being computed. */
  busy: boolean;
  generating: boolean;
  /** True while a model file from the reader's disk is being read. */
  opening: boolean;
  /** Why the reader's model file could not be used (the previous model stays loaded). */
  fileError: string | undefined;
}

export const engine: EngineState = $state({
  status: 'idle',
  progress: { received: 0, total: 0 },
  error: undefined,
  model: undefined,
  reading: undefined,
  busy: false,
  generating: false,
  opening: false,
  fileError: undefined,
});

let remote: Comlink.Remote<EngineApi> | undefined;

/**
 * One chapter's handlers in the worker (chapters/NN-slug/worker.ts), under the chapter's slug:
 * `chapterWorker<typeof import('./worker.ts').handlers>(chapter.slug).summary(tokens)`.
 */
export function chapterWorker<Handlers>(slug: string): Comlink.Remote<Handlers> {
  const chapters = worker().chapters as unknown as Record<string, Comlink.Remote<Handlers>>;
  return chapters[slug];
}

/** How many traced forward passes the worker has run (the e2e suite counts one per keystroke). */
export function tracedPasses(): Promise<number> {
  return worker().tracedPasses();
}

function worker(): Comlink.Remote<EngineApi> {
  if (!remote) {
    const thread = new Worker(new URL('./server.ts', import.meta.url), {
      type: 'module',
      name: 'glassbox-engine',
    });
    // A worker that fails to start or dies (out of memory, say) would otherwise leave every figure waiting.
    thread.addEventListener('error', (event) => {
      engine.status = 'error';
      engine.error = `The engine stopped working${event.message ? `: ${event.message}` : ''}. Reload the page to start it again.`;
    });
    remote = Comlink.wrap<EngineApi>(thread);
  }
  return remote;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function showProgress(progress: LoadProgress): void {
  engine.progress = progress;
}

/** Loads the default model once (later calls return the same promise). */
let loading: Promise<void> | undefined;
export function loadDefaultModel(base: string): Promise<void> {
  loading ??= (async () => {
    engine.status = 'loading';
    // A link (or this tab) that names a model trained in chapter 14 opens it from this browser's storage.
    const run = trainedRunOf(course.model);
    if (run !== undefined) {
      try {
        engine.model = await worker().loadTrainedRun(run);
        engine.status = 'ready';
        engine.error = undefined;
        return;
      } catch (error) {
        engine.fileError = `The link names a model trained in a browser (${course.model}), and ${message(error)}: you are seeing the house model.`;
        course.model = 'house';
      }
    }
    // A link that names the house model at a step of its training ("house@630") opens that checkpoint.
    const step = houseCheckpointStepOf(course.model);
    if (step !== undefined) {
      try {
        engine.model = await worker().loadHouseCheckpoint(base, step, Comlink.proxy(showProgress));
        course.model = engine.model.id; // the run's last step is the house model itself: 'house'
        engine.status = 'ready';
        engine.error = undefined;
        return;
      } catch (error) {
        engine.fileError = `The link names the house model at step ${step.toLocaleString('en')} of its training, but ${message(error)}: you are seeing the house model.`;
        course.model = 'house';
      }
    }
    try {
      engine.model = await worker().loadHfFolder(
        `${base}/models/house/`,
        'house',
        'the house model',
        Comlink.proxy(showProgress),
      );
      engine.status = 'ready';
      engine.error = undefined;
    } catch (error) {
      engine.status = 'error';
      engine.error = `The model could not be loaded. ${message(error)}`;
    }
  })();
  return loading;
}

/**
 * Every change of the course's model goes through here (lib/worker/last-choice.ts), after the first load:
 * the worker installs models in the order the reader chose them, and the last choice wins. Scrubbing
 * quickly ends on the last step chosen, and "back to the house model" pressed while a checkpoint is
 * opening is not undone when that checkpoint arrives.
 */
const switchInTurn = lastChoiceWins(() => loading);

/**
 * Loads the house model again (after a model from disk, one trained in chapter 14, or a checkpoint). The
 * course's model becomes 'house' first: loading the default model opens whatever `course.model` names.
 */
export function useHouseModel(base: string): Promise<void> {
  return switchInTurn(async () => {
    course.model = 'house';
    loading = undefined;
    engine.fileError = undefined;
    await loadDefaultModel(base);
    return true;
  }).then(() => undefined);
}

/**
 * Makes a model trained in chapter 14 (stored in this browser) the course's model. On failure the loaded
 * model stays and `engine.fileError` says why. Returns whether it succeeded.
 */
export function openTrainedModel(runId: string): Promise<boolean> {
  return switchInTurn(() =>
    openModel(
      'That model',
      () => worker().loadTrainedRun(runId),
      () => trainedModelId(runId),
    ),
  );
}

/**
 * Makes the house model at `step` of its training run the course's model (chapter 14's time-machine):
 * every chapter's figures then run on that checkpoint. The run's last step is the house model itself.
 * On failure the loaded model stays and `engine.fileError` says why. Returns whether the model is now that
 * step (false also when a newer choice overtook it before its turn).
 */
export function openHouseCheckpoint(step: number, base = siteBase()): Promise<boolean> {
  return switchInTurn(() =>
    openModel(
      'That checkpoint',
      () => worker().loadHouseCheckpoint(base, step, Comlink.proxy(showProgress)),
      (info) => (info.id === 'house' ? 'house' : houseCheckpointId(step)),
    ),
  );
}

/**
 * Loads a model in the worker with `load` and makes it the course's model, named `courseModel(info)` in
 * links; on failure the previous model stays and `engine.fileError` says why, starting with `what` ("That
 * checkpoint"). Returns whether it succeeded.
 */
async function openModel(
  what: string,
  load: () => Promise<ModelInfo>,
  courseModel: (info: ModelInfo) => string,
): Promise<boolean> {
  engine.fileError = undefined;
  engine.opening = true;
  try {
    const info = await load();
    engine.model = info;
    engine.status = 'ready';
    engine.error = undefined;
    course.model = courseModel(info);
    return true;
  } catch (error) {
    engine.fileError = `${what} could not be opened, so ${engine.model?.label ?? 'the previous model'} stays loaded. ${message(error)}`;
    return false;
  } finally {
    engine.opening = false;
  }
}

/** Files above this size cannot be read into a browser tab's memory reliably. */
const MAX_FILE_BYTES = 2 ** 31 - 1;

/**
 * Loads a model from files the reader chose; the course's model is then 'local'. On success the new model
 * replaces the old; on failure the old one stays and `engine.fileError` says exactly what was wrong.
 * Returns whether it succeeded.
 */
export function openFiles(files: File[]): Promise<boolean> {
  return switchInTurn(() =>
    openModel(
      'That model',
      async () => {
        const tooBig = files.find((file) => file.size > MAX_FILE_BYTES);
        if (tooBig)
          throw new Error(
            `${tooBig.name}: ${(tooBig.size / 1e9).toFixed(1)} GB is too large to open in a browser tab`,
          );
        const local = await Promise.all(
          files.map(async (file) => ({ name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) })),
        );
        return worker().loadFiles(
          Comlink.transfer(
            local,
            local.map((file) => file.bytes.buffer),
          ),
        );
      },
      () => 'local',
    ),
  );
}

let newestRequest = 0;

/**
 * Reads `prompt` with the chosen kernels (tokens and one traced forward pass in the worker); answers to
 * older requests are dropped when they arrive.
 */
export async function readText(prompt: string, kernels: KernelChoice = 'auto'): Promise<void> {
  if (engine.status !== 'ready') return;
  const request = ++newestRequest;
  engine.busy = true;
  try {
    const reading = await worker().read(prompt, kernels);
    if (request !== newestRequest) return;
    engine.reading = reading;
    if (engine.model) engine.model.kernels = reading.kernels;
    engine.error = undefined;
    publishForTests(reading);
  } catch (error) {
    if (request === newestRequest) engine.error = message(error);
  } finally {
    if (request === newestRequest) engine.busy = false;
  }
}

let stopRequested = false;

/** Extends `prompt` token by token; `onStep` receives each new text. Returns the number of tokens added. */
export async function generate(
  prompt: string,
  settings: GenerateSettings,
  onStep: (step: GeneratedStep) => void | Promise<void>,
): Promise<number> {
  stopRequested = false;
  engine.generating = true;
  try {
    return await worker().generate(
      prompt,
      settings,
      Comlink.proxy(async (step: GeneratedStep) => {
        await onStep(step);
        return !stopRequested;
      }),
    );
  } finally {
    engine.generating = false;
  }
}

export function stopGenerating(): void {
  stopRequested = true;
}

/**
 * The numbers each chapter's figures show, by figure name, for the end-to-end tests (plain data): a figure
 * calls this after it has drawn, e.g. `publishFigure('embeddings.neighbours', { token, neighbours })`, most
 * often through figurePublishes below.
 * The plain copy is made when a test first reads it, not on every keystroke: the reader should not pay
 * for the tests. `drawnFor` says at once which tokens each figure was last drawn for.
 */
const figures: Record<string, unknown> = {};
const drawnFor: Record<string, unknown> = {};
export function publishFigure(name: string, data: unknown): void {
  let copy: unknown;
  let copied = false;
  Object.defineProperty(figures, name, {
    configurable: true,
    enumerable: true,
    get() {
      if (!copied) [copy, copied] = [$state.snapshot(data), true];
      return copy;
    },
  });
  drawnFor[name] = $state.snapshot((data as { tokens?: unknown } | undefined)?.tokens);
  firstLiveMs ??= performance.now();
  const hook = (
    globalThis as { __glassbox?: { figures?: unknown; drawnFor?: unknown; firstLiveMs?: number } }
  ).__glassbox;
  if (hook) {
    hook.figures = figures;
    hook.drawnFor = drawnFor;
    hook.firstLiveMs = firstLiveMs;
  }
}

/**
 * From a figure's setup: publishes (publishFigure) what `data` returns, under `name`, every time what it
 * reads changes, and nothing while it returns undefined (nothing is drawn yet). Declared after the effect
 * that draws, it runs after it. The name may be a function when it depends on a prop (`attention.${stage}`).
 */
export function figurePublishes(name: string | (() => string), data: () => unknown): void {
  $effect(() => {
    const value = data();
    if (value !== undefined) publishFigure(typeof name === 'string' ? name : name(), value);
  });
}

/**
 * The test hook: the numbers the figures show, for the end-to-end tests to compare with a Node run of the
 * engine. Plain data, no functions (the count of traced passes, which asks the worker, is a function of its
 * own: `__glassboxTracedPasses()`).
 */
let firstLiveMs: number | undefined;
function publishForTests(reading: Reading): void {
  (globalThis as { __glassboxTracedPasses?: () => Promise<number> }).__glassboxTracedPasses = tracedPasses;
  (globalThis as { __glassbox?: unknown }).__glassbox = {
    model: $state.snapshot(engine.model),
    prompt: reading.prompt,
    tokens: reading.tokens,
    timings: reading.timings,
    kernels: reading.kernels,
    /** Milliseconds from the start of the page's navigation to the first figure drawn from the engine's
     * numbers (a figure's publishFigure); undefined until then. */
    firstLiveMs,
    figures,
    drawnFor,
  };
}
