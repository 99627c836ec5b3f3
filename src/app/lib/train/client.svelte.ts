/**
 * The page's side of the trainer worker (trainer-worker.ts): starts it, and keeps what the figures draw —
 * the run's settings, its log, samples and the last checkpoint saved — in one reactive object. Training runs
 * off the main thread; a step reaches the page as one small message.
 */
import * as Comlink from 'comlink';
import type { TrainingLogLine } from '../../../engine/train/loop.ts';
import type {
  ModelFiles,
  RunInfo,
  Sample,
  SavedRun,
  SaveUpdate,
  StartRequest,
  StepUpdate,
  SurpriseReading,
  TrainOutcome,
} from './protocol.ts';
import type { TrainerApi } from './trainer-worker.ts';

export type TrainerPhase = 'idle' | 'preparing' | 'training' | 'pausing' | 'paused' | 'finished';

interface TrainerState {
  phase: TrainerPhase;
  info: RunInfo | undefined;
  log: TrainingLogLine[];
  samples: Sample[];
  /** Seconds per step, smoothed (the loop's own average). */
  secondsPerStep: number;
  lastValLoss: number | undefined;
  /** The last checkpoint save, or undefined before the first. */
  saved: SaveUpdate | undefined;
  /** What went wrong, in one sentence for the reader (a refused setting, a full disk, a second tab). */
  problem: string | undefined;
  /** Why the last checkpoint could not be saved (undefined once one is saved again). */
  saveProblem: string | undefined;
  /** Runs kept in this browser's storage. */
  savedRuns: SavedRun[];
}

export const trainer: TrainerState = $state({
  phase: 'idle',
  info: undefined,
  log: [],
  samples: [],
  secondsPerStep: 0,
  lastValLoss: undefined,
  saved: undefined,
  problem: undefined,
  saveProblem: undefined,
  savedRuns: [],
});

let remote: Comlink.Remote<TrainerApi> | undefined;

function worker(): Comlink.Remote<TrainerApi> {
  if (!remote) {
    const thread = new Worker(new URL('./trainer-worker.ts', import.meta.url), {
      type: 'module',
      name: 'glassbox-trainer',
    });
    thread.addEventListener('error', (event) => {
      trainer.problem = `The trainer stopped working${event.message ? `: ${event.message}` : ''}. Reload the page to resume from the last checkpoint.`;
      trainer.phase = trainer.info ? 'paused' : 'idle';
    });
    remote = Comlink.wrap<TrainerApi>(thread);
  }
  return remote;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Where the page may use two threads for the shards (shared memory needs cross-origin isolation). */
export function pageThreads(): number {
  return globalThis.crossOriginIsolated === true && (navigator.hardwareConcurrency ?? 1) >= 2 ? 2 : 1;
}

function adopt(info: RunInfo): void {
  trainer.info = info;
  trainer.log = info.log;
  trainer.samples = info.samples;
  trainer.lastValLoss = [...info.log].reverse().find((line) => line.valLoss !== undefined)?.valLoss;
  trainer.secondsPerStep = 0;
  trainer.phase = info.finished ? 'finished' : 'paused';
}

const hooks = Comlink.proxy({
  onStep(update: StepUpdate) {
    trainer.log.push(update.line);
    trainer.lastValLoss = update.lastValLoss;
    trainer.secondsPerStep = update.secondsPerStep;
    if (trainer.info) trainer.info.step = update.line.step;
  },
  onSample(sample: Sample) {
    trainer.samples.push(sample);
  },
  onSave(update: SaveUpdate) {
    trainer.saved = update;
    trainer.saveProblem = update.problem;
  },
});

/** The loop running now, if any (Stop waits for it to pause). */
let training: Promise<void> | undefined;

/** Trains the prepared run until it ends or is paused. */
function train(): Promise<void> {
  training = trainHeld().finally(() => (training = undefined));
  return training;
}

async function trainHeld(): Promise<void> {
  trainer.phase = 'training';
  let outcome: TrainOutcome;
  try {
    outcome = await worker().train(hooks);
  } catch (error) {
    trainer.problem = `Training stopped: ${message(error)}`;
    trainer.phase = 'paused';
    return;
  }
  if (outcome.problem) trainer.problem = outcome.problem;
  trainer.phase = outcome.finished ? 'finished' : 'paused';
  if (trainer.info) trainer.info.finished = outcome.finished;
  await refreshSavedRuns();
}

/** Prepares a new run (tokenizer, tokens, model) and trains it. */
export async function startRun(request: StartRequest): Promise<void> {
  trainer.problem = undefined;
  trainer.saved = undefined;
  trainer.saveProblem = undefined;
  trainer.phase = 'preparing';
  try {
    adopt(await worker().start(request));
  } catch (error) {
    trainer.problem = message(error);
    trainer.info = undefined;
    trainer.phase = 'idle';
    return;
  }
  await train();
}

/** Continues the run held (after Pause) or a stored one (after a reload). */
export async function resumeRun(runId?: string): Promise<void> {
  trainer.problem = undefined;
  if (runId !== undefined && runId !== trainer.info?.runId) {
    trainer.phase = 'preparing';
    try {
      adopt(await worker().resume(runId, pageThreads()));
    } catch (error) {
      trainer.problem = `That run could not be resumed: ${message(error)}`;
      trainer.phase = 'idle';
      return;
    }
    if (trainer.info?.finished) return;
  }
  await train();
}

/** Takes up a stored run without training it (to look at it, download it, or resume it later). */
export async function openRun(runId: string): Promise<void> {
  trainer.problem = undefined;
  trainer.phase = 'preparing';
  try {
    adopt(await worker().resume(runId, pageThreads()));
  } catch (error) {
    trainer.problem = `That run could not be opened: ${message(error)}`;
    trainer.phase = 'idle';
  }
}

export function pauseRun(): void {
  if (trainer.phase !== 'training') return;
  trainer.phase = 'pausing';
  void worker().pause();
}

/** Ends the run for good where it is (it stays downloadable). */
export async function stopRun(): Promise<void> {
  pauseRun();
  await training;
  const info = await worker().finish();
  if (info) trainer.info = { ...info, log: trainer.log, samples: trainer.samples };
  trainer.phase = 'finished';
  await refreshSavedRuns();
}

export async function refreshSavedRuns(): Promise<void> {
  try {
    trainer.savedRuns = await worker().savedRuns();
  } catch (error) {
    trainer.problem = `This browser's storage could not be read: ${message(error)}`;
  }
}

export async function forgetRun(runId: string): Promise<void> {
  await worker().forget(runId);
  if (trainer.info?.runId === runId) {
    trainer.info = undefined;
    trainer.log = [];
    trainer.samples = [];
    trainer.phase = 'idle';
  }
  await refreshSavedRuns();
}

/**
 * Fine-tunes a model (the request's `initial` weights) and reads the held-out text's surprise before the
 * first step and after the last: the two readings, or undefined when the run did not finish.
 */
export async function fineTune(
  request: StartRequest,
  probeTokens: number,
): Promise<{ before: SurpriseReading; after: SurpriseReading } | undefined> {
  trainer.problem = undefined;
  trainer.saved = undefined;
  trainer.saveProblem = undefined;
  trainer.phase = 'preparing';
  let before: SurpriseReading;
  try {
    adopt(await worker().start(request));
    before = await worker().surprise(probeTokens);
  } catch (error) {
    trainer.problem = message(error);
    trainer.info = undefined;
    trainer.phase = 'idle';
    return undefined;
  }
  await train();
  if ((trainer.phase as TrainerPhase) !== 'finished') return undefined;
  return { before, after: await worker().surprise(probeTokens) };
}

/** Tells the trainer the reader's text, which its logit lens reads at every sample. */
export function setReaderText(text: string): void {
  void worker().setReaderText(text);
}

/** The trained model as a Hugging Face folder's three files. */
export function modelFiles(): Promise<ModelFiles> {
  return worker().modelFiles();
}

/** SHA-256 of bytes, as hex. */
async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * What the end-to-end tests read of the trainer (window.__glassboxTrainer): the phase, the losses and
 * the model's hash, to hold the page's run to Node's. Read on demand, so the reader pays nothing for it.
 */
if (typeof window !== 'undefined') {
  (window as unknown as { __glassboxTrainer: unknown }).__glassboxTrainer = {
    get phase() {
      return trainer.phase;
    },
    get step() {
      return trainer.log.at(-1)?.step ?? trainer.info?.step ?? 0;
    },
    get losses() {
      return trainer.log.map((line) => line.trainLoss);
    },
    get valLosses() {
      return trainer.log
        .filter((line) => line.valLoss !== undefined)
        .map((line) => [line.step, line.valLoss]);
    },
    get samples() {
      return $state.snapshot(trainer.samples);
    },
    get saved() {
      return $state.snapshot(trainer.saved);
    },
    get problem() {
      return trainer.problem;
    },
    get saveProblem() {
      return trainer.saveProblem;
    },
    get info() {
      return trainer.info
        ? { runId: trainer.info.runId, threads: trainer.info.threads, kernels: trainer.info.kernels }
        : undefined;
    },
    async modelSha256() {
      return sha256((await modelFiles()).safetensors);
    },
  };
}
