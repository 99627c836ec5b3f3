/**
 * The optimisers' race on the loss landscape: the shipped race at the default settings (computed by
 * scripts/learning-landscape.ts with the same code, and checked by the tests against a live recomputation),
 * or the reader's own race, computed live in the worker one step at a time so that each step can be drawn
 * as it arrives. Shared by the landscape figure and the question.
 */
import { OPTIMISERS, type OptimiserName, type RacePoint } from '../../../analysis/learning.ts';
import landscape from './landscape.json';
import { LANDSCAPE_SETTINGS, VALLEY_MARGIN } from './landscape-settings.ts';
import { worker } from './learning.svelte.ts';
import type { RaceAnswer } from './worker.ts';

export interface RaceView {
  learningRate: number;
  start: [number, number];
  steps: number;
  paths: Record<OptimiserName, RacePoint[]>;
  diverged: Record<OptimiserName, boolean>;
  /** 'shipped': the file's race; 'live': computed in this page's worker. */
  source: 'shipped' | 'live';
  /** Milliseconds of the worker's last step (live races). */
  elapsedMs?: number;
}

/** The grid's lowest loss and the valley floor's threshold. */
export const lowest = (landscape.losses as number[]).reduce((a, b) => Math.min(a, b), Infinity);
export const valleyThreshold = lowest + VALLEY_MARGIN;

function shippedRace(): RaceView {
  const { race } = landscape;
  const paths = {} as Record<OptimiserName, RacePoint[]>;
  const diverged = {} as Record<OptimiserName, boolean>;
  for (const { name } of OPTIMISERS) {
    const points = (race.paths as Record<string, (number | null)[][]>)[name];
    paths[name] = points.map(([a, b, loss]) => ({ a: a ?? NaN, b: b ?? NaN, loss: loss ?? NaN }));
    diverged[name] = paths[name].some((p) => !Number.isFinite(p.loss));
  }
  return {
    learningRate: race.learningRate,
    start: [race.start[0], race.start[1]],
    steps: race.steps,
    paths,
    diverged,
    source: 'shipped',
  };
}

export const SHIPPED = shippedRace();
/** The learning rates the reader chooses from: too small, the default, too large. */
export const LEARNING_RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3] as const;

export const race = $state({
  view: SHIPPED as RaceView,
  /** The settings the reader chose (the race shown may still be the shipped one until they run it). */
  learningRate: LANDSCAPE_SETTINGS.race.learningRate as number,
  startA: LANDSCAPE_SETTINGS.race.start[0] as number,
  startB: LANDSCAPE_SETTINGS.race.start[1] as number,
  running: false,
  failure: undefined as string | undefined,
  /** How many steps of each path are drawn (the Play button and the slider move it). */
  shown: SHIPPED.steps,
});

let runs = 0;

function fromAnswer(answer: RaceAnswer): RaceView {
  return { ...answer, source: 'live' };
}

/** Whether the reader's settings are the shipped race's. */
export function isShippedSettings(): boolean {
  return (
    race.learningRate === SHIPPED.learningRate &&
    race.startA === SHIPPED.start[0] &&
    race.startB === SHIPPED.start[1]
  );
}

/**
 * Runs the race for the reader's settings in the worker, a step per request, drawing each as it arrives,
 * until every optimiser has taken the shipped race's number of steps or diverged. A newer run stops it.
 */
export async function runRace(): Promise<void> {
  const run = ++runs;
  race.running = true;
  race.failure = undefined;
  try {
    const remote = worker();
    let answer = await remote.raceStart([race.startA, race.startB], race.learningRate);
    while (run === runs) {
      race.view = fromAnswer(answer);
      race.shown = answer.steps;
      // Done when every optimiser still racing has taken the race's steps.
      const racing = OPTIMISERS.some(
        ({ name }) => !answer.diverged[name] && answer.paths[name].length - 1 < LANDSCAPE_SETTINGS.raceSteps,
      );
      if (!racing) break;
      answer = await remote.raceStep(answer.id);
    }
  } catch (error) {
    if (run === runs) race.failure = error instanceof Error ? error.message : String(error);
  } finally {
    if (run === runs) race.running = false;
  }
}

/** Stops a live race where it is. */
export function stopRace(): void {
  runs++;
  race.running = false;
}

/** Back to the shipped race and its settings. */
export function resetRace(): void {
  stopRace();
  race.learningRate = SHIPPED.learningRate;
  race.startA = SHIPPED.start[0];
  race.startB = SHIPPED.start[1];
  race.view = SHIPPED;
  race.shown = SHIPPED.steps;
  race.failure = undefined;
}
