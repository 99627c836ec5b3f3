// Matrix products in WebAssembly 128-bit SIMD, written in AssemblyScript (a TypeScript dialect that
// compiles to WebAssembly; `v128`, `f32x4.*` and `v128.load*` are its names for the SIMD instructions).
//
// `src/kernels/build.ts` compiles this file twice, with and without the relaxed-SIMD feature, into the
// base64 strings of `src/kernels/wasm-binaries.ts`; `src/kernels/wasm.ts` owns the memory, copies the
// caller's Float32Arrays in and out and calls the exports below. The readable definition of every product
// is `src/kernels/reference.ts`, and the tests hold this file to it.
//
// One routine, `gemm`, computes every product: out[M,N] = A[M,K] · B[K,N]. The caller first rearranges
// ("packs") A and B so that the innermost loop reads both strictly in order:
//
//   B is cut into panels of PANEL = 8 columns. Panel p holds, for k = 0..K-1, the 8 values
//   B[k, 8p..8p+7] (zeros past column N). A panel is K·32 bytes and stays in the L1 cache while every
//   block of A streams past it.
//   A is cut into blocks of BLOCK = 6 rows. A block holds, for k = 0..K-1, the 6 values A[i..i+5, k].
//   When M mod 6 leaves 3 or more rows they form one last block padded with zero rows; 1 or 2 leftover
//   rows are stored one after another, each contiguous, for the kernels of one row and of two rows.
//
// The work is done by a 6×8 block of 12 f32x4 accumulators held in registers: per k, two vector loads of
// B and six broadcasts of A feed twelve multiply-adds. V8 gives wasm 15 SIMD registers (it keeps xmm15
// as scratch): 12 accumulators + 2 B vectors + 1 broadcast fit with no spills. Measured on one core here,
// with fused multiply-add: 4×8 reaches ~42 GFLOP/s, 5×8 ~46, 6×8 ~47 of a ~49 register-only ceiling;
// anything larger would spill.
//
// Loops are deliberately not unrolled by hand: V8 unrolls these small loops itself, and a hand-unrolled
// body lets it hoist every load to the top of the loop, which spills accumulators to the stack.
//
// All pointers are byte offsets into linear memory; all sizes are element counts.

import { madd } from './simd';

/** Columns of B in one packed panel: two f32x4 vectors. */
const PANEL: i32 = 8;
/** Rows of A in one packed block: six broadcasts per k. */
const BLOCK: i32 = 6;
/** Panels a single row of A multiplies at once: six independent accumulators hide the multiply-add latency. */
const ROW_PANELS: i32 = 3;
/** Panels gemmPart takes at a time: all blocks and then the rows past them pass over the group while it is
 * in the cache. Six: whole triples for a single row (row1x24), whole pairs for two (rows2x16). */
const GROUP_PANELS: i32 = 6;

/** Bytes of an edge tile: where a block cut short by M or N is stored before its valid part is copied out. */
const EDGE_TILE_BYTES: usize = BLOCK * PANEL * 4;

/**
 * This instance's edge tile. A global is private to each instance, so every thread sharing one memory
 * uses its own (`useEdgeTile`); by default it is the first bytes past the module's static data. (Not a
 * `memory.data` segment: each new instance would rewrite that in a shared memory, under a running thread.)
 */
let edgeTile: usize = (__heap_base + 15) & ~15;

/** The first byte of linear memory that this module does not use itself (64-byte aligned). */
export function heapBase(): usize {
  return (((__heap_base + 15) & ~15) + EDGE_TILE_BYTES + 63) & ~63;
}

/** Bytes of an edge tile, for `useEdgeTile`. */
export function edgeTileSize(): usize {
  return EDGE_TILE_BYTES;
}

/** Makes this instance (this thread) store its edge blocks at `at` (edgeTileSize bytes, 16-aligned). */
export function useEdgeTile(at: usize): void {
  edgeTile = at;
}

/**
 * out[rows, cols] = (one packed block of A) · (one packed panel of B), for rows ≤ 6 and cols ≤ 8.
 * `outRowBytes` is the distance between rows of out.
 */
function block6x8(out: usize, outRowBytes: usize, a: usize, b: usize, K: i32, rows: i32, cols: i32): void {
  let c00 = f32x4.splat(0),
    c01 = c00,
    c10 = c00,
    c11 = c00,
    c20 = c00,
    c21 = c00,
    c30 = c00,
    c31 = c00,
    c40 = c00,
    c41 = c00,
    c50 = c00,
    c51 = c00;
  for (let k = 0; k < K; k++) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let ak = v128.load32_splat(a);
    c00 = madd(ak, b0, c00);
    c01 = madd(ak, b1, c01);
    ak = v128.load32_splat(a, 4);
    c10 = madd(ak, b0, c10);
    c11 = madd(ak, b1, c11);
    ak = v128.load32_splat(a, 8);
    c20 = madd(ak, b0, c20);
    c21 = madd(ak, b1, c21);
    ak = v128.load32_splat(a, 12);
    c30 = madd(ak, b0, c30);
    c31 = madd(ak, b1, c31);
    ak = v128.load32_splat(a, 16);
    c40 = madd(ak, b0, c40);
    c41 = madd(ak, b1, c41);
    ak = v128.load32_splat(a, 20);
    c50 = madd(ak, b0, c50);
    c51 = madd(ak, b1, c51);
    a += BLOCK * 4;
    b += PANEL * 4;
  }
  if (rows == BLOCK && cols == PANEL) {
    v128.store(out, c00);
    v128.store(out, c01, 16);
    out += outRowBytes;
    v128.store(out, c10);
    v128.store(out, c11, 16);
    out += outRowBytes;
    v128.store(out, c20);
    v128.store(out, c21, 16);
    out += outRowBytes;
    v128.store(out, c30);
    v128.store(out, c31, 16);
    out += outRowBytes;
    v128.store(out, c40);
    v128.store(out, c41, 16);
    out += outRowBytes;
    v128.store(out, c50);
    v128.store(out, c51, 16);
  } else {
    v128.store(edgeTile, c00);
    v128.store(edgeTile, c01, 16);
    v128.store(edgeTile, c10, 32);
    v128.store(edgeTile, c11, 48);
    v128.store(edgeTile, c20, 64);
    v128.store(edgeTile, c21, 80);
    v128.store(edgeTile, c30, 96);
    v128.store(edgeTile, c31, 112);
    v128.store(edgeTile, c40, 128);
    v128.store(edgeTile, c41, 144);
    v128.store(edgeTile, c50, 160);
    v128.store(edgeTile, c51, 176);
    for (let r = 0; r < rows; r++) {
      memory.copy(out + <usize>r * outRowBytes, edgeTile + <usize>r * PANEL * 4, <usize>cols * 4);
    }
  }
}

/**
 * out[1, 24] = one row of A · three consecutive full panels of B. A single row — the M = 1
 * matrix×vector product of decoding — has no other rows to share the loads of B with, so it takes several
 * panels at once instead, for independent accumulators. Three, not four: with four, V8 hoists all eight
 * loads of B above the multiply-adds and runs out of registers.
 */
function row1x24(out: usize, a: usize, b: usize, panelBytes: usize, K: i32): void {
  let b0 = b,
    b1 = b0 + panelBytes,
    b2 = b1 + panelBytes;
  let c0 = f32x4.splat(0),
    c1 = c0,
    c2 = c0,
    c3 = c0,
    c4 = c0,
    c5 = c0;
  for (let k = 0; k < K; k++) {
    const ak = v128.load32_splat(a);
    c0 = madd(ak, v128.load(b0), c0);
    c1 = madd(ak, v128.load(b0, 16), c1);
    c2 = madd(ak, v128.load(b1), c2);
    c3 = madd(ak, v128.load(b1, 16), c3);
    c4 = madd(ak, v128.load(b2), c4);
    c5 = madd(ak, v128.load(b2, 16), c5);
    a += 4;
    b0 += PANEL * 4;
    b1 += PANEL * 4;
    b2 += PANEL * 4;
  }
  v128.store(out, c0);
  v128.store(out, c1, 16);
  v128.store(out, c2, 32);
  v128.store(out, c3, 48);
  v128.store(out, c4, 64);
  v128.store(out, c5, 80);
}

/**
 * out[2, 16] = two rows of A · two consecutive full panels of B: the pair of rows past the blocks (M = 2, or
 * M = 8 = a block of six and a pair). Each load of B feeds both rows, so the pair costs one pass over B, not
 * two. Eight accumulators: enough to hide the multiply-add latency. (2 × 24, with twelve, measured 36 µs on a
 * 2 × 288 × 768 product here, slower than two single rows; this one 17 µs.)
 */
function rows2x16(out: usize, outRowBytes: usize, a: usize, K: i32, b: usize, panelBytes: usize): void {
  const secondRow = <usize>K * 4; // rows past the blocks are stored one after another
  let b0 = b,
    b1 = b0 + panelBytes;
  let c00 = f32x4.splat(0),
    c01 = c00,
    c02 = c00,
    c03 = c00,
    c10 = c00,
    c11 = c00,
    c12 = c00,
    c13 = c00;
  for (let k = 0; k < K; k++) {
    const a0 = v128.load32_splat(a);
    const a1 = v128.load32_splat(a + secondRow);
    let bk = v128.load(b0);
    c00 = madd(a0, bk, c00);
    c10 = madd(a1, bk, c10);
    bk = v128.load(b0, 16);
    c01 = madd(a0, bk, c01);
    c11 = madd(a1, bk, c11);
    bk = v128.load(b1);
    c02 = madd(a0, bk, c02);
    c12 = madd(a1, bk, c12);
    bk = v128.load(b1, 16);
    c03 = madd(a0, bk, c03);
    c13 = madd(a1, bk, c13);
    a += 4;
    b0 += PANEL * 4;
    b1 += PANEL * 4;
  }
  v128.store(out, c00);
  v128.store(out, c01, 16);
  v128.store(out, c02, 32);
  v128.store(out, c03, 48);
  out += outRowBytes;
  v128.store(out, c10);
  v128.store(out, c11, 16);
  v128.store(out, c12, 32);
  v128.store(out, c13, 48);
}

/** out[1, cols] = one row of A · one panel of B, for cols ≤ 8. */
function row1x8(out: usize, a: usize, b: usize, K: i32, cols: i32): void {
  let c0 = f32x4.splat(0),
    c1 = c0;
  for (let k = 0; k < K; k++) {
    const ak = v128.load32_splat(a);
    c0 = madd(ak, v128.load(b), c0);
    c1 = madd(ak, v128.load(b, 16), c1);
    a += 4;
    b += PANEL * 4;
  }
  v128.store(edgeTile, c0);
  v128.store(edgeTile, c1, 16);
  memory.copy(out, edgeTile, <usize>cols * 4);
}

/**
 * How many rows of A `packA` stores in blocks: the full blocks, plus a padded one for 3–5 leftover rows.
 * The rows past this are stored as they are. (Two pairs of rows are faster than a padded block when B is
 * in the cache, but slower on a product that streams B from memory, like the classifier's: the block reads
 * B in one sequential stream while it computes, the pairs re-read it.)
 */
export function blockedRows(M: i32): i32 {
  const leftover = M % BLOCK;
  return leftover >= BLOCK / 2 ? M - leftover + BLOCK : M - leftover;
}

/** Bytes `packA` writes for A[M,K]. */
export function packedASize(M: i32, K: i32): usize {
  return <usize>max(blockedRows(M), M) * K * 4;
}

/** Bytes `packRows` and `packTransposed` write for a B of K rows and N columns. */
export function packedBSize(K: i32, N: i32): usize {
  return <usize>((N + PANEL - 1) / PANEL) * K * PANEL * 4;
}

/** Panels of B in a product with N columns. */
export function panelCount(N: i32): i32 {
  return (N + PANEL - 1) / PANEL;
}

/**
 * out[M,N] = A[M,K] · B[K,N], with A packed by `packA` and B by `packRows` or `packTransposed`; out is
 * row-major.
 */
export function gemm(out: usize, a: usize, b: usize, M: i32, K: i32, N: i32): void {
  gemmPart(out, <usize>N * 4, a, b, M, K, N, 0, panelCount(N));
}

/**
 * Columns 8·panelStart … 8·panelEnd−1 of the product (all M rows): what one thread computes when several
 * share a product (src/kernels/threads.ts). `out` is where the first of those columns goes, `outRowBytes`
 * the distance between rows there, so a thread may write straight into the output or into a buffer of its
 * own. Panels are the outer loop, six at a time, so that each stays in L1 while every block of A passes,
 * and the group is still in the cache when the rows past the blocks (one or two) pass it: every weight is
 * read from memory once, whatever M is. (Chunks of panels are whole groups, threads.ts.)
 */
export function gemmPart(
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
  const panelBytes = <usize>K * PANEL * 4;
  const blocked = blockedRows(M);
  // With no blocks (M = 1 or 2) nothing else reads the panels: the rows take them all in one sweep.
  const step = blocked == 0 ? panelEnd - panelStart : GROUP_PANELS;
  for (let p = panelStart; p < panelEnd; p += step) {
    const groupEnd = min(p + step, panelEnd);
    for (let q = p; q < groupEnd; q++) {
      const cols = min(PANEL, N - q * PANEL);
      const panel = b + <usize>q * panelBytes;
      const outPanel = out + <usize>(q - panelStart) * PANEL * 4;
      for (let i = 0; i < blocked; i += BLOCK) {
        const outBlock = outPanel + <usize>i * outRowBytes;
        block6x8(outBlock, outRowBytes, a + <usize>i * K * 4, panel, K, min(BLOCK, M - i), cols);
      }
    }
    // The 1 or 2 rows past the blocks, while the group's panels are still in the cache.
    const row = a + <usize>blocked * K * 4;
    const outRow = out + <usize>blocked * outRowBytes + <usize>(p - panelStart) * PANEL * 4;
    if (M - blocked == 2) rowPair(outRow, outRowBytes, row, b, panelBytes, K, N, p, groupEnd);
    else if (M - blocked == 1) singleRow(outRow, row, b, panelBytes, K, N, p, groupEnd);
  }
}

/** Panels p … end − 1 of one row of A (unblocked) into outRow: three at a time where whole, then one by one. */
@inline
function singleRow(outRow: usize, row: usize, b: usize, panelBytes: usize, K: i32, N: i32, p: i32, end: i32): void {
  const first = p;
  for (; p + ROW_PANELS <= end && (p + ROW_PANELS) * PANEL <= N; p += ROW_PANELS) {
    row1x24(outRow + <usize>(p - first) * PANEL * 4, row, b + <usize>p * panelBytes, panelBytes, K);
  }
  for (; p < end; p++) {
    row1x8(outRow + <usize>(p - first) * PANEL * 4, row, b + <usize>p * panelBytes, K, min(PANEL, N - p * PANEL));
  }
}

/** Panels p … end − 1 of two consecutive unblocked rows of A: two panels at a time where whole, then one by one. */
function rowPair(
  outRow: usize,
  outRowBytes: usize,
  row: usize,
  b: usize,
  panelBytes: usize,
  K: i32,
  N: i32,
  p: i32,
  end: i32,
): void {
  const first = p;
  for (; p + 2 <= end && (p + 2) * PANEL <= N; p += 2) {
    rows2x16(outRow + <usize>(p - first) * PANEL * 4, outRowBytes, row, K, b + <usize>p * panelBytes, panelBytes);
  }
  for (; p < end; p++) {
    const at = outRow + <usize>(p - first) * PANEL * 4;
    const cols = min(PANEL, N - p * PANEL);
    row1x8(at, row, b + <usize>p * panelBytes, K, cols);
    row1x8(at + outRowBytes, row + <usize>K * 4, b + <usize>p * panelBytes, K, cols);
  }
}

/** Copies `rows` rows of `rowBytes` bytes from src to dst, whose rows are srcRowBytes and dstRowBytes apart. */
export function copyRows(dst: usize, dstRowBytes: usize, src: usize, srcRowBytes: usize, rows: i32, rowBytes: usize): void {
  for (let r = 0; r < rows; r++) {
    memory.copy(dst, src, rowBytes);
    dst += dstRowBytes;
    src += srcRowBytes;
  }
}

// Transposing 4×4 tiles with shuffles, for packing: from rows a, b, c, d (four values each),
// interleaveLow/High give (a0 b0 a1 b1) and (a2 b2 a3 b3); lowHalves/highHalves of two such vectors
// then give whole columns, e.g. lowHalves(interleaveLow(a, b), interleaveLow(c, d)) = (a0 b0 c0 d0).
@inline
function interleaveLow(a: v128, b: v128): v128 {
  return f32x4.shuffle(a, b, 0, 4, 1, 5);
}
@inline
function interleaveHigh(a: v128, b: v128): v128 {
  return f32x4.shuffle(a, b, 2, 6, 3, 7);
}
@inline
function lowHalves(a: v128, b: v128): v128 {
  return f32x4.shuffle(a, b, 0, 1, 4, 5);
}
@inline
function highHalves(a: v128, b: v128): v128 {
  return f32x4.shuffle(a, b, 2, 3, 6, 7);
}

/**
 * Packs A for `gemm`. Element (i, k) of A is at src + 4·(i·rowStride + k·colStride): rowStride = K,
 * colStride = 1 for a row-major A[M,K]; rowStride = 1, colStride = M for the transpose of a row-major
 * a[K,M].
 */
export function packA(dst: usize, src: usize, M: i32, K: i32, rowStride: i32, colStride: i32): void {
  const rowStep = <usize>rowStride * 4;
  const colStep = <usize>colStride * 4;
  const blocked = blockedRows(M);
  for (let i = 0; i < blocked; i += BLOCK) {
    const from = src + <usize>i * rowStep;
    if (M - i < BLOCK) packPaddedBlock(dst, from, M - i, K, rowStep, colStep);
    else if (colStride == 1) packBlockOfRows(dst, from, K, rowStep);
    else if (rowStride == 1) packBlockOfColumns(dst, from, K, colStep);
    else packPaddedBlock(dst, from, BLOCK, K, rowStep, colStep);
    dst += <usize>BLOCK * K * 4;
  }
  for (let i = blocked; i < M; i++) {
    let from = src + <usize>i * rowStep;
    for (let k = 0; k < K; k++) {
      store<f32>(dst, load<f32>(from));
      from += colStep;
      dst += 4;
    }
  }
}

/** One block of `rows` ≤ 6 rows, any strides, zero rows after the last: element by element. */
function packPaddedBlock(dst: usize, from: usize, rows: i32, K: i32, rowStep: usize, colStep: usize): void {
  for (let k = 0; k < K; k++) {
    for (let r = 0; r < BLOCK; r++) {
      store<f32>(dst + <usize>r * 4, r < rows ? load<f32>(from + <usize>r * rowStep) : 0);
    }
    from += colStep;
    dst += BLOCK * 4;
  }
}

/** One block of 6 contiguous rows `rowStep` bytes apart, four columns at a time by 4×4 transposes. */
function packBlockOfRows(dst: usize, from: usize, K: i32, rowStep: usize): void {
  let k = 0;
  for (; k + 4 <= K; k += 4) {
    const r0 = v128.load(from);
    const r1 = v128.load(from + rowStep);
    const r2 = v128.load(from + 2 * rowStep);
    const r3 = v128.load(from + 3 * rowStep);
    const r4 = v128.load(from + 4 * rowStep);
    const r5 = v128.load(from + 5 * rowStep);
    const low01 = interleaveLow(r0, r1);
    const low23 = interleaveLow(r2, r3);
    const high01 = interleaveHigh(r0, r1);
    const high23 = interleaveHigh(r2, r3);
    const low45 = interleaveLow(r4, r5); // (r4[k], r5[k], r4[k+1], r5[k+1])
    const high45 = interleaveHigh(r4, r5);
    v128.store(dst, lowHalves(low01, low23));
    v128.store64_lane(dst, low45, 0, 16);
    v128.store(dst, highHalves(low01, low23), 24);
    v128.store64_lane(dst, low45, 1, 40);
    v128.store(dst, lowHalves(high01, high23), 48);
    v128.store64_lane(dst, high45, 0, 64);
    v128.store(dst, highHalves(high01, high23), 72);
    v128.store64_lane(dst, high45, 1, 88);
    from += 16;
    dst += 4 * BLOCK * 4;
  }
  for (; k < K; k++) {
    for (let r = 0; r < BLOCK; r++) store<f32>(dst + <usize>r * 4, load<f32>(from + <usize>r * rowStep));
    from += 4;
    dst += BLOCK * 4;
  }
}

/** One block whose 6 values for each k are adjacent (a transposed A): 24 bytes copied per k. */
function packBlockOfColumns(dst: usize, from: usize, K: i32, colStep: usize): void {
  for (let k = 0; k < K; k++) {
    v128.store(dst, v128.load(from));
    store<u64>(dst, load<u64>(from, 16), 16);
    from += colStep;
    dst += BLOCK * 4;
  }
}

/** Packs a row-major B[K,N] into panels for `gemm`. */
export function packRows(dst: usize, src: usize, K: i32, N: i32): void {
  const rowBytes = <usize>N * 4;
  for (let j = 0; j < N; j += PANEL) {
    const cols = min(PANEL, N - j);
    let from = src + <usize>j * 4;
    for (let k = 0; k < K; k++) {
      if (cols == PANEL) {
        v128.store(dst, v128.load(from));
        v128.store(dst, v128.load(from, 16), 16);
      } else {
        v128.store(dst, f32x4.splat(0));
        v128.store(dst, f32x4.splat(0), 16);
        memory.copy(dst, from, <usize>cols * 4);
      }
      from += rowBytes;
      dst += PANEL * 4;
    }
  }
}

/**
 * Packs B = wᵀ into panels for `gemm`, given the row-major w[N,K] (a weight in the
 * [outFeatures, inFeatures] layout): panel p gathers rows 8p..8p+7 of w, column by column. A trainer
 * repacks every weight after each optimizer step, so full panels go four columns at a time by 4×4
 * transposes.
 */
export function packTransposed(dst: usize, src: usize, N: i32, K: i32): void {
  const rowBytes = <usize>K * 4;
  for (let j = 0; j < N; j += PANEL) {
    const cols = min(PANEL, N - j);
    let from = src + <usize>j * rowBytes;
    let k = 0;
    if (cols == PANEL) {
      for (; k + 4 <= K; k += 4) {
        // Rows 0-3 of the panel give lanes 0-3 of each packed row, rows 4-7 lanes 4-7.
        const low01 = interleaveLow(v128.load(from), v128.load(from + rowBytes));
        const high01 = interleaveHigh(v128.load(from), v128.load(from + rowBytes));
        const low23 = interleaveLow(v128.load(from + 2 * rowBytes), v128.load(from + 3 * rowBytes));
        const high23 = interleaveHigh(v128.load(from + 2 * rowBytes), v128.load(from + 3 * rowBytes));
        const low45 = interleaveLow(v128.load(from + 4 * rowBytes), v128.load(from + 5 * rowBytes));
        const high45 = interleaveHigh(v128.load(from + 4 * rowBytes), v128.load(from + 5 * rowBytes));
        const low67 = interleaveLow(v128.load(from + 6 * rowBytes), v128.load(from + 7 * rowBytes));
        const high67 = interleaveHigh(v128.load(from + 6 * rowBytes), v128.load(from + 7 * rowBytes));
        v128.store(dst, lowHalves(low01, low23));
        v128.store(dst, lowHalves(low45, low67), 16);
        v128.store(dst, highHalves(low01, low23), 32);
        v128.store(dst, highHalves(low45, low67), 48);
        v128.store(dst, lowHalves(high01, high23), 64);
        v128.store(dst, lowHalves(high45, high67), 80);
        v128.store(dst, highHalves(high01, high23), 96);
        v128.store(dst, highHalves(high45, high67), 112);
        from += 16;
        dst += 4 * PANEL * 4;
      }
    }
    for (; k < K; k++) {
      for (let c = 0; c < PANEL; c++) {
        store<f32>(dst + <usize>c * 4, c < cols ? load<f32>(from + <usize>c * rowBytes) : 0);
      }
      from += 4;
      dst += PANEL * 4;
    }
  }
}

/**
 * Runs `iterations` rounds of twelve independent multiply-adds on registers alone: the most this core can
 * do, which the benchmark reports beside the products. Returns a lane so the work cannot be discarded.
 */
export function ceiling(iterations: i32, seed: f32): f32 {
  const scale = f32x4.splat(0.5);
  let c0 = f32x4.splat(seed),
    c1 = c0,
    c2 = c0,
    c3 = c0,
    c4 = c0,
    c5 = c0,
    c6 = c0,
    c7 = c0,
    c8 = c0,
    c9 = c0,
    c10 = c0,
    c11 = c0;
  for (let i = 0; i < iterations; i++) {
    c0 = madd(c0, scale, c0);
    c1 = madd(c1, scale, c1);
    c2 = madd(c2, scale, c2);
    c3 = madd(c3, scale, c3);
    c4 = madd(c4, scale, c4);
    c5 = madd(c5, scale, c5);
    c6 = madd(c6, scale, c6);
    c7 = madd(c7, scale, c7);
    c8 = madd(c8, scale, c8);
    c9 = madd(c9, scale, c9);
    c10 = madd(c10, scale, c10);
    c11 = madd(c11, scale, c11);
  }
  const sum = f32x4.add(
    f32x4.add(f32x4.add(f32x4.add(c0, c1), f32x4.add(c2, c3)), f32x4.add(f32x4.add(c4, c5), f32x4.add(c6, c7))),
    f32x4.add(f32x4.add(c8, c9), f32x4.add(c10, c11)),
  );
  return f32x4.extract_lane(sum, 0);
}
