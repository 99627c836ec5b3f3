/**
 * The page trainer's checkpoints in IndexedDB (the browser's database for a site), so that a reload, a
 * crash or a closed tab resumes where training stopped.
 *
 *   runs         runId → the run: its text, settings, tokenizer (written once, when it starts)
 *   checkpoints  id → one checkpoint: the bytes of src/formats/training-checkpoint.ts, the log and samples
 *   pointers     runId → the id of its last good checkpoint
 *
 * A save never overwrites the last good checkpoint: it writes the new one under a new id (one transaction),
 * and only once that has committed does a second transaction switch the pointer and delete the old one.
 * IndexedDB commits a transaction whole or not at all, so a full disk (QuotaExceededError) or a tab closed
 * mid-write leaves, at worst, an orphan that the next save removes; the pointer always names a complete one.
 */
import type { TrainingLogLine } from '../../../engine/train/loop.ts';
import type { RunShape } from '../../../engine/train/prepare.ts';
import type { KernelPreference, Sample, SavedRun, TokenizerSource } from './protocol.ts';

const DATABASE = 'glassbox-training';
const VERSION = 1;

export interface RunRecord {
  runId: string;
  label: string;
  text: string;
  settings: RunShape;
  tokenizer: TokenizerSource;
  /** The learned (or given) tokenizer as tokenizer.json, so a resumed run never learns it again. */
  tokenizerJson: string;
  sampleEvery: number;
  sampleTokens: number;
  /** The kernels it trains with (a resumed run keeps them: another build would change its bits). */
  kernels: KernelPreference;
  initialModel?: string;
  createdAt: number;
}

export interface CheckpointRecord {
  id?: number;
  runId: string;
  step: number;
  bytes: Uint8Array;
  log: TrainingLogLine[];
  samples: Sample[];
  finished: boolean;
  savedAt: number;
}

interface Pointer {
  runId: string;
  checkpoint: number;
  step: number;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(tx.error ?? new DOMException('the transaction was aborted', 'AbortError'));
    tx.onerror = () => {}; // the abort that follows carries the error
  });
}

let opening: Promise<IDBDatabase> | undefined;
export function openStore(): Promise<IDBDatabase> {
  opening ??= new Promise((resolve, reject) => {
    const open = indexedDB.open(DATABASE, VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      db.createObjectStore('runs', { keyPath: 'runId' });
      const checkpoints = db.createObjectStore('checkpoints', { keyPath: 'id', autoIncrement: true });
      checkpoints.createIndex('runId', 'runId');
      db.createObjectStore('pointers', { keyPath: 'runId' });
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => {
      opening = undefined;
      reject(open.error ?? new Error('IndexedDB could not be opened'));
    };
    open.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of an older version'));
  });
  return opening;
}

export async function putRun(record: RunRecord): Promise<void> {
  const db = await openStore();
  const tx = db.transaction('runs', 'readwrite');
  tx.objectStore('runs').put(record);
  await done(tx);
}

export async function getRun(runId: string): Promise<RunRecord | undefined> {
  const db = await openStore();
  return request(db.transaction('runs').objectStore('runs').get(runId) as IDBRequest<RunRecord | undefined>);
}

/** The run's last good checkpoint, or undefined when none was saved yet. */
export async function lastGoodCheckpoint(runId: string): Promise<CheckpointRecord | undefined> {
  const db = await openStore();
  const tx = db.transaction(['pointers', 'checkpoints']);
  const pointer = await request(tx.objectStore('pointers').get(runId) as IDBRequest<Pointer | undefined>);
  if (!pointer) return undefined;
  return request(
    tx.objectStore('checkpoints').get(pointer.checkpoint) as IDBRequest<CheckpointRecord | undefined>,
  );
}

/** The step of the run's last good checkpoint. */
export async function lastGoodStep(runId: string): Promise<number | undefined> {
  const db = await openStore();
  const pointer = await request(
    db.transaction('pointers').objectStore('pointers').get(runId) as IDBRequest<Pointer | undefined>,
  );
  return pointer?.step;
}

/**
 * Saves a checkpoint: first the new record (if this fails, nothing else changed), then, in one
 * transaction, the pointer moves to it and every other checkpoint of the run (the previous one, and any
 * orphan of an interrupted save) is deleted. Throws what IndexedDB threw (QuotaExceededError, …).
 */
export async function saveCheckpointRecord(record: CheckpointRecord): Promise<void> {
  const db = await openStore();
  const write = db.transaction('checkpoints', 'readwrite');
  const added = write.objectStore('checkpoints').add(record);
  await done(write);
  const id = added.result as number;

  const swap = db.transaction(['pointers', 'checkpoints'], 'readwrite');
  swap
    .objectStore('pointers')
    .put({ runId: record.runId, checkpoint: id, step: record.step } satisfies Pointer);
  const checkpoints = swap.objectStore('checkpoints');
  const keys = await request(checkpoints.index('runId').getAllKeys(record.runId));
  for (const key of keys) if (key !== id) checkpoints.delete(key);
  await done(swap);
}

/** Every run with a checkpoint, newest first. */
export async function savedRuns(): Promise<SavedRun[]> {
  const db = await openStore();
  const tx = db.transaction(['runs', 'pointers', 'checkpoints']);
  const runs = await request(tx.objectStore('runs').getAll() as IDBRequest<RunRecord[]>);
  const result: SavedRun[] = [];
  for (const run of runs) {
    const pointer = await request(
      tx.objectStore('pointers').get(run.runId) as IDBRequest<Pointer | undefined>,
    );
    if (!pointer) continue;
    const checkpoint = await request(
      tx.objectStore('checkpoints').get(pointer.checkpoint) as IDBRequest<CheckpointRecord | undefined>,
    );
    if (!checkpoint) continue;
    const s = run.settings;
    result.push({
      runId: run.runId,
      label: run.label,
      step: checkpoint.step,
      steps: s.steps,
      finished: checkpoint.finished,
      savedAt: checkpoint.savedAt,
      shape: `${s.layers} layer${s.layers === 1 ? '' : 's'} × ${s.dim} wide`,
    });
  }
  return result.sort((a, b) => b.savedAt - a.savedAt);
}

export async function deleteRun(runId: string): Promise<void> {
  const db = await openStore();
  const tx = db.transaction(['runs', 'pointers', 'checkpoints'], 'readwrite');
  tx.objectStore('runs').delete(runId);
  tx.objectStore('pointers').delete(runId);
  const checkpoints = tx.objectStore('checkpoints');
  const keys = await request(checkpoints.index('runId').getAllKeys(runId));
  for (const key of keys) checkpoints.delete(key);
  await done(tx);
}

/** One sentence for a failed save, naming what a reload would resume from. */
export function saveProblem(error: unknown, step: number, lastGood: number | undefined): string {
  const kept =
    lastGood === undefined
      ? 'no earlier checkpoint exists yet'
      : `the last good checkpoint (step ${lastGood}) is kept`;
  const name = error instanceof DOMException ? error.name : '';
  if (name === 'QuotaExceededError') {
    return `The browser's storage for this site is full, so step ${step} was not saved; ${kept}. Free some space (or download the model) and pause again to retry.`;
  }
  const reason = error instanceof Error ? error.message : String(error);
  return `Step ${step} could not be saved (${reason}); ${kept}.`;
}

/** One sentence for a run that could not be stored when it started (nothing has trained yet). */
export function runStoreProblem(error: unknown): string {
  const name = error instanceof DOMException ? error.name : '';
  if (name === 'QuotaExceededError') {
    return "The browser's storage for this site is full, so the run could not be stored and nothing was trained; free some space (or choose a shorter text) and press Start again.";
  }
  const reason = error instanceof Error ? error.message : String(error);
  return `This browser could not store the run (${reason}), so nothing was trained.`;
}
