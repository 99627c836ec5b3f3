// Quantized matrix products in WebAssembly 128-bit SIMD (AssemblyScript; see matmul.as for the notation):
// the twins of the readable products in src/engine/quant-matmul.ts, which stay the reference.
//
//   Q8_0 weights × Q8_0 activations    ggml_vec_dot_q8_0_q8_0
//   Q4_0 weights × Q8_0 activations    ggml_vec_dot_q4_0_q8_0
//   Q4_1 weights × Q8_1 activations    ggml_vec_dot_q4_1_q8_1
//   runq int8 groups × int8 groups     runq.c's matmul (rows of whole groups of a multiple of 8)
//
// The activations arrive already quantized, once per product: to Q8_0 by quantizeRowsQ8_0 below (the
// readable Q8_0 quantizer of src/engine/quant.ts, step for step), to Q8_1 and runq's groups by the readable
// quantizers in wasm.ts. Integer products are exact: int8 weights and activations are widened to int16 lanes
// (4-bit weights are unpacked straight into them), multiplied and added pairwise into int32 lanes by
// i32x4.dot_i16x8_s (at most 2·128·127); each block's integer sum is then scaled and added in float32 in the
// reference's order, so the results are the reference's bit for bit.
//
// Weights are packed once (wasm.ts) in groups of 4 rows, so that one vector of 4 float32 lanes carries the
// 4 rows' running sums and every load reads memory in order:
//   values  per group of 4 rows, per block of 32: the 4 rows' 32 int8 (q8_0), or their 16 nibble bytes
//           (q4_0 and q4_1) rearranged into "nibble lanes": 16-bit lane l (bytes 2l, 2l + 1) holds elements
//           l, l + 8, l + 16, l + 24 from its lowest nibble up, so that a shift and a mask put 8 of them in
//           place as int16 (ggml's layout, byte j = element j low and j + 16 high, needs byte shifts and
//           widening instead)
//   scales  per group, per block: 4 float32 (the rows' d, widened from float16)
//   mins    (q4_1) the same for the rows' m
// runq weights are kept row by row, as in the file. A product's N is padded to whole groups with zero rows.
//
// The threads share a product by "panels" of 8 output columns, as gemmPart's (src/kernels/threads.ts):
// `quantPart` has gemmPart's signature, with `a` and `b` pointing at small descriptors (below).

import { laneMax } from './simd';

/** Weight descriptor words (i32 each) at `b`. */
const W_KIND = 0; // 1 q8_0, 2 q4_0, 3 q4_1, 4 runq
const W_VALUES = 4;
const W_SCALES = 8;
const W_MINS = 12;
const W_GROUP = 16; // runq's group size
/** Activation descriptor words at `a`: int8 values [M, K], float32 scales per block (or group), Q8_1's d·Σq
 * per block, and each block's integer Σq. */
const X_VALUES = 0;
const X_SCALES = 4;
const X_SUMS = 8;
const X_INT_SUMS = 12; // Σ of each block's int8 values (for q4_0)

/**
 * This thread's copy of the weight descriptor of the product it is computing, read once and checked by
 * quantPart (globals are private to each instance, so to each thread). A late thread never reads a
 * descriptor twice: the caller may have rewritten it in between (see descriptorsFit).
 */
let wValues: usize = 0;
let wScales: usize = 0;
let wMins: usize = 0;
let wGroupSize: i32 = 0;

const KIND_Q8_0: i32 = 1;
const KIND_Q4_0: i32 = 2;
const KIND_Q4_1: i32 = 3;
const KIND_RUNQ: i32 = 4;

/**
 * Σ w[i]·x[i] over a block of 32 int8 w at `w` and x widened to int16 (x0 = x[0…7], …, x3 = x[24…31]), as
 * four int32 lanes. Each load widens 8 weights to int16 as it reads them (v128.load8x8_s), and
 * i32x4.dot_i16x8_s multiplies and adds pairs into int32 (exact: no int16 sum to overflow): fewer instructions than
 * multiplying the int8 halves with extmul, which on x86-64 has to move each high half down first.
 */
@inline
function dot32(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const low = i32x4.add(i32x4.dot_i16x8_s(v128.load8x8_s(w), x0), i32x4.dot_i16x8_s(v128.load8x8_s(w, 8), x1));
  const high = i32x4.add(
    i32x4.dot_i16x8_s(v128.load8x8_s(w, 16), x2),
    i32x4.dot_i16x8_s(v128.load8x8_s(w, 24), x3),
  );
  return i32x4.add(low, high);
}

/**
 * Σ q[i]·x[i] for a 32-block of 4-bit q (0…15) as four int32 lanes, with q in the packed "nibble lanes" layout
 * (see above: 16-bit lane l holds q[l], q[l + 8], q[l + 16], q[l + 24], lowest nibble first) and x widened
 * to int16 once per block for the four rows (x0 = x[0…7], x1 = x[8…15], x2 = x[16…23], x3 = x[24…31]). A
 * shift and a mask give 8 q as int16 lanes in place, and i32x4.dot_i16x8_s multiplies and adds pairs into
 * int32: no byte shifts, no widening of q, no extmul (which on x86-64 moves each high half down first).
 *
 * (Relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16 takes 16 products in one instruction, and its 7-bit operand
 * fits the nibbles; but in V8 on x86-64 it gave other sums than the exact ones once the module had run a
 * while — a test on a fresh module passed, a model's text went wrong — so both builds stay exact this way.)
 */
@inline
function dotNibbleLanes(q: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  const nibble = i16x8.splat(0x0f);
  const p01 = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(q, nibble), x0),
    i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(q, 4), nibble), x1),
  );
  const p23 = i32x4.add(
    i32x4.dot_i16x8_s(v128.and(i16x8.shr_u(q, 8), nibble), x2),
    i32x4.dot_i16x8_s(i16x8.shr_u(q, 12), x3),
  );
  return i32x4.add(p01, p23);
}

/** (Σ lanes of a, Σ b, Σ c, Σ d): four rows' block sums in one vector. */
@inline
function laneSums(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(i32x4.shuffle(a, b, 0, 4, 1, 5), i32x4.shuffle(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(i32x4.shuffle(c, d, 0, 4, 1, 5), i32x4.shuffle(c, d, 2, 6, 3, 7));
  return i32x4.add(i32x4.shuffle(ab, cd, 0, 1, 4, 5), i32x4.shuffle(ab, cd, 2, 3, 6, 7));
}

/** Rows 4g … 4g+3 of the weight · activation row `x`: their 4 sums. */
function group4(
  kind: i32,
  g: i32,
  xValues: usize,
  xScales: usize,
  xSums: usize,
  xIntSums: usize,
  K: i32,
): v128 {
  const blocks = K >> 5;
  let acc = f32x4.splat(0);
  let scales = wScales + <usize>g * blocks * 16;
  if (kind == KIND_Q8_0) {
    let values = wValues + <usize>g * blocks * 128;
    for (let b = 0; b < blocks; b++) {
      const x0 = v128.load8x8_s(xValues);
      const x1 = v128.load8x8_s(xValues, 8);
      const x2 = v128.load8x8_s(xValues, 16);
      const x3 = v128.load8x8_s(xValues, 24);
      const s0 = dot32(values, x0, x1, x2, x3);
      const s1 = dot32(values + 32, x0, x1, x2, x3);
      const s2 = dot32(values + 64, x0, x1, x2, x3);
      const s3 = dot32(values + 96, x0, x1, x2, x3);
      // sumf += sumi · (d_w · d_x), each product rounded to float32 as ggml's is.
      const scale = f32x4.mul(v128.load(scales), f32x4.splat(load<f32>(xScales)));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(laneSums(s0, s1, s2, s3)), scale));
      values += 128;
      scales += 16;
      xValues += 32;
      xScales += 4;
    }
    return acc;
  }
  let values = wValues + <usize>g * blocks * 64;
  let mins = wMins + <usize>g * blocks * 16;
  for (let b = 0; b < blocks; b++) {
    const xLow = v128.load(xValues);
    const xHigh = v128.load(xValues, 16);
    const x0 = i16x8.extend_low_i8x16_s(xLow);
    const x1 = i16x8.extend_high_i8x16_s(xLow);
    const x2 = i16x8.extend_low_i8x16_s(xHigh);
    const x3 = i16x8.extend_high_i8x16_s(xHigh);
    const s0 = dotNibbleLanes(v128.load(values), x0, x1, x2, x3);
    const s1 = dotNibbleLanes(v128.load(values, 16), x0, x1, x2, x3);
    const s2 = dotNibbleLanes(v128.load(values, 32), x0, x1, x2, x3);
    const s3 = dotNibbleLanes(v128.load(values, 48), x0, x1, x2, x3);
    let sumiInt = laneSums(s0, s1, s2, s3);
    // q4_0 stores q + 8: Σ (q − 8)·x = Σ q·x − 8·Σ x, with Σ x the block's integer sum (xIntSums).
    if (kind == KIND_Q4_0) sumiInt = i32x4.sub(sumiInt, i32x4.splat(load<i32>(xIntSums) << 3));
    const sumi = f32x4.convert_i32x4_s(sumiInt);
    const dx = f32x4.splat(load<f32>(xScales));
    if (kind == KIND_Q4_0) {
      // sumf += sumi · d_w · d_x, left to right.
      acc = f32x4.add(acc, f32x4.mul(f32x4.mul(sumi, v128.load(scales)), dx));
    } else {
      // sumf += (d_w · d_x) · sumi + m_w · s_x.
      const scaled = f32x4.mul(f32x4.mul(v128.load(scales), dx), sumi);
      acc = f32x4.add(acc, f32x4.add(scaled, f32x4.mul(v128.load(mins), f32x4.splat(load<f32>(xSums)))));
      mins += 16;
      xSums += 4;
    }
    values += 64;
    scales += 16;
    xValues += 32;
    xScales += 4;
    xIntSums += 4;
  }
  return acc;
}

/** runq.c's matmul for one output row d: integer sums per group of GS (a multiple of 8), scaled in float32. */
function runqRow(d: i32, xValues: usize, xScales: usize, K: i32): f32 {
  const GS = wGroupSize;
  const groups = K / GS;
  let values = wValues + <usize>d * K;
  let scales = wScales + <usize>d * groups * 4;
  let val: f32 = 0;
  for (let g = 0; g < groups; g++) {
    let sum = i32x4.splat(0);
    for (let k = 0; k < GS; k += 8) {
      sum = i32x4.add(sum, i32x4.dot_i16x8_s(v128.load8x8_s(values), v128.load8x8_s(xValues)));
      values += 8;
      xValues += 8;
    }
    const ival =
      i32x4.extract_lane(sum, 0) + i32x4.extract_lane(sum, 1) + i32x4.extract_lane(sum, 2) + i32x4.extract_lane(sum, 3);
    val += <f32>ival * load<f32>(scales) * load<f32>(xScales);
    scales += 4;
    xScales += 4;
  }
  return val;
}

/** Whether `bytes` bytes at `at` lie inside the memory. */
@inline
function inside(at: u64, bytes: u64, limit: u64): bool {
  return at + bytes <= limit;
}

/**
 * Whether a product of this kind and these descriptor words stays inside the memory. The caller's are always
 * right; but a worker thread that the system paused may run a chunk late, after the caller has stolen it,
 * finished the product and reused the scratch memory the activation descriptor was in, or freed the weight
 * (threads.ts). Its result is dropped; this check, on words quantPart has read once and uses from then on,
 * makes sure that its reads of whatever is there now cannot leave the memory.
 */
function descriptorsFit(
  kind: i32,
  xValues: usize,
  xScales: usize,
  xSums: usize,
  xIntSums: usize,
  M: i32,
  K: i32,
  N: i32,
): bool {
  const limit = <u64>memory.size() << 16;
  if (M < 0 || K < 0 || N < 0) return false;
  if (kind < KIND_Q8_0 || kind > KIND_RUNQ) return false;
  const m = <u64>M;
  const k = <u64>K;
  const n = <u64>N;
  const rows = kind == KIND_RUNQ ? n : (n + 3) & ~3; // weights are padded to groups of 4 rows
  let groups: u64 = k >> 5;
  if (kind == KIND_RUNQ) {
    if (wGroupSize < 8 || (wGroupSize & 7) != 0 || K % wGroupSize != 0) return false;
    groups = k / <u64>wGroupSize;
  } else if ((K & 31) != 0) return false;
  const valueBytes = kind == KIND_Q8_0 || kind == KIND_RUNQ ? rows * k : (rows * k) >> 1;
  return (
    inside(wValues, valueBytes, limit) &&
    inside(wScales, rows * groups * 4, limit) &&
    (kind != KIND_Q4_1 || inside(wMins, rows * groups * 4, limit)) &&
    inside(xValues, m * k, limit) &&
    inside(xScales, m * groups * 4, limit) &&
    (kind != KIND_Q4_1 || inside(xSums, m * groups * 4, limit)) &&
    (kind != KIND_Q4_0 || inside(xIntSums, m * groups * 4, limit))
  );
}

/**
 * Output columns 8·panelStart … 8·panelEnd − 1 (weight rows), all M activation rows: what one thread computes
 * (the signature of matmul.as's gemmPart). `out` is where column 8·panelStart of row 0 goes.
 */
export function quantPart(
  out: usize,
  outRowBytes: usize,
  a: usize,
  b: usize,
  M: i32,
  K: i32,
  N: i32,
  panelStart: i32,
  panelEnd: i32,
): void {
  const limit = <u64>memory.size() << 16;
  if (!inside(a, 16, limit) || !inside(b, 20, limit)) return;
  // Every descriptor word is read once, here, then checked (descriptorsFit) and used from these copies.
  const kind = load<i32>(b, W_KIND);
  wValues = <usize>load<u32>(b, W_VALUES);
  wScales = <usize>load<u32>(b, W_SCALES);
  wMins = <usize>load<u32>(b, W_MINS);
  wGroupSize = load<i32>(b, W_GROUP);
  const xValuesAll = <usize>load<u32>(a, X_VALUES);
  const xScalesAll = <usize>load<u32>(a, X_SCALES);
  const xSumsAll = <usize>load<u32>(a, X_SUMS);
  const xIntSumsAll = <usize>load<u32>(a, X_INT_SUMS);
  if (!descriptorsFit(kind, xValuesAll, xScalesAll, xSumsAll, xIntSumsAll, M, K, N)) return;
  const scaleCount = kind == KIND_RUNQ ? K / wGroupSize : K >> 5;
  for (let p = panelStart; p < panelEnd; p++) {
    for (let i = 0; i < M; i++) {
      const xValues = <usize>xValuesAll + <usize>i * K;
      const xScales = <usize>xScalesAll + <usize>i * scaleCount * 4;
      const xSums = <usize>xSumsAll + <usize>i * scaleCount * 4;
      const xIntSums = <usize>xIntSumsAll + <usize>i * scaleCount * 4;
      const row = out + <usize>i * outRowBytes + <usize>(p - panelStart) * 32;
      if (kind == KIND_RUNQ) {
        for (let c = 0; c < 8; c++) {
          const n = p * 8 + c;
          if (n < N) store<f32>(row + <usize>c * 4, runqRow(n, xValues, xScales, K));
        }
        continue;
      }
      // The last panel may hold a group of rows past N, past the weight's padding: not read.
      for (let half = 0; half < 2 && (p * 2 + half) * 4 < N; half++) {
        const g = p * 2 + half;
        const sums = group4(kind, g, xValues, xScales, xSums, xIntSums, K);
        const at = row + <usize>half * 16;
        if (g * 4 + 4 <= N) v128.store(at, sums);
        else {
          if (g * 4 < N) store<f32>(at, f32x4.extract_lane(sums, 0));
          if (g * 4 + 1 < N) store<f32>(at, f32x4.extract_lane(sums, 1), 4);
          if (g * 4 + 2 < N) store<f32>(at, f32x4.extract_lane(sums, 2), 8);
        }
      }
    }
  }
}

/**
 * Activations to Q8_0, as src/engine/quant.ts's Q8_0 quantizer does it: for each block of 32 float32 at `x`,
 * d = amax/127 and q = round(x · (1/d)), half away from zero, into `values` (int8, wrapping as the reference's
 * DataView.setInt8 does), d into `scales` (float32: wasm.ts rounds it through float16 as the file stores it)
 * and Σq into `intSums`. Each step is one float32 operation, as Math.fround gives it in the reference.
 */
export function quantizeRowsQ8_0(values: usize, scales: usize, intSums: usize, x: usize, blocks: i32): void {
  const half = f32x4.splat(0.5);
  const one = f32x4.splat(1);
  const signBit = f32x4.splat(-0.0);
  for (let b = 0; b < blocks; b++) {
    let largest = f32x4.splat(0);
    for (let j = 0; j < 8; j++) largest = f32x4.max(largest, f32x4.abs(v128.load(x + <usize>j * 16)));
    const d = laneMax(largest) / 127;
    const inverse = f32x4.splat(d == 0 ? 0 : 1 / d);
    store<f32>(scales, d);
    let sum = i32x4.splat(0);
    for (let j = 0; j < 8; j++) {
      const v = f32x4.mul(v128.load(x + <usize>j * 16), inverse);
      // Half away from zero, exactly: v − trunc(v) is exact, and a fraction of at least ½ moves one away.
      const whole = f32x4.trunc(v);
      const away = f32x4.ge(f32x4.abs(f32x4.sub(v, whole)), half);
      const step = v128.and(v128.or(v128.and(v, signBit), one), away); // ±1 where it rounds away, else 0
      // An infinite v (1/d overflowed) is stored as 0, as the reference's setInt8(±Infinity) stores it; every
      // finite float32 from 2^31 up is a multiple of 256, whose low byte is 0 too.
      const inRange = f32x4.lt(f32x4.abs(v), f32x4.splat(2147483648.0));
      const q = v128.and(i32x4.trunc_sat_f32x4_s(f32x4.add(whole, step)), inRange);
      const wrapped = i32x4.shr_s(i32x4.shl(q, 24), 24); // the low byte, as int8
      sum = i32x4.add(sum, wrapped);
      store<i32>(values + <usize>j * 4, i32x4.extract_lane(i8x16.shuffle(q, q, 0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), 0));
    }
    const pairs = i32x4.add(sum, i32x4.shuffle(sum, sum, 2, 3, 0, 1));
    store<i32>(intSums, i32x4.extract_lane(i32x4.add(pairs, i32x4.shuffle(pairs, pairs, 1, 0, 3, 2)), 0));
    x += 128;
    values += 32;
    scales += 4;
    intSums += 4;
  }
}

/** Bytes of the descriptors `quantPart` reads at `a` and `b`. */
export function quantDescriptorBytes(): i32 {
  return 32;
}

/**
 * Reads `bytes` bytes from `from` (a multiple of 64) with 128-bit loads and nothing else: the benchmark's
 * measure of how fast this thread can stream memory, the ceiling of a product that reads each weight once.
 * Returns a lane of the XOR of everything read, so the reads cannot be discarded.
 */
export function streamRead(from: usize, bytes: usize): i32 {
  let a = i32x4.splat(0),
    b = a,
    c = a,
    d = a;
  const end = from + bytes;
  for (let at = from; at < end; at += 64) {
    a = v128.xor(a, v128.load(at));
    b = v128.xor(b, v128.load(at, 16));
    c = v128.xor(c, v128.load(at, 32));
    d = v128.xor(d, v128.load(at, 48));
  }
  return i32x4.extract_lane(v128.xor(v128.xor(a, b), v128.xor(c, d)), 0);
}
