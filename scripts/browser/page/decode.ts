/**
 * Decoding in Chromium (run in the page's worker), for `npm run bench`: issue 12's bars measured in the
 * browser as bench.ts measures them in Node, on the stories15M shape with two threads — batched decoding
 * (1, 2, 4 and 8 sequences per pass, forwardBatch) and decoding with f32, q8_0, q4_0 and q4_1 weights, each
 * set interleaved round by round as in Node.
 */
import { randomModel, STORIES15M_SHAPE } from '../../../src/engine/init.ts';
import { quantizeModel } from '../../../src/engine/quant-matmul.ts';
import { describeKernels, selectKernels } from '../../../src/kernels/select.ts';
import { batchedDecodeTokensPerSecond, interleavedDecodeTokensPerSecond } from '../../bench-common.ts';

export interface DecodeBenchResult {
  /** The kernel set's name, e.g. 'wasm-relaxed-simd, 2 threads'. */
  kernels: string;
  /** Tokens/s by sequences per pass ('1', '2', '4', '8'), when asked for. */
  batching?: Record<string, number>;
  /** Decode tokens/s by weight type ('f32', 'q8_0', 'q4_0', 'q4_1'), when asked for. */
  quantized?: Record<string, number>;
}

export const BATCH_SIZES = [1, 2, 4, 8];
export const WEIGHT_TYPES = ['f32', 'q8_0', 'q4_0', 'q4_1'] as const;

export async function runDecodeBench(
  quick: boolean,
  parts: { batching: boolean; quantized: boolean },
  log: (line: string) => void,
): Promise<DecodeBenchResult> {
  const rounds = quick ? 2 : 4;
  const kernels = selectKernels('wasm', { threads: 2 });
  await kernels.ready();
  const result: DecodeBenchResult = { kernels: kernels.name };
  log(describeKernels(kernels));
  const model = randomModel(STORIES15M_SHAPE, 15);
  if (parts.batching) {
    const minSeconds = quick ? 0.1 : 0.25;
    const tokensPerSecond = batchedDecodeTokensPerSecond(
      model,
      kernels,
      BATCH_SIZES,
      64,
      minSeconds,
      2 * rounds,
    );
    result.batching = Object.fromEntries(BATCH_SIZES.map((size, i) => [size, tokensPerSecond[i]]));
    log(`batching: ${tokensPerSecond.map((t) => t.toFixed(1)).join(', ')} tokens/s`);
  }
  if (parts.quantized) {
    const models = WEIGHT_TYPES.map((type) => (type === 'f32' ? model : quantizeModel(model, type)));
    interleavedDecodeTokensPerSecond(models, kernels, 8, 1); // warm up: packs the weights
    const tokensPerSecond = interleavedDecodeTokensPerSecond(models, kernels, 64, rounds);
    result.quantized = Object.fromEntries(WEIGHT_TYPES.map((type, i) => [type, tokensPerSecond[i]]));
    log(`quantized: ${tokensPerSecond.map((t) => t.toFixed(1)).join(', ')} tokens/s`);
  }
  kernels.close();
  return result;
}
