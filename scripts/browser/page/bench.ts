/**
 * The benchmark in Chromium (run in the page's worker): our kernels against onnxruntime-web — its
 * WebAssembly build, on one thread, loaded from node_modules, which the driver serves at /ort/ — on the
 * shapes of scripts/bench-common.ts, and the stories15M-shape engine with the TypeScript kernels and the
 * WebAssembly ones on one thread and on two.
 */
import { randomModel, STORIES15M_SHAPE } from '../../../src/engine/init.ts';
import { describeKernels, selectKernels } from '../../../src/kernels/select.ts';
import { instantiateKernels, wasmVariantSupported, type WasmVariant } from '../../../src/kernels/wasm.ts';
import {
  benchCeiling,
  benchOnnx,
  benchProduct,
  CASES,
  cell,
  engineSpeed,
  tableRow,
  type EngineSpeed,
  type Ort,
} from '../../bench-common.ts';

export const ONNX_WEB = 'onnx-web 1 thread';

export interface BrowserBenchResult {
  userAgent: string;
  crossOriginIsolated: boolean;
  kernels: string;
  ceilingGflops: Record<string, number>;
  /** The kernel columns, e.g. 'wasm-relaxed-simd', 'wasm-relaxed-simd 2 threads', 'onnx-web 1 thread'. */
  columns: string[];
  rows: { label: string; shape: [number, number, number]; gflops: Record<string, number | null> }[];
  /** stories15M shape, random weights: by kernel set ('ts', 'wasm 1 thread', 'wasm 2 threads'). */
  engine: Record<string, EngineSpeed>;
  errors: string[];
}

async function loadOnnxWeb(): Promise<Ort> {
  const ort = (await import(/* @vite-ignore */ `${location.origin}/ort/ort.wasm.min.mjs`)) as Ort;
  ort.env.wasm.wasmPaths = `${location.origin}/ort/`;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
  return ort;
}

export async function runBench(quick: boolean, log: (line: string) => void): Promise<BrowserBenchResult> {
  const minSeconds = quick ? 0.05 : 0.25;
  const rounds = quick ? 2 : 5;
  const errors: string[] = [];
  const one = selectKernels('wasm', { threads: 1 });
  const two = selectKernels('wasm', { threads: 2 });
  await two.ready();
  const variant = one.variant as WasmVariant;
  log(`${navigator.userAgent}; cross-origin isolated: ${crossOriginIsolated}`);
  log(describeKernels(two));

  const ceilingGflops: Record<string, number> = {};
  for (const build of ['wasm-relaxed-simd', 'wasm-simd'] as const) {
    if (wasmVariantSupported(build)) {
      ceilingGflops[build] = benchCeiling(instantiateKernels(build).wasm.ceiling, minSeconds, rounds);
    }
  }
  log(
    `ceiling: ${Object.entries(ceilingGflops)
      .map(([b, g]) => `${b} ${g.toFixed(1)} GFLOP/s`)
      .join(', ')}`,
  );

  let ort: Ort | undefined;
  try {
    ort = await loadOnnxWeb();
  } catch (error) {
    errors.push(`onnxruntime-web: ${error instanceof Error ? error.message : String(error)}`);
  }
  const twoColumn = two.threads === 2 ? `${variant} 2 threads` : undefined;
  const columns = [variant, ...(twoColumn ? [twoColumn] : []), ONNX_WEB];
  const rows: BrowserBenchResult['rows'] = [];
  log(tableRow('GFLOP/s', 40, columns, 30));
  for (const c of CASES) {
    const gflops: Record<string, number | null> = {};
    gflops[variant] = benchProduct(one, c, minSeconds, rounds);
    if (twoColumn) gflops[twoColumn] = benchProduct(two, c, minSeconds, rounds);
    gflops[ONNX_WEB] = null;
    if (ort) {
      try {
        gflops[ONNX_WEB] = await benchOnnx(ort, 'wasm', c, minSeconds, rounds);
      } catch (error) {
        errors.push(`onnxruntime-web on ${c.label}: ${error instanceof Error ? error.message : error}`);
      }
    }
    rows.push({ label: c.label, shape: [c.M, c.K, c.N], gflops });
    log(
      tableRow(
        c.label,
        40,
        columns.map((column) => cell(gflops[column])),
        30,
      ),
    );
  }

  const model = randomModel(STORIES15M_SHAPE, 15);
  const engine: Record<string, EngineSpeed> = {};
  const sets = {
    ts: selectKernels('ts'),
    'wasm 1 thread': one,
    ...(twoColumn ? { 'wasm 2 threads': two } : {}),
  };
  for (const [name, kernels] of Object.entries(sets)) {
    engine[name] = engineSpeed(model, kernels, name === 'ts' ? 1 : rounds);
    const { decodeTokensPerSecond: decode, prefillTokensPerSecond: prefill } = engine[name];
    log(
      `stories15M-shape ${name}: decode ${(1000 / decode).toFixed(2)} ms/token, prefill ${prefill.toFixed(0)} tokens/s`,
    );
  }
  two.close();
  return {
    userAgent: navigator.userAgent,
    crossOriginIsolated,
    kernels: describeKernels(one),
    ceilingGflops,
    columns,
    rows,
    engine,
    errors,
  };
}
