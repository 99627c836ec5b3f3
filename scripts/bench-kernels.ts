/**
 * Matrix-kernel benchmark: GFLOP/s of every product on the shapes the engine and the trainer use, for the
 * TypeScript reference, both WebAssembly builds, and onnxruntime (its WebAssembly build, onnxruntime-web, and
 * its native one, onnxruntime-node) on one thread, all in this run.
 *
 *   npm run build && node dist/scripts/bench-kernels.js [--json] [--quick]
 *
 * For each WebAssembly build it reports the product as the engine calls it (inputs copied in, packed,
 * output copied out; a weight packed once and reused) and `gemm` alone on data already packed in
 * WebAssembly memory, so the difference is what the copies cost. It also measures this core's ceiling: 12
 * independent register-only multiply-adds in a loop. `--json` ends the output with one JSON line holding
 * every figure. Each figure is the best of several timed rounds: the machine is shared, and the best round
 * is the one least disturbed.
 */
import { setFlagsFromString } from 'node:v8';
import { referenceKernels, type MatrixKernels } from '../src/kernels/reference.ts';
import { describeKernels, wasmKernels } from '../src/kernels/select.ts';
import { instantiateMatmul, wasmVariantSupported, type WasmVariant } from '../src/kernels/wasm.ts';

// Node 20 has relaxed SIMD (the fused multiply-add) behind a flag; Node 22 and Chromium have it on.
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');

const asJson = process.argv.includes('--json');
const quick = process.argv.includes('--quick');
/** The single-core WebAssembly SIMD ceiling the design guide (§6) quotes for this machine. */
const GUIDE_CEILING = 58;

type Product = 'matmulTransposedB' | 'matmul' | 'matmulTransposedA';

interface Case {
  label: string;
  product: Product;
  M: number;
  K: number;
  N: number;
}

const CASES: Case[] = [
  { label: 'decode x·wᵀ [1×288]·[288×768]', product: 'matmulTransposedB', M: 1, K: 288, N: 768 },
  { label: 'decode logits [1×288]·[288×32000]', product: 'matmulTransposedB', M: 1, K: 288, N: 32000 },
  { label: 'prefill x·wᵀ [64×288]·[288×768]', product: 'matmulTransposedB', M: 64, K: 288, N: 768 },
  { label: 'prefill x·wᵀ [64×512]·[512×2048]', product: 'matmulTransposedB', M: 64, K: 512, N: 2048 },
  { label: 'train fwd x·wᵀ [256×288]·[288×768]', product: 'matmulTransposedB', M: 256, K: 288, N: 768 },
  { label: 'train dX = dY·w [256×768]·[768×288]', product: 'matmul', M: 256, K: 768, N: 288 },
  { label: 'train dW = dYᵀ·x [768×256]·[256×288]', product: 'matmulTransposedA', M: 768, K: 256, N: 288 },
];

/** Best seconds per call over `rounds` rounds of at least `minSeconds` each. */
function timePerCall(fn: () => void, minSeconds: number, rounds: number): number {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    let calls = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      fn();
      calls++;
      elapsed = (performance.now() - start) / 1000;
    } while (elapsed < minSeconds);
    best = Math.min(best, elapsed / calls);
  }
  return best;
}

async function timePerCallAsync(
  fn: () => Promise<unknown>,
  minSeconds: number,
  rounds: number,
): Promise<number> {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    let calls = 0;
    const start = performance.now();
    let elapsed: number;
    do {
      await fn();
      calls++;
      elapsed = (performance.now() - start) / 1000;
    } while (elapsed < minSeconds);
    best = Math.min(best, elapsed / calls);
  }
  return best;
}

const MIN_SECONDS = quick ? 0.05 : 0.25;
const ROUNDS = quick ? 2 : 5;

function filled(length: number, seed: number): Float32Array {
  const data = new Float32Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) data[i] = ((state = (state * 48271) % 2147483647) / 2147483647) * 2 - 1;
  return data;
}

/** The two inputs of a case: [first operand, second operand] as the MatrixKernels method takes them. */
function inputs({ product, M, K, N }: Case): [Float32Array, Float32Array] {
  const first = filled(M * K, 1);
  const second = filled(K * N, 2); // w[N,K] or b[K,N]: the same count
  return product === 'matmulTransposedA' ? [filled(K * M, 1), second] : [first, second];
}

const gflops = (c: Case, seconds: number) => (2 * c.M * c.K * c.N) / seconds / 1e9;

function benchKernels(kernels: MatrixKernels, c: Case, minSeconds = MIN_SECONDS, rounds = ROUNDS): number {
  const [a, b] = inputs(c);
  const out = new Float32Array(c.M * c.N);
  return gflops(
    c,
    timePerCall(() => kernels[c.product](out, a, b, c.M, c.K, c.N), minSeconds, rounds),
  );
}

/** `gemm` alone, on A and B already packed in WebAssembly memory: the products without any copying. */
function benchGemmOnly(variant: WasmVariant, c: Case): number {
  const { wasm, memory } = instantiateMatmul(variant);
  const base = wasm.heapBase();
  const aStart = base;
  const bStart = aStart + Math.ceil(wasm.packedASize(c.M, c.K) / 64) * 64;
  const outStart = bStart + Math.ceil(wasm.packedBSize(c.K, c.N) / 64) * 64;
  const end = outStart + c.M * c.N * 4;
  if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
  const f32 = new Float32Array(memory.buffer);
  f32.set(filled(wasm.packedASize(c.M, c.K) / 4, 1), aStart / 4);
  f32.set(filled(wasm.packedBSize(c.K, c.N) / 4, 2), bStart / 4);
  const seconds = timePerCall(() => wasm.gemm(outStart, aStart, bStart, c.M, c.K, c.N), MIN_SECONDS, ROUNDS);
  return gflops(c, seconds);
}

/** GFLOP/s of 12 independent register-only multiply-adds per loop iteration: this core's SIMD ceiling. */
function benchCeiling(variant: WasmVariant): number {
  const { wasm } = instantiateMatmul(variant);
  const iterations = 1_000_000;
  const seconds = timePerCall(() => wasm.ceiling(iterations, 1), MIN_SECONDS, ROUNDS);
  return (iterations * 12 * 8) / seconds / 1e9;
}

// ---- onnxruntime-node: the same products as one-node ONNX models, written here as protobuf bytes ----

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
function onnxModel(c: Case, weight: Float32Array | undefined): Uint8Array {
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

type Ort = typeof import('onnxruntime-node');

/**
 * The two onnxruntimes: onnxruntime-node (native, which uses AVX-512 where the CPU has it: 4× the width of
 * WebAssembly's 128-bit SIMD) and onnxruntime-web (its own WebAssembly SIMD build, the same constraints as
 * ours, and what a browser would run). Both on one thread. They share onnxruntime-common, and with it the
 * registry of backends: 'cpu' is onnxruntime-node's (registered at a higher priority than onnxruntime-web's
 * alias), 'wasm' onnxruntime-web's.
 */
interface Onnx {
  node?: Ort;
  web?: Ort;
  errors: string[];
}

async function loadOnnx(): Promise<Onnx> {
  const onnx: Onnx = { errors: [] };
  try {
    onnx.web = (await import('onnxruntime-web')) as unknown as Ort;
    onnx.web.env.wasm.numThreads = 1;
  } catch (error) {
    onnx.errors.push(`onnxruntime-web: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    onnx.node = await import('onnxruntime-node');
  } catch (error) {
    onnx.errors.push(`onnxruntime-node: ${error instanceof Error ? error.message : String(error)}`);
  }
  return onnx;
}

async function benchOnnx(ort: Ort, executionProvider: 'cpu' | 'wasm', c: Case): Promise<number> {
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
  const seconds = await timePerCallAsync(() => session.run(feeds), MIN_SECONDS, ROUNDS);
  await session.release();
  return gflops(c, seconds);
}

// ---- the run ----

const ONNX_WEB = 'onnx-web 1 thread';
const ONNX_NODE = 'onnx-node 1 thread';

interface Row {
  label: string;
  product: Product;
  shape: [number, number, number];
  gflops: Record<string, number | null>;
}

function format(value: number | null | undefined, width = 8): string {
  return (value == null ? '—' : value.toFixed(1)).padStart(width);
}

async function main(): Promise<void> {
  const variants = (['wasm-relaxed-simd', 'wasm-simd'] as const).filter((variant) =>
    wasmVariantSupported(variant),
  );
  const onnx = await loadOnnx();
  const log = (line: string) => console.log(line);

  log(`node ${process.version}; ${describeKernels()}`);
  for (const error of onnx.errors) log(`unavailable: ${error}`);

  const ceilings: Record<string, number> = {};
  for (const variant of variants) ceilings[variant] = benchCeiling(variant);
  log(
    'ceiling (12 register-only multiply-adds per iteration): ' +
      variants.map((variant) => `${variant} ${ceilings[variant].toFixed(1)} GFLOP/s`).join(', ') +
      `; the guide quotes ${GUIDE_CEILING}`,
  );

  const columns = ['ts', ...variants.flatMap((v) => [v, `${v} gemm only`]), ONNX_WEB, ONNX_NODE];
  const rows: Row[] = [];
  log('');
  log('GFLOP/s'.padEnd(40) + columns.map((column) => column.padStart(column.length + 2)).join(''));
  for (const c of CASES) {
    const row: Row = { label: c.label, product: c.product, shape: [c.M, c.K, c.N], gflops: {} };
    // The reference is slow on the big shapes: fewer, shorter rounds are enough for its 1-5 GFLOP/s.
    row.gflops.ts = benchKernels(referenceKernels, c, MIN_SECONDS / 2, Math.min(ROUNDS, 3));
    for (const variant of variants) {
      row.gflops[variant] = benchKernels(wasmKernels(variant)!, c);
      row.gflops[`${variant} gemm only`] = benchGemmOnly(variant, c);
    }
    row.gflops[ONNX_WEB] = onnx.web ? await benchOnnx(onnx.web, 'wasm', c) : null;
    row.gflops[ONNX_NODE] = onnx.node ? await benchOnnx(onnx.node, 'cpu', c) : null;
    rows.push(row);
    log(c.label.padEnd(40) + columns.map((column) => format(row.gflops[column], column.length + 2)).join(''));
  }

  log('');
  const best = variants[0];
  if (best) {
    log(
      `${best}: ÷ ${ONNX_WEB}, ÷ ${ONNX_NODE}, ÷ ts, % of the measured ceiling, % of the guide's ` +
        `${GUIDE_CEILING}, and the share of a call spent outside gemm (copies and packing; noisy when small)`,
    );
    const ratio = (a: number, b: number | null | undefined) => (b ? (a / b).toFixed(2) : '—');
    for (const row of rows) {
      const wasm = row.gflops[best]!;
      const outsideGemm = Math.max(0, 1 - wasm / row.gflops[`${best} gemm only`]!);
      log(
        row.label.padEnd(40) +
          `${ratio(wasm, row.gflops[ONNX_WEB])}× web`.padStart(11) +
          `${ratio(wasm, row.gflops[ONNX_NODE])}× node`.padStart(12) +
          `${ratio(wasm, row.gflops.ts)}× ts`.padStart(11) +
          `${((100 * wasm) / ceilings[best]).toFixed(0)}%`.padStart(6) +
          `${((100 * wasm) / GUIDE_CEILING).toFixed(0)}%`.padStart(6) +
          `${(100 * outsideGemm).toFixed(0)}%`.padStart(6),
      );
    }
  }

  if (asJson) {
    console.log(
      JSON.stringify({
        node: process.version,
        date: new Date().toISOString(),
        kernels: describeKernels(),
        onnx: {
          web: 'onnxruntime-web, wasm, 1 thread',
          node: 'onnxruntime-node, cpu, 1 thread',
          errors: onnx.errors,
        },
        ceilingGflops: ceilings,
        guideCeilingGflops: GUIDE_CEILING,
        rows,
      }),
    );
  }
}

await main();
