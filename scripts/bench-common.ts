/**
 * What the benchmarks share, in Node (scripts/bench.ts, scripts/bench-kernels.ts) and in Chromium (the
 * bench page, scripts/browser/): the timing loop, the matrix shapes, the engine measurements, and the
 * one-node ONNX models onnxruntime runs the same products with. Nothing here imports a Node module.
 */
import { forward, forwardBatch } from '../src/engine/forward.ts';
import { KVCache } from '../src/engine/kv-cache.ts';
import type { Model } from '../src/engine/model.ts';
import type { MatrixKernels } from '../src/kernels/reference.ts';

/** Milliseconds of one timed batch: long enough for the clock (5 µs steps in a browser), short enough
 *  that many batches run between two interruptions by other processes. */
const BATCH_MILLISECONDS = 1;

/**
 * Seconds per call of `fn`: the fastest of many timed batches of calls (each about a millisecond, or one
 * call when a call is longer), over `rounds` rounds of at least `minSeconds`. The machine is shared:
 * other processes interrupt some batches, and the fastest batch is one that nothing interrupted — the
 * speed of the code itself.
 */
export function timePerCall(fn: () => void, minSeconds: number, rounds: number): number {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const end = performance.now() + minSeconds * 1000;
    do {
      const batch = Number.isFinite(best) ? Math.max(1, Math.ceil(BATCH_MILLISECONDS / best)) : 1;
      const start = performance.now();
      for (let call = 0; call < batch; call++) fn();
      best = Math.min(best, (performance.now() - start) / batch);
    } while (performance.now() < end);
  }
  return best / 1000;
}

/** timePerCall for an asynchronous `fn`. */
export async function timePerCallAsync(
  fn: () => Promise<unknown>,
  minSeconds: number,
  rounds: number,
): Promise<number> {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const end = performance.now() + minSeconds * 1000;
    do {
      const batch = Number.isFinite(best) ? Math.max(1, Math.ceil(BATCH_MILLISECONDS / best)) : 1;
      const start = performance.now();
      for (let call = 0; call < batch; call++) await fn();
      best = Math.min(best, (performance.now() - start) / batch);
    } while (performance.now() < end);
  }
  return best / 1000;
}

/** Deterministic values in [−1, 1) (a Lehmer generator): every run multiplies the same numbers. */
export function filled(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) data[i] = ((state = (state * 48271) % 2147483647) / 2147483647) * 2 - 1;
  return data;
}

export type Product = 'matmulTransposedB' | 'matmul' | 'matmulTransposedA';

export interface Case {
  label: string;
  product: Product;
  M: number;
  K: number;
  N: number;
}

/** The products of a stories15M-shape forward pass (decode and a 64-token prefill) and of a training step. */
export const CASES: Case[] = [
  { label: 'decode x·wᵀ [1×288]·[288×768]', product: 'matmulTransposedB', M: 1, K: 288, N: 768 },
  { label: 'decode logits [1×288]·[288×32000]', product: 'matmulTransposedB', M: 1, K: 288, N: 32000 },
  { label: 'prefill x·wᵀ [64×288]·[288×768]', product: 'matmulTransposedB', M: 64, K: 288, N: 768 },
  { label: 'prefill x·wᵀ [64×512]·[512×2048]', product: 'matmulTransposedB', M: 64, K: 512, N: 2048 },
  { label: 'train fwd x·wᵀ [256×288]·[288×768]', product: 'matmulTransposedB', M: 256, K: 288, N: 768 },
  { label: 'train dX = dY·w [256×768]·[768×288]', product: 'matmul', M: 256, K: 768, N: 288 },
  { label: 'train dW = dYᵀ·x [768×256]·[256×288]', product: 'matmulTransposedA', M: 768, K: 256, N: 288 },
];

/** The prefill shapes: the "≥ 70% of the WASM SIMD ceiling" applies to these. */
export const isPrefillShape = (c: Case) => c.M > 1;

/** The two inputs of a case: [first operand, second operand] as the MatrixKernels method takes them. */
export function inputs({ product, M, K, N }: Case): [Float32Array, Float32Array] {
  const second = filled(K * N, 2); // w[N,K] or b[K,N]: the same count
  return [product === 'matmulTransposedA' ? filled(K * M, 1) : filled(M * K, 1), second];
}

export const gflops = (c: Case, seconds: number) => (2 * c.M * c.K * c.N) / seconds / 1e9;

/**
 * Runs `fn` for a while untimed. V8 first runs WebAssembly (and JS) in a baseline tier and optimises a
 * function only once it has run enough, and only for its next call — a single long call never speeds up —
 * so figures taken without warming up can be the baseline tier's.
 */
export function warmUp(fn: () => void, seconds = 0.1): void {
  timePerCall(fn, seconds, 1);
}

/** GFLOP/s of one kernel set on one case. */
export function benchProduct(kernels: MatrixKernels, c: Case, minSeconds: number, rounds: number): number {
  const [a, b] = inputs(c);
  const out = new Float32Array(c.M * c.N);
  const product = () => kernels[c.product](out, a, b, c.M, c.K, c.N);
  warmUp(product);
  return gflops(c, timePerCall(product, minSeconds, rounds));
}

/** GFLOP/s of 12 independent register-only multiply-adds per loop iteration: this core's SIMD ceiling. */
export function benchCeiling(
  ceiling: (iterations: number, seed: number) => number,
  minSeconds: number,
  rounds: number,
): number {
  warmUp(() => ceiling(1000, 1));
  const iterations = 200_000; // about 0.5 ms: many calls run uninterrupted
  const seconds = timePerCall(() => ceiling(iterations, 1), minSeconds, rounds);
  return (iterations * 12 * 8) / seconds / 1e9;
}

// ---- the engine: decode and prefill tokens/s ----

/**
 * Decode: tokens/s of one-token steps at positions 0…steps−1 (the cache grows as it would in generation),
 * `rounds` times; each position counts with its fastest time (a step costs more as the context grows, so
 * steps are compared position by position).
 */
export function decodeTokensPerSecond(
  model: Model,
  kernels: MatrixKernels,
  steps: number,
  rounds: number,
): number {
  return interleavedDecodeTokensPerSecond([model], kernels, steps, rounds)[0];
}

/**
 * decodeTokensPerSecond of several models (the same shape stored as f32, q8_0, …) in one measurement: each
 * round decodes with every model in turn, so a change in the machine's load falls on all of them alike and
 * their ratios stay fair on a shared machine.
 */
export function interleavedDecodeTokensPerSecond(
  models: readonly Model[],
  kernels: MatrixKernels,
  steps: number,
  rounds: number,
): number[] {
  const fastest = models.map(() => new Float64Array(steps).fill(Infinity));
  for (let round = 0; round < rounds; round++) {
    models.forEach((model, m) => {
      const cache = new KVCache(model.config);
      for (let pos = 0; pos < steps; pos++) {
        const start = performance.now();
        forward(model, [pos % model.config.vocabSize], cache, { logits: 'last', kernels });
        fastest[m][pos] = Math.min(fastest[m][pos], performance.now() - start);
      }
    });
  }
  return fastest.map((times) => steps / (times.reduce((sum, ms) => sum + ms, 0) / 1000));
}

/** Prefill: tokens/s of a whole prompt of `promptLength` tokens in one pass. */
export function prefillTokensPerSecond(
  model: Model,
  kernels: MatrixKernels,
  promptLength: number,
  minSeconds: number,
  rounds: number,
): number {
  const tokens = Array.from({ length: promptLength }, (_, i) => (i * 7919) % model.config.vocabSize);
  const cache = new KVCache(model.config);
  const seconds = timePerCall(
    () => {
      cache.reset();
      forward(model, tokens, cache, { logits: 'last', kernels });
    },
    minSeconds,
    rounds,
  );
  return promptLength / seconds;
}

export interface EngineSpeed {
  decodeTokensPerSecond: number;
  prefillTokensPerSecond: number;
  decodeSteps: number;
  promptLength: number;
}

/** Decode (`rounds` runs of up to 128 steps, after a warm-up) and prefill (a 64-token prompt). */
export function engineSpeed(
  model: Model,
  kernels: MatrixKernels,
  rounds: number,
  minSeconds = 0.3,
): EngineSpeed {
  const decodeSteps = Math.min(128, model.config.seqLen);
  const promptLength = Math.min(64, model.config.seqLen);
  decodeTokensPerSecond(model, kernels, 8, 1); // warm up the JIT and pack the weights
  const decode = decodeTokensPerSecond(model, kernels, decodeSteps, rounds);
  const prefill = prefillTokensPerSecond(model, kernels, promptLength, minSeconds, rounds);
  return { decodeTokensPerSecond: decode, prefillTokensPerSecond: prefill, decodeSteps, promptLength };
}

// ---- onnxruntime: the same products as one-node ONNX models, written here as protobuf bytes ----

/** Protobuf wire format, just what an ONNX model needs: varints and length-delimited fields. */
class ProtoWriter {
  private bytes: number[] = [];
  varint(field: number, value: number): this {
    this.tag(field, 0);
    this.rawVarint(value);
    return this;
  }
  bytesField(field: number, value: Uint8Array): this {
    this.tag(field, 2);
    this.rawVarint(value.length);
    for (const byte of value) this.bytes.push(byte);
    return this;
  }
  string(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }
  message(field: number, build: (writer: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytesField(field, inner.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
  private tag(field: number, wireType: number): void {
    this.rawVarint(field * 8 + wireType);
  }
  private rawVarint(value: number): void {
    while (value >= 0x80) {
      this.bytes.push((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    this.bytes.push(value);
  }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

/** ValueInfoProto of a float tensor with a fixed shape. */
function tensorInfo(writer: ProtoWriter, field: number, name: string, dims: number[]): void {
  writer.message(field, (info) =>
    info.string(1, name).message(2, (type) =>
      type.message(1, (tensor) =>
        tensor.varint(1, FLOAT).message(2, (shape) => {
          for (const dim of dims) shape.message(1, (d) => d.varint(1, dim));
        }),
      ),
    ),
  );
}

/**
 * An ONNX model computing a case's product the way an exported model would: x·wᵀ as Gemm(transB = 1)
 * with w a constant initializer (which onnxruntime may prepack, as the WebAssembly kernels pack a weight
 * once), a·b as MatMul and aᵀ·b as Gemm(transA = 1) on two runtime inputs.
 */
export function onnxModel(c: Case, weight: Float32Array | undefined): Uint8Array {
  const { M, K, N, product } = c;
  const aDims = product === 'matmulTransposedA' ? [K, M] : [M, K];
  const bDims = product === 'matmulTransposedB' ? [N, K] : [K, N];
  return new ProtoWriter()
    .varint(1, 8) // ir_version
    .string(2, 'glassbox-bench-kernels')
    .message(7, (graph) => {
      graph.message(1, (node) => {
        node.string(1, 'A').string(1, 'B').string(2, 'Y').string(3, product);
        if (product === 'matmul') node.string(4, 'MatMul');
        else {
          node.string(4, 'Gemm');
          const attribute = product === 'matmulTransposedA' ? 'transA' : 'transB';
          node.message(5, (attr) => attr.string(1, attribute).varint(20, 2).varint(3, 1)); // type INT, i = 1
        }
      });
      graph.string(2, c.label);
      if (weight) {
        graph.message(5, (tensor) => {
          for (const dim of bDims) tensor.varint(1, dim);
          tensor.varint(2, FLOAT).string(8, 'B');
          tensor.bytesField(9, new Uint8Array(weight.buffer, weight.byteOffset, weight.byteLength));
        });
      }
      tensorInfo(graph, 11, 'A', aDims);
      if (!weight) tensorInfo(graph, 11, 'B', bDims);
      tensorInfo(graph, 12, 'Y', [M, N]);
    })
    .message(8, (opset) => opset.string(1, '').varint(2, 13))
    .finish();
}

/** The part of onnxruntime's API the benchmarks use (the same in onnxruntime-node and -web). */
export type Ort = typeof import('onnxruntime-web');

/** GFLOP/s of onnxruntime on one case, on one thread, with the given execution provider. */
export async function benchOnnx(
  ort: Ort,
  executionProvider: 'cpu' | 'wasm',
  c: Case,
  minSeconds: number,
  rounds: number,
): Promise<number> {
  const [a, b] = inputs(c);
  const weight = c.product === 'matmulTransposedB' ? b : undefined;
  const session = await ort.InferenceSession.create(onnxModel(c, weight), {
    executionProviders: [executionProvider],
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const aDims = c.product === 'matmulTransposedA' ? [c.K, c.M] : [c.M, c.K];
  const feeds: Record<string, InstanceType<Ort['Tensor']>> = { A: new ort.Tensor('float32', a, aDims) };
  if (!weight) feeds.B = new ort.Tensor('float32', b, [c.K, c.N]);
  // Warm up, as warmUp does, but longer: onnxruntime's module is large, and V8 optimises it in the
  // background, which on a busy machine takes a while.
  await timePerCallAsync(() => session.run(feeds), 0.5, 1);
  const seconds = await timePerCallAsync(() => session.run(feeds), minSeconds, rounds);
  await session.release();
  return gflops(c, seconds);
}

/** A table row: a label, then right-aligned cells. */
export function tableRow(label: string, labelWidth: number, cells: string[], cellWidth = 12): string {
  return label.padEnd(labelWidth) + cells.map((cell) => cell.padStart(cellWidth)).join('');
}

/** A number for a table, or "—" when there is none. */
export function cell(value: number | null | undefined, digits = 1): string {
  return value == null || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

/**
 * Batched decode: tokens/s of one pass in which each of `batchSize` sequences (each with its own cache already
 * holding `context` positions) decodes one token — forwardBatch, as the continuous batcher runs it — for each
 * of `batchSizes`. Each round times every size in turn, so a change in the machine's load falls on all of
 * them alike; each size keeps its fastest.
 */
export function batchedDecodeTokensPerSecond(
  model: Model,
  kernels: MatrixKernels,
  batchSizes: readonly number[],
  context: number,
  minSeconds: number,
  rounds: number,
): number[] {
  const passes = batchSizes.map((batchSize) => {
    const batch = Array.from({ length: batchSize }, (_, b) => {
      const cache = new KVCache(model.config);
      const prompt = Array.from(
        { length: context },
        (_, i) => (i * 7919 + b * 104729) % model.config.vocabSize,
      );
      forward(model, prompt, cache, { logits: 'last', kernels });
      return { tokens: [prompt[0]], cache };
    });
    return () => {
      for (const { cache } of batch) cache.length = context; // each pass decodes the same position again
      forwardBatch(model, batch, { logits: 'last', kernels });
    };
  });
  const fastest = batchSizes.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    passes.forEach((pass, i) => (fastest[i] = Math.min(fastest[i], timePerCall(pass, minSeconds, 1))));
  }
  return batchSizes.map((batchSize, i) => batchSize / fastest[i]);
}
