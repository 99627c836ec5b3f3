/**
 * Several threads sharing one matrix product: worker threads (Node's worker_threads, or Web Workers in a
 * browser) run the same WebAssembly module on the same shared memory as the calling thread, and each
 * computes some of the product's panels (8-column strips of the output; see matmul.as).
 *
 * The engine's forward pass is synchronous, so a split product is too:
 *   1. The calling thread writes the product (pointers, shape, and how it is cut into chunks of panels)
 *      into a small control block in the shared memory, marks every chunk free, and bumps the job counter,
 *      which wakes the workers.
 *   2. Every thread, the caller included, claims free chunks one at a time (a compare-and-swap on a ticket)
 *      and computes them.
 *   3. The caller returns once every chunk is done.
 * A split product computes every output exactly as one thread does (the same kernel on the same packed
 * data), so results are bit-identical whoever computes what.
 *
 * A worker that the operating system pauses in the middle of a chunk — on a busy machine it may sleep for
 * milliseconds — must not hold the product up. So workers compute into a buffer of their own and then
 * commit: a compare-and-swap marks the chunk as being copied, and only then do they copy it into the
 * output. A caller that has run out of free chunks and waited about a chunk's time for a worker steals the
 * chunk with the same compare-and-swap and computes it itself; the worker's late result then fails to
 * commit and is dropped. No thread ever writes the output of a product that has returned.
 *
 * Waking a sleeping thread takes tens of microseconds, so after a job a worker keeps polling for the next
 * one for a short while (products come every few tens of microseconds in a forward pass) before it sleeps
 * with Atomics.wait. Products too small to repay even that are not split (`worthSplitting`).
 *
 * Workers are started from source text (`workerMain` below, with no imports), so Node and browsers start
 * them the same way, with no separate file to bundle. In Node they are unref'd: they never keep a process
 * alive. `close()` stops them.
 */
import type { LinearHeap } from './heap.ts';
import type { KernelExports } from './wasm.ts';

/** Most chunks in one product. */
const MAX_CHUNKS = 1024;

/** The words of the control block (Int32, in the shared memory). */
const WORDS = {
  /** The job counter (modulo 2^20): workers wait for it to change. */
  job: 0,
  /** (job << 11) | the next chunk nobody has claimed: claiming is one compare-and-swap on it. */
  ticket: 1,
  /** 1 once the pool is closed: workers return. */
  stop: 2,
  /** Workers that have started and not yet stopped. */
  running: 3,
  // The product: out[M,N] = A·B, packed A at `a`, packed B at `b`, in chunks of panelsPerChunk panels.
  out: 4,
  a: 5,
  b: 6,
  M: 7,
  K: 8,
  N: 9,
  panels: 10,
  panelsPerChunk: 11,
  chunks: 12,
  /** Which routine computes the panels: 0 gemmPart (float32), 1 quantPart (quantized weights, quant.as). */
  kind: 13,
  /** One word per chunk from here: (job << 2) | its state, one of STATE. */
  chunkStates: 16,
  /** Words in the block. */
  count: 16 + MAX_CHUNKS,
} as const;

/** What a chunk is doing, in the two low bits of its word. */
const STATE = { free: 0, claimed: 1, committing: 2, done: 3 } as const;

const TICKET_BITS = 11; // chunk indices up to MAX_CHUNKS
const JOB_MASK = (1 << (31 - TICKET_BITS)) - 1; // the job and a chunk index fit one positive Int32

/** Bytes of each worker's own buffer: a chunk's M × 8·panelsPerChunk outputs must fit. */
const WORKER_BUFFER_BYTES = 1 << 20;

/** What a worker is started with. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Byte offset of the control block. */
  control: number;
  /** Byte offsets of this worker's own edge tile (see matmul.as) and its chunk buffer. */
  edgeTile: number;
  buffer: number;
  words: typeof WORDS;
  state: typeof STATE;
  ticketBits: number;
  /** How long a worker polls for the next job before it sleeps. */
  pollMilliseconds: number;
}

/**
 * The whole program of a worker thread. It is sent as source text, so it must not refer to anything
 * outside itself: constants arrive in `init`.
 */
function workerMain(init: WorkerInit): void {
  const { words, state } = init;
  const exports = new WebAssembly.Instance(init.module, { env: { memory: init.memory } }).exports;
  (exports.useEdgeTile as (at: number) => void)(init.edgeTile);
  const gemmPart = exports.gemmPart as (...args: number[]) => void;
  const quantPart = exports.quantPart as (...args: number[]) => void;
  const copyRows = exports.copyRows as (...args: number[]) => void;
  const control = new Int32Array(init.memory.buffer, init.control, words.count);
  Atomics.add(control, words.running, 1);

  /** Polls, then sleeps, until the job counter is no longer `seen`; returns the new value. */
  function nextJob(seen: number): number {
    const pollUntil = performance.now() + init.pollMilliseconds;
    while (Atomics.load(control, words.job) === seen) {
      if (performance.now() > pollUntil) Atomics.wait(control, words.job, seen);
    }
    return Atomics.load(control, words.job);
  }

  /** Claims the next free chunk of `job`, or returns −1 when there is none (or the job is over). */
  function claim(job: number, chunks: number): number {
    for (;;) {
      const ticket = Atomics.load(control, words.ticket);
      const chunk = ticket & ((1 << init.ticketBits) - 1);
      if (ticket >>> init.ticketBits !== job || chunk >= chunks) return -1;
      if (Atomics.compareExchange(control, words.ticket, ticket, ticket + 1) === ticket) return chunk;
    }
  }

  let job = Atomics.load(control, words.job);
  while (Atomics.load(control, words.stop) === 0) {
    job = nextJob(job);
    // The product is read before claiming; a successful claim proves it was still this job's.
    const [out, a, b, M, K, N, panels, perChunk, chunks, kind] = control.subarray(words.out, words.kind + 1);
    const part = kind === 1 ? quantPart : gemmPart;
    for (let chunk = claim(job, chunks); chunk >= 0; chunk = claim(job, chunks)) {
      const stateWord = words.chunkStates + chunk;
      const claimed = (job << 2) | state.claimed;
      // The caller may already have stolen it (it steals even chunks not yet marked claimed).
      if (
        Atomics.compareExchange(control, stateWord, (job << 2) | state.free, claimed) !==
        ((job << 2) | state.free)
      ) {
        continue;
      }
      const first = chunk * perChunk;
      const last = Math.min(panels, first + perChunk);
      const rowBytes = (Math.min(N, 8 * last) - 8 * first) * 4;
      part(init.buffer, rowBytes, a, b, M, K, N, first, last);
      // Commit, unless the caller has stolen the chunk meanwhile.
      if (Atomics.compareExchange(control, stateWord, claimed, (job << 2) | state.committing) === claimed) {
        copyRows(out + first * 32, N * 4, init.buffer, rowBytes, M, rowBytes);
        Atomics.store(control, stateWord, (job << 2) | state.done);
      }
    }
  }
  Atomics.sub(control, words.running, 1);
}

/** A started worker (kept referenced while the pool is open), whatever the platform. */
export type WorkerHandle = object;

type NodeWorkerThreads = typeof import('node:worker_threads');

/** Node's worker_threads, loaded synchronously (the kernels are chosen synchronously). */
function nodeWorkerThreads(): NodeWorkerThreads | undefined {
  const nodeProcess = (globalThis as { process?: NodeJS.Process }).process;
  return nodeProcess?.getBuiltinModule?.('node:worker_threads') as NodeWorkerThreads | undefined;
}

function startWorker(init: WorkerInit): WorkerHandle {
  const source = `(${workerMain.toString()})`;
  const threads = nodeWorkerThreads();
  if (threads) {
    const worker = new threads.Worker(`${source}(require('node:worker_threads').workerData);`, {
      eval: true,
      workerData: init,
    });
    worker.unref(); // never keep a finished CLI run alive
    return worker;
  }
  const script = `self.onmessage = (event) => { ${source}(event.data); self.close(); };`;
  const url = URL.createObjectURL(new Blob([script], { type: 'text/javascript' }));
  const worker = new Worker(url);
  worker.postMessage(init);
  URL.revokeObjectURL(url);
  return worker;
}

/**
 * Why this runtime cannot share a product across threads, or undefined when it can: it needs a shared
 * WebAssembly.Memory (in browsers only on cross-origin-isolated pages: COOP and COEP headers) and workers.
 */
export function sharedMemoryUnavailable(): string | undefined {
  if (typeof SharedArrayBuffer !== 'function') {
    return 'SharedArrayBuffer is unavailable (a browser page needs COOP/COEP headers)';
  }
  try {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    if (!(memory.buffer instanceof SharedArrayBuffer)) return 'WebAssembly shared memory is unavailable';
  } catch {
    return 'WebAssembly shared memory is unavailable';
  }
  if (!nodeWorkerThreads() && typeof Worker !== 'function') return 'workers are unavailable';
  return undefined;
}

/** Tuning of the split, measured on this project's 2-core machine (see `npm run bench`). */
export interface ThreadPoolTuning {
  /** Products with fewer multiply-adds (M·K·N) than this run on the calling thread alone. */
  minMultiplyAdds: number;
  /** How long an idle worker polls for the next job before it sleeps. */
  pollMilliseconds: number;
  /** Chunks per thread: more balance the load when a thread is slowed down, fewer cost less to claim. */
  chunksPerThread: number;
}

export const DEFAULT_TUNING: ThreadPoolTuning = {
  // On an idle 2-core machine splitting already pays from ~30 000 multiply-adds (a few µs of work). On a
  // busy one — this project's, shared with other jobs — it was erratic below ~1 000 000 (0.8–1.4× one
  // thread) and paid above (1.2–2.5×): decode then splits only the classifier, prefill and training all.
  minMultiplyAdds: 1_000_000,
  pollMilliseconds: 0.5,
  chunksPerThread: 4,
};

export interface ThreadPool {
  /** The threads a split product runs on: the caller and the workers. */
  readonly threads: number;
  /** Whether a product of this shape is large enough to split (at least `minMultiplyAdds`, default the tuning's). */
  worthSplitting(M: number, K: number, N: number, minMultiplyAdds?: number): boolean;
  /**
   * `gemm` of the module, shared among the threads; returns when all of it is done. With `quantized`, the
   * module's `quantPart` computes the panels instead (a and b then point at its descriptors, see quant.as).
   */
  gemm(out: number, a: number, b: number, M: number, K: number, N: number, quantized?: boolean): void;
  /** Workers that have started and not yet stopped. */
  runningWorkers(): number;
  /**
   * Resolves once every worker runs. Products never wait for that (the caller takes the chunks of a
   * worker not yet started), but a benchmark should, and a browser starts workers only while the
   * creating thread is idle.
   */
  ready(): Promise<void>;
  /** Stops the workers. */
  close(): void;
}

export interface ThreadPoolOptions {
  /** The module (its shared-memory build) and the memory the calling thread runs it on. */
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** Where to allocate the control block and the workers' buffers. */
  heap: LinearHeap;
  /** Worker threads to start, besides the calling thread. */
  workers: number;
  /** The calling thread's instance. */
  wasm: Pick<KernelExports, 'gemmPart' | 'panelCount' | 'edgeTileSize'> &
    Partial<Pick<KernelExports, 'quantPart'>>;
  tuning?: Partial<ThreadPoolTuning>;
  /** Starts a worker running `workerMain` (the default); tests start misbehaving ones. */
  spawn?: (init: WorkerInit) => WorkerHandle;
}

export function startThreadPool(options: ThreadPoolOptions): ThreadPool {
  const { module, memory, heap, workers, wasm, spawn = startWorker } = options;
  const tuning = { ...DEFAULT_TUNING, ...options.tuning };
  const controlStart = heap.allocate(WORDS.count * 4);
  // A shared buffer is never detached, so this view stays valid however the memory grows.
  const control = new Int32Array(memory.buffer, controlStart, WORDS.count);
  control.fill(0);
  let handles: WorkerHandle[] = Array.from({ length: workers }, () =>
    spawn({
      module,
      memory,
      control: controlStart,
      edgeTile: heap.allocate(wasm.edgeTileSize()),
      buffer: heap.allocate(WORKER_BUFFER_BYTES),
      words: WORDS,
      state: STATE,
      ticketBits: TICKET_BITS,
      pollMilliseconds: tuning.pollMilliseconds,
    }),
  );
  let job = 0;

  /** Panels per chunk: whole groups of six (gemmPart's: a single row is computed three panels at a time, a
   *  pair of rows two) unless a product has so many panels that MAX_CHUNKS sets the size (the results are the
   *  same either way), and few enough rows × columns to fit a worker's buffer; 0 if no chunk can. */
  function panelsPerChunk(M: number, panels: number): number {
    const wanted = 6 * Math.ceil(panels / (6 * (handles.length + 1) * tuning.chunksPerThread));
    const fitting = Math.floor(WORKER_BUFFER_BYTES / (M * 32));
    const perChunk = Math.max(wanted, Math.ceil(panels / MAX_CHUNKS));
    return perChunk <= fitting ? perChunk : 0;
  }

  /** Claims the next free chunk, or returns −1 when every chunk has been claimed. */
  function claim(chunks: number): number {
    for (;;) {
      const ticket = Atomics.load(control, WORDS.ticket);
      const chunk = ticket & ((1 << TICKET_BITS) - 1);
      if (chunk >= chunks) return -1;
      if (Atomics.compareExchange(control, WORDS.ticket, ticket, ticket + 1) === ticket) return chunk;
    }
  }

  return {
    threads: workers + 1,

    worthSplitting(M, K, N, minMultiplyAdds = tuning.minMultiplyAdds) {
      const panels = wasm.panelCount(N);
      return (
        handles.length > 0 && M * K * N >= minMultiplyAdds && panels >= 2 && panelsPerChunk(M, panels) > 0
      );
    },

    gemm(out, a, b, M, K, N, quantized = false) {
      const part = quantized ? wasm.quantPart : wasm.gemmPart;
      if (!part) throw new Error('thread pool: this module has no quantPart');
      const panels = wasm.panelCount(N);
      const perChunk = panelsPerChunk(M, panels);
      const chunks = Math.ceil(panels / perChunk);
      job = (job + 1) & JOB_MASK;
      control.set([out, a, b, M, K, N, panels, perChunk, chunks, quantized ? 1 : 0], WORDS.out);
      control.fill((job << 2) | STATE.free, WORDS.chunkStates, WORDS.chunkStates + chunks);
      Atomics.store(control, WORDS.ticket, job << TICKET_BITS);
      Atomics.store(control, WORDS.job, job);
      Atomics.notify(control, WORDS.job);

      const computeChunk = (chunk: number) => {
        const first = chunk * perChunk;
        part(out + first * 32, N * 4, a, b, M, K, N, first, Math.min(panels, first + perChunk));
        Atomics.store(control, WORDS.chunkStates + chunk, (job << 2) | STATE.done);
      };
      const started = performance.now();
      let mine = 0;
      for (let chunk = claim(chunks); chunk >= 0; chunk = claim(chunks), mine++) computeChunk(chunk);
      // Give the workers about one chunk's time to finish theirs, then take over what is still unfinished.
      const stealAfter = performance.now() + (performance.now() - started) / Math.max(mine, 1);
      for (let chunk = 0; chunk < chunks;) {
        const word = Atomics.load(control, WORDS.chunkStates + chunk);
        if ((word & 3) === STATE.done) chunk++;
        else if ((word & 3) !== STATE.committing && performance.now() > stealAfter) {
          const stolen = (job << 2) | STATE.committing;
          if (Atomics.compareExchange(control, WORDS.chunkStates + chunk, word, stolen) === word) {
            computeChunk(chunk);
          }
        }
        // Otherwise a worker is copying it into the output, or stole it first: look again.
      }
    },

    runningWorkers() {
      return Atomics.load(control, WORDS.running);
    },

    async ready() {
      const deadline = performance.now() + 30_000;
      while (Atomics.load(control, WORDS.running) < handles.length) {
        if (performance.now() > deadline) throw new Error('thread pool: workers did not start in 30 s');
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },

    close() {
      // Workers finish the chunk they are on, see `stop` and return; then their threads end.
      Atomics.store(control, WORDS.stop, 1);
      Atomics.add(control, WORDS.job, 1);
      Atomics.notify(control, WORDS.job);
      handles = [];
    },
  };
}
