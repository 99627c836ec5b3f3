/**
 * Matrix-kernel benchmark: GFLOP/s of every product on the shapes the engine and the trainer use, for the
 * TypeScript reference, both WebAssembly builds (on one thread, and the best on two), and onnxruntime (its
 * WebAssembly build, onnxruntime-web, and its native one, onnxruntime-node) on one thread, all in this run.
 *
 *   npm run build && node dist/scripts/bench-kernels.js [--json] [--quick]
 *
 * `npm run bench` runs this too (runKernelBench), beside the engine's tokens/s. For each WebAssembly build
 * it reports the product as the engine calls it (inputs copied in, packed, output copied out; a weight
 * packed once and reused) and `gemm` alone on data already packed in WebAssembly memory, so the difference
 * is what the copies cost. It also measures this core's ceiling: 12 independent register-only multiply-adds
 * in a loop. `--json` ends the output with one JSON line holding every figure. Each figure is the fastest
 * of many timed batches (see timePerCall in bench-common.ts): the machine is shared, and the fastest batch
 * is one that nothing else interrupted.
 */
import { setFlagsFromString } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { referenceKernels } from '../src/kernels/reference.ts';
import { describeKernels, wasmKernels } from '../src/kernels/select.ts';
import { instantiateKernels, wasmVariantSupported, type WasmVariant } from '../src/kernels/wasm.ts';
import {
  benchCeiling,
  benchOnnx,
  benchProduct,
  CASES,
  filled,
  gflops,
  isPrefillShape,
  timePerCall,
  type Case,
  type Ort,
  warmUp,
  type Product,
} from './bench-common.ts';

// Node 20 has relaxed SIMD (the fused multiply-add) behind a flag; Node 22 and Chromium have it on.
if (!wasmVariantSupported('wasm-relaxed-simd')) setFlagsFromString('--experimental-wasm-relaxed-simd');

/** The single-core WebAssembly SIMD ceiling the design guide (§6) quotes for this machine. */
export const GUIDE_CEILING = 58;

export interface KernelBenchOptions {
  /** Shorter and fewer rounds (noisier). */
  quick?: boolean;
  log?: (line: string) => void;
}

/** `gemm` alone, on A and B already packed in WebAssembly memory: the products without any copying. */
function benchGemmOnly(variant: WasmVariant, c: Case, minSeconds: number, rounds: number): number {
  const { wasm, memory } = instantiateKernels(variant);
  const base = wasm.heapBase();
  const aStart = base;
  const bStart = aStart + Math.ceil(wasm.packedASize(c.M, c.K) / 64) * 64;
  const outStart = bStart + Math.ceil(wasm.packedBSize(c.K, c.N) / 64) * 64;
  const end = outStart + c.M * c.N * 4;
  if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
  const f32 = new Float32Array(memory.buffer);
  f32.set(filled(wasm.packedASize(c.M, c.K) / 4, 1), aStart / 4);
  f32.set(filled(wasm.packedBSize(c.K, c.N) / 4, 2), bStart / 4);
  const gemm = () => wasm.gemm(outStart, aStart, bStart, c.M, c.K, c.N);
  warmUp(gemm);
  const seconds = timePerCall(gemm, minSeconds, rounds);
  return gflops(c, seconds);
}

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
    onnx.web = await import('onnxruntime-web');
    onnx.web.env.wasm.numThreads = 1;
  } catch (error) {
    onnx.errors.push(`onnxruntime-web: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    onnx.node = (await import('onnxruntime-node')) as unknown as Ort;
  } catch (error) {
    onnx.errors.push(`onnxruntime-node: ${error instanceof Error ? error.message : String(error)}`);
  }
  return onnx;
}

// ---- the run ----

const ONNX_WEB = 'onnx-web 1 thread';
const ONNX_NODE = 'onnx-node 1 thread';

export interface KernelBenchRow {
  label: string;
  product: Product;
  shape: [number, number, number];
  gflops: Record<string, number | null>;
}

export interface KernelBenchResult {
  node: string;
  kernels: string;
  onnx: { web: string; node: string; errors: string[] };
  ceilingGflops: Record<string, number>;
  guideCeilingGflops: number;
  /** The column of the two-thread figures, e.g. 'wasm-relaxed-simd 2 threads' (absent without threads). */
  twoThreadColumn?: string;
  rows: KernelBenchRow[];
}

function format(value: number | null | undefined, width = 8): string {
  return (value == null ? '—' : value.toFixed(1)).padStart(width);
}

/** Measures every case on every implementation, printing the tables through `log`; returns the figures. */
export async function runKernelBench({
  quick = false,
  log = console.log,
}: KernelBenchOptions = {}): Promise<KernelBenchResult> {
  const minSeconds = quick ? 0.05 : 0.25;
  const rounds = quick ? 2 : 5;
  const variants = (['wasm-relaxed-simd', 'wasm-simd'] as const).filter((variant) =>
    wasmVariantSupported(variant),
  );
  const best = variants[0];
  const twoThreads = best ? wasmKernels(best, 2) : undefined;
  const twoThreadColumn = twoThreads && twoThreads.threads === 2 ? `${best} 2 threads` : undefined;
  const onnx = await loadOnnx();

  log(`node ${process.version}; ${describeKernels()}`);
  for (const error of onnx.errors) log(`unavailable: ${error}`);

  const ceilings: Record<string, number> = {};
  for (const variant of variants) {
    ceilings[variant] = benchCeiling(instantiateKernels(variant).wasm.ceiling, minSeconds, rounds);
  }
  log(
    'ceiling (12 register-only multiply-adds per iteration): ' +
      variants.map((variant) => `${variant} ${ceilings[variant].toFixed(1)} GFLOP/s`).join(', ') +
      `; the guide quotes ${GUIDE_CEILING}`,
  );

  const columns = [
    'ts',
    ...variants.flatMap((v) => [v, `${v} gemm only`]),
    ...(twoThreadColumn ? [twoThreadColumn] : []),
    ONNX_WEB,
    ONNX_NODE,
  ];
  const rows: KernelBenchRow[] = [];
  log('');
  log('GFLOP/s'.padEnd(40) + columns.map((column) => column.padStart(column.length + 2)).join(''));
  for (const c of CASES) {
    const row: KernelBenchRow = { label: c.label, product: c.product, shape: [c.M, c.K, c.N], gflops: {} };
    // The reference is slow on the big shapes: fewer, shorter rounds are enough for its 1-5 GFLOP/s.
    row.gflops.ts = benchProduct(referenceKernels, c, minSeconds / 2, Math.min(rounds, 3));
    for (const variant of variants) {
      row.gflops[variant] = benchProduct(wasmKernels(variant)!, c, minSeconds, rounds);
      row.gflops[`${variant} gemm only`] = benchGemmOnly(variant, c, minSeconds, rounds);
    }
    if (twoThreadColumn) row.gflops[twoThreadColumn] = benchProduct(twoThreads!, c, minSeconds, rounds);
    row.gflops[ONNX_WEB] = onnx.web ? await benchOnnx(onnx.web, 'wasm', c, minSeconds, rounds) : null;
    row.gflops[ONNX_NODE] = onnx.node ? await benchOnnx(onnx.node, 'cpu', c, minSeconds, rounds) : null;
    rows.push(row);
    log(c.label.padEnd(40) + columns.map((column) => format(row.gflops[column], column.length + 2)).join(''));
  }

  if (best) {
    log('');
    log(
      `${best}: ÷ ${ONNX_WEB}, ÷ ${ONNX_NODE}, ÷ ts, % of the measured ceiling (prefill shapes: the issue ` +
        `asks ≥ 70%), % of the guide's ${GUIDE_CEILING}, the share of a call spent outside gemm (copies and ` +
        'packing; noisy when small), and 2 threads ÷ 1',
    );
    const ratio = (a: number, b: number | null | undefined) => (b ? (a / b).toFixed(2) : '—');
    for (const [i, row] of rows.entries()) {
      const wasm = row.gflops[best]!;
      const outsideGemm = Math.max(0, 1 - wasm / row.gflops[`${best} gemm only`]!);
      const ofCeiling = `${((100 * wasm) / ceilings[best]).toFixed(0)}%${isPrefillShape(CASES[i]) ? '*' : ' '}`;
      log(
        row.label.padEnd(40) +
          `${ratio(wasm, row.gflops[ONNX_WEB])}× web`.padStart(11) +
          `${ratio(wasm, row.gflops[ONNX_NODE])}× node`.padStart(12) +
          `${ratio(wasm, row.gflops.ts)}× ts`.padStart(11) +
          ofCeiling.padStart(7) +
          `${((100 * wasm) / GUIDE_CEILING).toFixed(0)}%`.padStart(6) +
          `${(100 * outsideGemm).toFixed(0)}%`.padStart(6) +
          (twoThreadColumn ? `${ratio(row.gflops[twoThreadColumn]!, wasm)}× 2t`.padStart(10) : ''),
      );
    }
    log('(* prefill and training shapes)');
  }

  return {
    node: process.version,
    kernels: describeKernels(),
    onnx: {
      web: 'onnxruntime-web, wasm, 1 thread',
      node: 'onnxruntime-node, cpu, 1 thread',
      errors: onnx.errors,
    },
    ceilingGflops: ceilings,
    guideCeilingGflops: GUIDE_CEILING,
    twoThreadColumn,
    rows,
  };
}

async function main(): Promise<void> {
  const result = await runKernelBench({ quick: process.argv.includes('--quick') });
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ date: new Date().toISOString(), ...result }));
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
