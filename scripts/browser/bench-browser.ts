/**
 * The Chromium part of `npm run bench`: runs page/bench.ts in Chromium (chromium.ts) and prints its
 * figures as tables, with the targets: our kernels ≥ 1.0× onnxruntime-web (one thread) on every
 * shape, ≥ 70% of the WebAssembly SIMD ceiling on the prefill and training shapes, and stories15M-shape
 * decode ≤ 5 ms/token on one thread.
 */
import { CASES, cell, isPrefillShape, tableRow } from '../bench-common.ts';
import { chromiumMissing, runInChromium } from './chromium.ts';
import { ONNX_WEB, type BrowserBenchResult } from './page/bench.ts';
import { BATCH_SIZES, WEIGHT_TYPES, type DecodeBenchResult } from './page/decode.ts';

export type BrowserBench = BrowserBenchResult | { skipped: string };
export type BrowserDecodeBench = DecodeBenchResult | { skipped: string };

export async function runBrowserBench({ quick = false } = {}): Promise<BrowserBench> {
  const missing = chromiumMissing();
  if (missing) return { skipped: missing };
  return runInChromium<BrowserBenchResult>(
    { task: 'bench', quick },
    { onLog: (line) => console.log(`  [chromium] ${line}`) },
  );
}

export function printBrowserBench(bench: BrowserBench, log: (line: string) => void): void {
  if ('skipped' in bench) {
    log(`Chromium: skipped (${bench.skipped})`);
    return;
  }
  for (const error of bench.errors) log(`unavailable: ${error}`);
  const [ours, twoThreads] = bench.columns;
  const ceiling = bench.ceilingGflops[ours] ?? NaN;
  log(`\nChromium, GFLOP/s: ours ÷ ${ONNX_WEB}, % of the SIMD ceiling, 2 threads ÷ 1`);
  // Short headers: "wasm 1 thread" is the build in the title, "wasm 2 threads" the same on two.
  const short = (column: string) =>
    column === ours
      ? 'wasm 1 thread'
      : column === twoThreads && column !== ONNX_WEB
        ? 'wasm 2 threads'
        : column;
  const width = 18;
  log(`  (${ours}; ceiling ${cell(ceiling)} GFLOP/s)`);
  log(tableRow('', 40, [...bench.columns.map(short), '1t ÷ onnx-web', '1t % ceiling', '2t ÷ 1t'], width));
  let allFaster = true;
  let allNearCeiling = true;
  for (const [i, row] of bench.rows.entries()) {
    const wasm = row.gflops[ours] ?? NaN;
    const web = row.gflops[ONNX_WEB] ?? NaN;
    const two = twoThreads === ONNX_WEB ? NaN : (row.gflops[twoThreads] ?? NaN);
    const ofCeiling = (100 * wasm) / ceiling;
    allFaster &&= wasm >= web;
    if (isPrefillShape(CASES[i])) allNearCeiling &&= ofCeiling >= 70;
    log(
      tableRow(
        row.label,
        40,
        [
          ...bench.columns.map((column) => cell(row.gflops[column])),
          `${cell(wasm / web, 2)}×`,
          `${cell(ofCeiling, 0)}%${isPrefillShape(CASES[i]) ? '*' : ' '}`,
          `${cell(two / wasm, 2)}×`,
        ],
        width,
      ),
    );
  }
  log('(* prefill and training shapes)');

  log('\nChromium, stories15M shape (random weights)');
  log(tableRow('', 24, ['decode ms/token', 'decode tok/s', 'prefill tok/s'], 18));
  for (const [name, speed] of Object.entries(bench.engine)) {
    const decodeMs = 1000 / speed.decodeTokensPerSecond;
    log(
      tableRow(
        name,
        24,
        [cell(decodeMs, 2), cell(speed.decodeTokensPerSecond), cell(speed.prefillTokensPerSecond)],
        18,
      ),
    );
  }
  const oneThread = bench.engine['wasm 1 thread'];
  const decodeMs = oneThread ? 1000 / oneThread.decodeTokensPerSecond : NaN;
  log('\ntargets (Chromium, one thread):');
  log(`  kernels ≥ 1.0× onnxruntime-web on every shape: ${allFaster ? 'yes' : 'no'}`);
  log(`  ≥ 70% of the SIMD ceiling on the prefill shapes: ${allNearCeiling ? 'yes' : 'no'}`);
  log(`  stories15M-shape decode ≤ 5 ms/token: ${decodeMs <= 5 ? 'yes' : 'no'} (${cell(decodeMs, 2)} ms)`);
}

/** Batched and quantized decoding in Chromium (page/decode.ts): the bars of issue 12 in the browser. */
export async function runBrowserDecodeBench(
  parts: { batching: boolean; quantized: boolean },
  { quick = false } = {},
): Promise<BrowserDecodeBench> {
  const missing = chromiumMissing();
  if (missing) return { skipped: missing };
  return runInChromium<DecodeBenchResult>(
    { task: 'decode', quick, parts },
    { onLog: (line) => console.log(`  [chromium] ${line}`) },
  );
}

export function printBrowserDecodeBench(bench: BrowserDecodeBench, log: (line: string) => void): void {
  if ('skipped' in bench) {
    log(`Chromium: skipped (${bench.skipped})`);
    return;
  }
  const { batching, quantized } = bench;
  if (batching) {
    log(`\nChromium, batched decode, stories15M-shape, 64 positions in (${bench.kernels})`);
    log(tableRow('sequences per pass', 24, ['tokens/s', '÷ batch 1'], 12));
    for (const size of BATCH_SIZES) {
      log(tableRow(`${size}`, 24, [cell(batching[size]), `${cell(batching[size] / batching[1], 2)}×`], 12));
    }
  }
  if (quantized) {
    log(`\nChromium, quantized weights: stories15M-shape decode, 64 positions (${bench.kernels})`);
    log(tableRow('', 8, ['2t tok/s', '2t ÷ f32'], 10));
    for (const type of WEIGHT_TYPES) {
      log(tableRow(type, 8, [cell(quantized[type]), `${cell(quantized[type] / quantized.f32, 2)}×`], 10));
    }
  }
}
