/**
 * How weights are stored in fewer bits: the element types and block formats of llama.cpp (ggml), each as a
 * short quantize and dequantize function.
 *
 * A block format cuts each row of a matrix into blocks of 32 (or "super-blocks" of 256) numbers and stores
 * every block as small integers plus one or two float16 numbers that say how to turn them back into reals:
 *
 *   type   numbers  bytes  what a block holds                                        value of element i
 *   f32       1       4    the float32 itself                                        x
 *   f16       1       2    1 sign, 5 exponent, 10 fraction bits                      x (rounded)
 *   bf16      1       2    the top half of the float32 (8 exponent, 7 fraction bits) x (rounded)
 *   q8_0     32      34    scale d (f16), 32 int8 q                                  d·q
 *   q4_0     32      18    scale d (f16), 32 4-bit q (two per byte)                  d·(q − 8)
 *   q4_1     32      20    scale d (f16), minimum m (f16), 32 4-bit q                d·q + m
 *   q4_k    256     144    d, dmin (f16); 8 sub-blocks of 32 with 6-bit scale and    d·sc·q − dmin·mn
 *                          6-bit minimum each; 256 4-bit q
 *   q6_k    256     210    d (f16); 16 sub-blocks of 16 with an int8 scale each;     d·sc·(q − 32)
 *                          256 6-bit q (low 4 bits and high 2 bits stored apart)
 *
 * The layouts are llama.cpp's (ggml/src/ggml-common.h and ggml-quants.c), so a GGUF file's bytes can be read
 * as they are. Dequantizing rounds to float32 after every multiply and add, in the order llama.cpp's Python
 * package (gguf-py's quants.py) does, so the numbers are the same to the bit; the quantizers follow ggml's
 * reference ("_ref") quantizers for the same reason. Every quantized tensor keeps its bytes, so a later engine
 * can multiply with the blocks directly instead of with their float32 copies.
 *
 * No imports: the engine, the file formats and the page all use this.
 */

export type QuantType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q4_k' | 'q6_k';

/** A tensor as stored: its element type, its shape (row-major, [rows, columns]) and its bytes. */
export interface QuantizedTensor {
  type: QuantType;
  shape: readonly number[];
  bytes: Uint8Array;
}

export interface BlockFormat {
  /** How many numbers one block holds (1 for the plain float types). */
  blockSize: number;
  /** How many bytes one block takes. */
  blockBytes: number;
  /** Writes the block's `blockSize` numbers into out[at…]. */
  dequantize(view: DataView, offset: number, out: Float32Array, at: number): void;
  /** Writes values[at … at + blockSize) as one block at `offset`; only the types glassbox writes have one. */
  quantize?(values: Float32Array, at: number, view: DataView, offset: number): void;
}

// ------------------------------------------------------------------------------------- float16 and bfloat16

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const float32 = new Float32Array(1);
const float32Bits = new Uint32Array(float32.buffer);

/** float16 bits → its value. 1 sign bit, 5 exponent bits (bias 15), 10 fraction bits. */
export function float16ToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  // Exponent 0: zero or subnormal, no implicit leading 1, fixed scale 2^-14 · fraction/1024 = fraction · 2^-24.
  if (exponent === 0) return sign * fraction * 2 ** -24;
  // Exponent 31: infinity (fraction 0) or NaN.
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** A float32 value → the nearest float16's bits (ties to even, as the hardware and numpy round). */
export function float32ToFloat16(value: number): number {
  float32[0] = value;
  const bits = float32Bits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const fraction = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (fraction ? 0x200 : 0); // infinity, or a quiet NaN
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00; // too large: infinity
  if (halfExponent <= 0) {
    // A float16 subnormal counts in units of 2^-24: shift the 24-bit significand down to that unit.
    const shift = 14 - halfExponent;
    if (shift > 24) return sign; // below half the smallest subnormal: zero
    const significand = fraction | 0x800000;
    return sign | roundShift(significand, shift);
  }
  // Normal: keep 10 of the 23 fraction bits; a carry out of the fraction correctly bumps the exponent
  // (and past the largest finite value gives 0x7c00, infinity).
  return sign | ((halfExponent << 10) + roundShift(fraction, 13));
}

/** value >> shift, rounded to nearest with ties to even. */
function roundShift(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** bfloat16 is the top half of a float32 (same 8-bit exponent, 7 fraction bits), so widening is a shift. */
export function bfloat16ToFloat32(bits: number): number {
  float32Bits[0] = (bits & 0xffff) << 16;
  return float32[0];
}

/** A float32 → bfloat16 bits, ties to even; a NaN stays a (quiet) NaN. As ggml_compute_fp32_to_bf16. */
export function float32ToBfloat16(value: number): number {
  float32[0] = value;
  const bits = float32Bits[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) & 0xffff) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

const f32 = Math.fround;

let float16Values: Float32Array | undefined;
/** All 65,536 float16 values (256 kB, made once): widening then costs a lookup, not a power of two. */
function float16Table(): Float32Array {
  if (!float16Values) {
    float16Values = new Float32Array(1 << 16);
    for (let bits = 0; bits < 1 << 16; bits++) float16Values[bits] = float16ToFloat32(bits);
  }
  return float16Values;
}
const readHalf = (view: DataView, offset: number) => float16Table()[view.getUint16(offset, true)];

/** The float16 stored little-endian at bytes[offset], widened to float32 (exactly). */
export function readFloat16(bytes: Uint8Array, offset: number): number {
  return float16Table()[bytes[offset] | (bytes[offset + 1] << 8)];
}
const writeHalf = (view: DataView, offset: number, value: number) =>
  view.setUint16(offset, float32ToFloat16(value), true);

/** C's roundf: halves away from zero (Math.round would send −2.5 to −2). */
const roundHalfAway = (x: number) => Math.sign(x) * Math.floor(Math.abs(x) + 0.5);

// --------------------------------------------------------------------------------------- the plain floats

const F32: BlockFormat = {
  blockSize: 1,
  blockBytes: 4,
  dequantize: (view, offset, out, at) => void (out[at] = view.getFloat32(offset, true)),
  quantize: (values, at, view, offset) => view.setFloat32(offset, values[at], true),
};

const F16: BlockFormat = {
  blockSize: 1,
  blockBytes: 2,
  dequantize: (view, offset, out, at) => void (out[at] = readHalf(view, offset)),
  quantize: (values, at, view, offset) => writeHalf(view, offset, values[at]),
};

const BF16: BlockFormat = {
  blockSize: 1,
  blockBytes: 2,
  dequantize: (view, offset, out, at) => void (out[at] = bfloat16ToFloat32(view.getUint16(offset, true))),
  quantize: (values, at, view, offset) => view.setUint16(offset, float32ToBfloat16(values[at]), true),
};

// --------------------------------------------------------------------------------- blocks of 32 (q8_0, q4_*)

const QK = 32;

/** q8_0: one scale d = max|x| / 127 and 32 int8s; x ≈ d·q, off by at most d/2. */
const Q8_0: BlockFormat = {
  blockSize: QK,
  blockBytes: 2 + QK,
  dequantize(view, offset, out, at) {
    const d = readHalf(view, offset);
    for (let i = 0; i < QK; i++) out[at + i] = d * view.getInt8(offset + 2 + i);
  },
  quantize(values, at, view, offset) {
    let amax = 0;
    for (let i = 0; i < QK; i++) amax = Math.max(amax, Math.abs(values[at + i]));
    const d = f32(amax / 127);
    const inverse = d === 0 ? 0 : f32(1 / d);
    writeHalf(view, offset, d);
    for (let i = 0; i < QK; i++) view.setInt8(offset + 2 + i, roundHalfAway(f32(values[at + i] * inverse)));
  },
};

/**
 * The 4-bit value of element i of a 32-block: elements 0–15 are the low nibbles of bytes 0–15, elements
 * 16–31 their high nibbles.
 */
const nibble = (view: DataView, qsOffset: number, i: number) =>
  i < 16 ? view.getUint8(qsOffset + i) & 0x0f : view.getUint8(qsOffset + i - 16) >> 4;

function writeNibbles(view: DataView, qsOffset: number, q: Uint8Array): void {
  for (let j = 0; j < 16; j++) view.setUint8(qsOffset + j, q[j] | (q[j + 16] << 4));
}

const nibbles = new Uint8Array(QK);

/**
 * q4_0: d = (the value of largest magnitude) / −8, so that value becomes q = 0 exactly and the rest fall in
 * 0…15 around the offset 8; x ≈ d·(q − 8).
 */
const Q4_0: BlockFormat = {
  blockSize: QK,
  blockBytes: 2 + QK / 2,
  dequantize(view, offset, out, at) {
    const d = readHalf(view, offset);
    for (let i = 0; i < QK; i++) out[at + i] = d * (nibble(view, offset + 2, i) - 8);
  },
  quantize(values, at, view, offset) {
    let extreme = 0; // the first value of largest magnitude, sign kept
    for (let i = 0; i < QK; i++) if (Math.abs(values[at + i]) > Math.abs(extreme)) extreme = values[at + i];
    const d = f32(extreme / -8);
    const inverse = d === 0 ? 0 : f32(1 / d);
    writeHalf(view, offset, d);
    for (let i = 0; i < QK; i++) {
      nibbles[i] = Math.min(15, Math.max(0, Math.trunc(f32(f32(values[at + i] * inverse) + 8.5))));
    }
    writeNibbles(view, offset + 2, nibbles);
  },
};

/** q4_1: the block's minimum m and step d = (max − min) / 15, so 0…15 spans it exactly; x ≈ d·q + m. */
const Q4_1: BlockFormat = {
  blockSize: QK,
  blockBytes: 4 + QK / 2,
  dequantize(view, offset, out, at) {
    const d = readHalf(view, offset);
    const m = readHalf(view, offset + 2);
    for (let i = 0; i < QK; i++) out[at + i] = f32(d * nibble(view, offset + 4, i)) + m;
  },
  quantize(values, at, view, offset) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < QK; i++) {
      min = Math.min(min, values[at + i]);
      max = Math.max(max, values[at + i]);
    }
    const d = f32(f32(max - min) / 15);
    const inverse = d === 0 ? 0 : f32(1 / d);
    writeHalf(view, offset, d);
    writeHalf(view, offset + 2, min);
    for (let i = 0; i < QK; i++) {
      const scaled = f32(f32(values[at + i] - min) * inverse);
      nibbles[i] = Math.min(15, Math.max(0, Math.trunc(f32(scaled + 0.5))));
    }
    writeNibbles(view, offset + 4, nibbles);
  },
};

// ------------------------------------------------------------------------- super-blocks of 256 (k-quants)

const QK_K = 256;

/**
 * q4_k's 12 scale bytes hold eight 6-bit scales and eight 6-bit minimums. Sub-blocks 0–3 use the low 6 bits
 * of bytes 0–3 (scale) and 4–7 (minimum); sub-blocks 4–7 take their low 4 bits from bytes 8–11 (scale in the
 * low nibble, minimum in the high one) and their top 2 bits from the spare top bits of bytes 0–3 / 4–7.
 */
function q4kScaleAndMin(view: DataView, scales: number, j: number): [number, number] {
  const byte = (k: number) => view.getUint8(scales + k);
  if (j < 4) return [byte(j) & 63, byte(j + 4) & 63];
  const low = byte(j + 4);
  return [(low & 0x0f) | ((byte(j - 4) >> 6) << 4), (low >> 4) | ((byte(j) >> 6) << 4)];
}

/**
 * q4_k: 256 numbers in 8 sub-blocks of 32. Each sub-block has its own scale and minimum, themselves stored as
 * 6-bit multiples of the super-block's d and dmin. The 4-bit values come 64 at a time: 32 bytes whose low
 * nibbles are sub-block 2c and whose high nibbles are sub-block 2c + 1.
 */
const Q4_K: BlockFormat = {
  blockSize: QK_K,
  blockBytes: 4 + 12 + QK_K / 2,
  dequantize(view, offset, out, at) {
    const d = readHalf(view, offset);
    const dmin = readHalf(view, offset + 2);
    const qs = offset + 16;
    for (let sub = 0; sub < 8; sub++) {
      const [scale, min] = q4kScaleAndMin(view, offset + 4, sub);
      const step = f32(d * scale);
      const shift = f32(dmin * min);
      const bytes = qs + 32 * (sub >> 1);
      for (let l = 0; l < 32; l++) {
        const byte = view.getUint8(bytes + l);
        const q = sub & 1 ? byte >> 4 : byte & 0x0f;
        out[at + 32 * sub + l] = f32(step * q) - shift;
      }
    }
  },
};

/**
 * q6_k: 256 numbers as 6-bit values q − 32 in 16 sub-blocks of 16, each with an int8 scale (times d). A value's
 * low 4 bits live in `ql` (128 bytes) and its top 2 bits in `qh` (64 bytes). Each half of 128 numbers r uses
 * 64 ql bytes, low nibbles for r < 64, high nibbles for r ≥ 64, and 32 qh bytes, bit pair r / 32.
 */
const Q6_K: BlockFormat = {
  blockSize: QK_K,
  blockBytes: QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,
  dequantize(view, offset, out, at) {
    const ql = offset;
    const qh = offset + 128;
    const scales = offset + 192;
    const d = readHalf(view, offset + 208);
    for (let e = 0; e < QK_K; e++) {
      const half = e >> 7;
      const r = e & 127;
      const low = (view.getUint8(ql + 64 * half + (r & 63)) >> (4 * (r >> 6))) & 0x0f;
      const high = (view.getUint8(qh + 32 * half + (r & 31)) >> (2 * (r >> 5))) & 0x03;
      const step = f32(d * view.getInt8(scales + (e >> 4)));
      out[at + e] = step * ((low | (high << 4)) - 32);
    }
  },
};

export const BLOCK_FORMATS: Record<QuantType, BlockFormat> = {
  f32: F32,
  f16: F16,
  bf16: BF16,
  q8_0: Q8_0,
  q4_0: Q4_0,
  q4_1: Q4_1,
  q4_k: Q4_K,
  q6_k: Q6_K,
};

/** The types glassbox can write (the others it only reads). */
export const WRITABLE_TYPES = (Object.keys(BLOCK_FORMATS) as QuantType[]).filter(
  (type) => BLOCK_FORMATS[type].quantize !== undefined,
);

/**
 * Bytes of a tensor of this shape and type, or undefined when its rows (the last dimension) are not whole
 * blocks. Exact for any shape whose byte count is below 2^53.
 */
export function tensorBytes(type: QuantType, shape: readonly number[]): number | undefined {
  const { blockSize, blockBytes } = BLOCK_FORMATS[type];
  const columns = shape.length === 0 ? 1 : shape[shape.length - 1];
  if (columns % blockSize !== 0) return undefined;
  const rows = shape.slice(0, -1).reduce((product, size) => product * size, 1);
  return rows * (columns / blockSize) * blockBytes;
}

/**
 * How a tensor asked to be stored as `type` is stored, by llama.cpp's rule (which `glassbox quantize` and
 * `quantizeModel` share): 1-D tensors (the norms) stay f32, and a matrix whose rows are not whole blocks of
 * `type` is stored as f16 instead.
 */
export function storageType(shape: readonly number[], type: QuantType): QuantType {
  if (shape.length === 1) return 'f32';
  return tensorBytes(type, shape) === undefined ? 'f16' : type;
}

/** Every number of a stored tensor, as float32. */
export function dequantize(tensor: QuantizedTensor): Float32Array {
  const format = BLOCK_FORMATS[tensor.type];
  const count = tensor.shape.reduce((product, size) => product * size, 1);
  const { bytes } = tensor;
  // float32 on a little-endian machine: the bytes already are the numbers (aligned, so no element-wise copy).
  if (tensor.type === 'f32' && HOST_IS_LITTLE_ENDIAN && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, count).slice();
  }
  const out = new Float32Array(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let block = 0; block * format.blockSize < count; block++) {
    format.dequantize(view, block * format.blockBytes, out, block * format.blockSize);
  }
  return out;
}

/** Stores float32 numbers as `type`; throws when the rows are not whole blocks or the type is read-only. */
export function quantize(values: Float32Array, shape: readonly number[], type: QuantType): QuantizedTensor {
  const format = BLOCK_FORMATS[type];
  const quantizeBlock = format.quantize;
  if (!quantizeBlock) throw new Error(`glassbox reads ${type} but does not write it`);
  const size = tensorBytes(type, shape);
  if (size === undefined) {
    throw new Error(
      `rows of ${shape[shape.length - 1]} numbers are not whole ${type} blocks of ${format.blockSize}`,
    );
  }
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  for (let block = 0; block * format.blockSize < values.length; block++) {
    quantizeBlock(values, block * format.blockSize, view, block * format.blockBytes);
  }
  return { type, shape: [...shape], bytes };
}
