/**
 * Linear layers whose weights are stored in fewer bits, multiplied as stored: y = x·Wᵀ, W [N, K] quantized.
 *
 * Each weight format comes with the way its reference implementation multiplies it, and these functions do
 * exactly that, in the same float32 arithmetic and order (Math.fround after every float32 operation):
 *
 *   q8_0, q4_0   llama.cpp (ggml): each row of activations is itself quantized to Q8_0 blocks (32 int8 and
 *                one float16 scale), each block pair gives an integer sum, and the sums are scaled and added.
 *   q4_1         the same with the activations in Q8_1 blocks, which also carry d·Σq for the weight's minimum.
 *   f16, bf16    each weight row is widened to float32, then an ordinary dot product (as reference.ts).
 *   runq         llama2.c's `runq`: activations quantized to int8 in groups of the file's group size, one
 *                float32 scale per group, integer sums per group, then scaled — `quantize` and `matmul` of
 *                runq.c, including what they do when a row is not whole groups (the tail is left out).
 *
 * Integer sums are exact, so what differs from the float32 product is the rounding of the weights and of
 * the activations to their grids, nothing else. The readable functions here are the reference: the
 * WebAssembly kernels (src/kernels/quant.as) are held to them by tests.
 */
import type { MatrixKernels } from '../kernels/reference.ts';
import type {
  BlockWeight,
  BlockWeightType,
  Model,
  QuantizedWeight,
  RunqWeight,
  Tensor,
  Weight,
} from './model.ts';
import {
  BLOCK_FORMATS,
  dequantize,
  float16ToFloat32,
  float32ToFloat16,
  quantize,
  readFloat16,
  storageType,
  type QuantizedTensor,
} from './quant.ts';

const f32 = Math.fround;
/** Numbers in a block of q8_0, q4_0, q4_1 and of the activations' Q8_0/Q8_1 blocks. */
const QK = 32;

/** A block tensor's bytes read as signed bytes (the int8 values of q8_0 blocks). */
const asInt8 = (bytes: Uint8Array) => new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);

// ------------------------------------------------------------------------------------ the linear layer

/**
 * out[M,N] = x[M,K] · Wᵀ for any weight: dense float32 goes to the kernels' matmulTransposedB, a quantized
 * weight to the kernels' own quantized product if they have one (WebAssembly), else to the readable one here.
 */
export function linear(
  kernels: MatrixKernels,
  out: Float32Array,
  x: Float32Array,
  w: Weight,
  M: number,
  K: number,
  N: number,
): void {
  if (w.quantized === undefined) kernels.matmulTransposedB(out, x, w.data, M, K, N);
  else (kernels.quantizedMatmul ?? quantizedMatmul)(out, x, w.quantized, M, K, N);
}

/** out[M,N] = x[M,K] · Wᵀ with W quantized, each format multiplied the way its reference multiplies it. */
export function quantizedMatmul(
  out: Float32Array,
  x: Float32Array,
  w: QuantizedWeight,
  M: number,
  K: number,
  N: number,
): void {
  checkShape(w, K, N);
  switch (w.type) {
    case 'q8_0':
      return matmulQ8_0(out, x, w, M, K, N);
    case 'q4_0':
      return matmulQ4_0(out, x, w, M, K, N);
    case 'q4_1':
      return matmulQ4_1(out, x, w, M, K, N);
    case 'f16':
    case 'bf16':
      return matmulWidened(out, x, w, M, K, N);
    case 'runq':
      return matmulRunq(out, x, w, M, K, N);
  }
}

function checkShape(w: QuantizedWeight, K: number, N: number): void {
  if (w.shape.length !== 2 || w.shape[0] !== N || w.shape[1] !== K) {
    throw new RangeError(
      `quantized product: the weight is [${w.shape.join(', ')}], the product needs [${N}, ${K}]`,
    );
  }
}

// ------------------------------------------------------------------- llama.cpp: activations in Q8 blocks

/**
 * The activations as ggml quantizes them for a q8_0 or q4_0 weight: each row of K numbers in Q8_0 blocks,
 * d = max|x| / 127 and q = round(x / d) — the very quantizer of quant.ts (quantize_row_q8_0_ref).
 */
export function quantizeActivationsQ8_0(x: Float32Array, M: number, K: number): QuantizedTensor {
  return quantize(x.subarray(0, M * K), [M, K], 'q8_0');
}

/**
 * Q8_1 (for a q4_1 weight): the same d and q as Q8_0, plus, per block, s = d·Σq as a float16 — what the
 * weight's minimum m multiplies, since Σ (d_w·q_w + m)·(d_x·q_x) = d_w·d_x·Σ q_w·q_x + m·(d_x·Σq_x).
 * As ggml's quantize_row_q8_1_ref, s uses the float32 d, before d is rounded to float16.
 */
export function quantizeActivationsQ8_1(
  x: Float32Array,
  M: number,
  K: number,
): { blocks: QuantizedTensor; sums: Float32Array } {
  const blocks = quantizeActivationsQ8_0(x, M, K);
  const q = asInt8(blocks.bytes);
  const sums = new Float32Array((M * K) / QK);
  for (let b = 0; b < sums.length; b++) {
    let amax = 0;
    let sumq = 0;
    for (let j = 0; j < QK; j++) {
      amax = Math.max(amax, Math.abs(x[b * QK + j]));
      sumq += q[b * 34 + 2 + j];
    }
    const d = f32(amax / 127);
    sums[b] = float16ToFloat32(float32ToFloat16(f32(sumq * d)));
  }
  return { blocks, sums };
}

/** Q8_0 weight × Q8_0 activations (ggml_vec_dot_q8_0_q8_0): per block Σ q_w·q_x, times d_w·d_x. */
function matmulQ8_0(out: Float32Array, x: Float32Array, w: BlockWeight, M: number, K: number, N: number) {
  const xq = quantizeActivationsQ8_0(x, M, K);
  const wValues = asInt8(w.bytes);
  const xValues = asInt8(xq.bytes);
  const blocks = K / QK;
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      let sum = 0; // float32, as ggml's sumf
      for (let b = 0; b < blocks; b++) {
        const wBlock = (n * blocks + b) * 34; // 2 bytes of d, then 32 int8
        const xBlock = (i * blocks + b) * 34;
        let sumi = 0; // exact: 32 products of at most 128·127
        for (let j = 0; j < QK; j++) sumi += wValues[wBlock + 2 + j] * xValues[xBlock + 2 + j];
        const scale = f32(readFloat16(w.bytes, wBlock) * readFloat16(xq.bytes, xBlock));
        sum = f32(sum + f32(sumi * scale));
      }
      out[i * N + n] = sum;
    }
  }
}

/**
 * Q4_0 weight × Q8_0 activations (ggml_vec_dot_q4_0_q8_0): byte j of a weight block holds element j in its
 * low nibble and element j + 16 in its high one, each stored plus 8.
 */
function matmulQ4_0(out: Float32Array, x: Float32Array, w: BlockWeight, M: number, K: number, N: number) {
  const xq = quantizeActivationsQ8_0(x, M, K);
  const xValues = asInt8(xq.bytes);
  const blocks = K / QK;
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let b = 0; b < blocks; b++) {
        const wBlock = (n * blocks + b) * 18; // 2 bytes of d, then 16 bytes of nibbles
        const xBlock = (i * blocks + b) * 34;
        let sumi = 0;
        for (let j = 0; j < QK / 2; j++) {
          const byte = w.bytes[wBlock + 2 + j];
          sumi += ((byte & 0x0f) - 8) * xValues[xBlock + 2 + j];
          sumi += ((byte >> 4) - 8) * xValues[xBlock + 2 + 16 + j];
        }
        sum = f32(sum + f32(f32(sumi * readFloat16(w.bytes, wBlock)) * readFloat16(xq.bytes, xBlock)));
      }
      out[i * N + n] = sum;
    }
  }
}

/** Q4_1 weight × Q8_1 activations (ggml_vec_dot_q4_1_q8_1): d_w·d_x·Σ q_w·q_x + m_w·s_x per block. */
function matmulQ4_1(out: Float32Array, x: Float32Array, w: BlockWeight, M: number, K: number, N: number) {
  const { blocks: xq, sums } = quantizeActivationsQ8_1(x, M, K);
  const xValues = asInt8(xq.bytes);
  const blocks = K / QK;
  for (let i = 0; i < M; i++) {
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let b = 0; b < blocks; b++) {
        const wBlock = (n * blocks + b) * 20; // d, m (2 bytes each), then 16 bytes of nibbles
        const xBlock = (i * blocks + b) * 34;
        let sumi = 0;
        for (let j = 0; j < QK / 2; j++) {
          const byte = w.bytes[wBlock + 4 + j];
          sumi += (byte & 0x0f) * xValues[xBlock + 2 + j];
          sumi += (byte >> 4) * xValues[xBlock + 2 + 16 + j];
        }
        const scale = f32(readFloat16(w.bytes, wBlock) * readFloat16(xq.bytes, xBlock));
        const minimum = f32(readFloat16(w.bytes, wBlock + 2) * sums[i * blocks + b]);
        sum = f32(sum + f32(f32(scale * sumi) + minimum));
      }
      out[i * N + n] = sum;
    }
  }
}

/** Row n of a block weight, dequantized into `row` (K numbers). */
function dequantizeRow(w: BlockWeight, n: number, K: number, row: Float32Array): void {
  const format = BLOCK_FORMATS[w.type];
  const rowBytes = (K / format.blockSize) * format.blockBytes;
  const view = new DataView(w.bytes.buffer, w.bytes.byteOffset + n * rowBytes, rowBytes);
  for (let b = 0; b * format.blockSize < K; b++) {
    format.dequantize(view, b * format.blockBytes, row, b * format.blockSize);
  }
}

/** f16 or bf16 weights: each row widened to float32, then dot products summed as reference.ts sums them. */
function matmulWidened(out: Float32Array, x: Float32Array, w: BlockWeight, M: number, K: number, N: number) {
  const row = new Float32Array(K);
  for (let n = 0; n < N; n++) {
    dequantizeRow(w, n, K, row);
    for (let i = 0; i < M; i++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += x[i * K + k] * row[k];
      out[i * N + n] = sum;
    }
  }
}

// ------------------------------------------------------------------------------------ llama2.c's runq

/** C's round(): halves away from zero. */
const roundHalfAway = (v: number) => Math.sign(v) * Math.floor(Math.abs(v) + 0.5);

/**
 * runq.c's `quantize`: n numbers in ⌊n / groupSize⌋ groups (a tail that is not a whole group is left out),
 * scale = max|x| / 127 per group and q = round(x / scale), all in float32.
 */
export function quantizeRunq(
  x: Float32Array,
  n: number,
  groupSize: number,
): { values: Int8Array; scales: Float32Array } {
  const values = new Int8Array(n);
  const scales = new Float32Array(Math.floor(n / groupSize));
  for (let group = 0; group < scales.length; group++) {
    const start = group * groupSize;
    let wmax = 0;
    for (let i = 0; i < groupSize; i++) wmax = Math.max(wmax, Math.abs(x[start + i]));
    const scale = f32(wmax / 127);
    scales[group] = scale;
    // An all-zero group divides 0 by 0; compiled runq.c then stores 0, which its scale of 0 ignores anyway.
    for (let i = 0; i < groupSize; i++) {
      values[start + i] = scale === 0 ? 0 : roundHalfAway(f32(x[start + i] / scale));
    }
  }
  return { values, scales };
}

/**
 * runq.c's `matmul`, row by row of x: for output d, the groups j = 0, GS, … while a whole group fits in the
 * row; ival = Σ x_q·w_q over the group, val += ival · w_scale · x_scale in float32. The weight's scale is
 * that of its flat position (d·K + j) / GS, as in runq.c, even when rows are not whole groups.
 */
function matmulRunq(out: Float32Array, x: Float32Array, w: RunqWeight, M: number, K: number, N: number) {
  const GS = w.groupSize;
  for (let i = 0; i < M; i++) {
    const xq = quantizeRunq(x.subarray(i * K, (i + 1) * K), K, GS);
    for (let d = 0; d < N; d++) {
      const rowStart = d * K;
      let val = 0;
      for (let j = 0; j + GS <= K; j += GS) {
        let ival = 0;
        for (let k = 0; k < GS; k++) ival += xq.values[j + k] * w.values[rowStart + j + k];
        const wScale = w.scales[Math.floor((rowStart + j) / GS)];
        val = f32(val + f32(f32(f32(ival) * wScale) * xq.scales[j / GS]));
      }
      out[i * N + d] = val;
    }
  }
}

// ------------------------------------------------------------------------------- quantized weights

/** Every number of a quantized weight as float32 (runq's `dequantize`: q · scale, one float32 product). */
export function dequantizeWeight(w: QuantizedWeight): Float32Array {
  if (w.type !== 'runq') return dequantize(w);
  const out = new Float32Array(w.values.length);
  for (let i = 0; i < out.length; i++) out[i] = w.values[i] * w.scales[Math.floor(i / w.groupSize)];
  return out;
}

/**
 * A Weight that the engine multiplies as stored. Its `data` (the dequantized float32 numbers, for figures
 * and analyses) is computed the first time something reads it, so a model that is only run never holds a
 * float32 copy of its quantized matrices.
 */
export function quantizedWeight(quantized: QuantizedWeight): Weight {
  let values: Float32Array | undefined;
  return {
    shape: quantized.shape,
    quantized,
    get data() {
      values ??= dequantizeWeight(quantized);
      return values;
    },
  };
}

/** The types quantizeModel stores matrices as (the block formats glassbox writes, not f32). */
export type ModelQuantType = BlockWeightType;

/**
 * The model with its matrices stored as `type` — what `glassbox quantize --to type` writes, loaded back:
 * norms stay f32, a matrix whose rows are not whole blocks of the type is stored as f16 (storageType, the
 * rule the GGUF writer uses), and the token embedding is looked up in its quantized-then-widened rows (as
 * llama.cpp and runq do), while a shared classifier multiplies with those same stored blocks.
 */
export function quantizeModel(model: Model, type: ModelQuantType): Model {
  const store = (tensor: Tensor): BlockWeight =>
    quantize(tensor.data, tensor.shape, storageType(tensor.shape, type)) as BlockWeight;
  const matrix = (tensor: Tensor): Weight => quantizedWeight(store(tensor));
  const { weights, config } = model;
  const embedding = store(weights.tokenEmbedding);
  return {
    config,
    weights: {
      tokenEmbedding: { data: dequantize(embedding), shape: weights.tokenEmbedding.shape },
      layers: weights.layers.map((layer) => ({
        attnNorm: layer.attnNorm,
        wq: matrix(layer.wq),
        wk: matrix(layer.wk),
        wv: matrix(layer.wv),
        wo: matrix(layer.wo),
        ffnNorm: layer.ffnNorm,
        wGate: matrix(layer.wGate),
        wUp: matrix(layer.wUp),
        wDown: matrix(layer.wDown),
      })),
      finalNorm: weights.finalNorm,
      classifier: config.sharedClassifier ? quantizedWeight(embedding) : matrix(weights.classifier),
    },
  };
}

/**
 * The model with every matrix as plain float32: a quantized weight becomes its widened values (its blocks
 * dropped, so the engine multiplies them as float32); other tensors stay as they are.
 */
export function denseModel(model: Model): Model {
  const dense = <T extends Weight>(w: T): T => (w.quantized ? ({ data: w.data, shape: w.shape } as T) : w);
  const { weights } = model;
  return {
    config: model.config,
    weights: {
      tokenEmbedding: dense(weights.tokenEmbedding),
      layers: weights.layers.map((layer) => ({
        ...layer,
        wq: dense(layer.wq),
        wk: dense(layer.wk),
        wv: dense(layer.wv),
        wo: dense(layer.wo),
        wGate: dense(layer.wGate),
        wUp: dense(layer.wUp),
        wDown: dense(layer.wDown),
      })),
      finalNorm: weights.finalNorm,
      classifier: dense(weights.classifier),
    },
  };
}

/** Bytes the model's weights take as stored (quantized matrices at their stored size, the rest as float32). */
export function weightBytes(model: Model): number {
  const bytes = (w: Weight) => {
    const q = w.quantized;
    if (q === undefined) return 4 * w.shape.reduce((p, n) => p * n, 1);
    return q.type === 'runq' ? q.values.byteLength + q.scales.byteLength : q.bytes.byteLength;
  };
  const { weights, config } = model;
  let total = bytes(weights.finalNorm);
  // A shared classifier is one table: counted once, as stored (the quantized one when there is one).
  total += config.sharedClassifier && weights.classifier.quantized ? 0 : bytes(weights.tokenEmbedding);
  total += config.sharedClassifier && !weights.classifier.quantized ? 0 : bytes(weights.classifier);
  for (const layer of weights.layers) for (const w of Object.values(layer) as Weight[]) total += bytes(w);
  return total;
}
