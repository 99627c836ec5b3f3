/**
 * sinf and cosf as the C library computes them where llama2.c's reference outputs were made (glibc on x86-64
 * with FMA, whose float32 sine and cosine come from Arm's optimized-routines: double-precision range reduction
 * and polynomials, then one rounding to float32). They are accurate to 0.56 ulp, not correctly rounded, so
 * Math.fround(Math.sin(x)) differs from them for about one angle in a few hundred — and in runq, whose int8
 * rounding of activations turns a last-bit difference into a different token now and then, that shows in the
 * text. RoPE's angles in llama2.c arithmetic (float32-ops.ts) use these; tests hold them to the C library.
 *
 * The algorithm (sinf_poly, reduce_fast, reduce_large) and its constants are those of optimized-routines'
 * sincosf (Arm Ltd., MIT / BSD licensed), written out here for doubles; every `a + b·c` that the compiler fuses
 * into one fused multiply-add in the FMA build is an exact `fma` here.
 */

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** A finite double as integer mantissa · 2^exponent (exact). */
function decompose(x: number): [bigint, number] {
  f64[0] = x;
  const bits = u64[0];
  const exponentBits = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & 0xfffffffffffffn;
  if (exponentBits !== 0) mantissa |= 1n << 52n;
  const exponent = (exponentBits === 0 ? 1 : exponentBits) - 1075;
  return [bits >> 63n ? -mantissa : mantissa, exponent];
}

/** a·b + c with one rounding (IEEE fusedMultiplyAdd), exactly, by integer arithmetic; finite inputs only. */
export function fma(a: number, b: number, c: number): number {
  if (a === 0 || b === 0) return a * b + c;
  if (c === 0) return a * b;
  const [ma, ea] = decompose(a);
  const [mb, eb] = decompose(b);
  const [mc, ec] = decompose(c);
  const ep = ea + eb;
  const low = Math.min(ep, ec);
  const sum = ((ma * mb) << BigInt(ep - low)) + (mc << BigInt(ec - low));
  // Number() of a BigInt rounds to nearest, ties to even; scaling by a power of two is then exact here (the
  // values RoPE meets are far from the ends of the double range).
  return Number(sum) * 2 ** low;
}

// The polynomial data: the sign of sine per quadrant, 2/π (· 2^24, for the integer quadrant), π/2, the cosine
// polynomial c0…c4 (negated in the second table, used in quadrants 2 and 3) and the sine polynomial s1…s3.
const HPI_INV = 0x145f306dc9c883 * 2 ** -52 * 2 ** 23; // 0x1.45F306DC9C883p+23
const HPI = 0x1921fb54442d18 * 2 ** -52; // 0x1.921FB54442D18p0
const PI63 = 0x1921fb54442d18 * 2 ** -52 * 2 ** -62; // 2π · 2^-64
const PIO4 = 0x1921fb54442d18 * 2 ** -52 * 2 ** -1; // π/4
const SIGN = [1, -1, -1, 1];
const COS = [1, -0x1ffffffd0c621c * 2 ** -52 * 2 ** -2, 0x155553e1068f19 * 2 ** -52 * 2 ** -5];
const COS_TAIL = [-0x16c087e89a359d * 2 ** -52 * 2 ** -10, 0x199343027bf8c3 * 2 ** -52 * 2 ** -16];
const SIN = [-0x1555545995a603 * 2 ** -52 * 2 ** -3, 0x11107605230bc4 * 2 ** -52 * 2 ** -7];
const SIN3 = -0x1994eb3774cf24 * 2 ** -52 * 2 ** -13;
/** 4/π to 192 bits, 8 new bits per entry. */
const INV_PIO4 = [
  0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e, 0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529, 0x441529fc, 0x1529fc27,
  0x29fc2757, 0xfc2757d1, 0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0, 0x34ddc0db, 0xddc0db62, 0xc0db6295,
  0xdb629599, 0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
];

/** sin (quadrant even) or cos (odd) of the reduced x, x2 = x², `negate` for the second table's cosine. */
function poly(x: number, x2: number, negate: boolean, n: number): number {
  const sign = negate ? -1 : 1;
  if ((n & 1) === 0) {
    const x3 = x * x2;
    const s1 = fma(x2, SIN3, SIN[1]);
    const x7 = x3 * x2;
    const s = fma(x3, SIN[0], x);
    return Math.fround(fma(x7, s1, s));
  }
  const x4 = x2 * x2;
  const c2 = fma(x2, sign * COS_TAIL[1], sign * COS_TAIL[0]);
  const c1 = fma(x2, sign * COS[1], sign * COS[0]);
  const x6 = x4 * x2;
  const c = fma(x4, sign * COS[2], c1);
  return Math.fround(fma(x6, c2, c));
}

/** abstop12: the top 12 bits of a float32 without its sign (exponent and first fraction bit). */
function top12(y: number): number {
  f32[0] = y;
  return (u32[0] >>> 20) & 0x7ff;
}

/** x reduced to [−π/4, π/4] by one fused multiply-subtract, and the quadrant (for |x| < 120). */
function reduceFast(x: number): [number, number] {
  const r = x * HPI_INV;
  const n = ((Math.trunc(r) | 0) + 0x800000) >> 24;
  return [fma(-n, HPI, x), n];
}

/** x reduced with 4/π to 192 bits (|x| ≥ 120): a 32×96-bit fixed-point product, as optimized-routines. */
function reduceLarge(y: number): [number, number] {
  f32[0] = y;
  let xi = BigInt(u32[0]);
  const at = Number((xi >> 26n) & 15n);
  const shift = (xi >> 23n) & 7n;
  xi = ((xi & 0xffffffn) | 0x800000n) << shift;
  const mask64 = (1n << 64n) - 1n;
  let res0 = (xi * BigInt(INV_PIO4[at])) & 0xffffffffn; // a 32-bit product in C
  const res1 = xi * BigInt(INV_PIO4[at + 4]);
  const res2 = xi * BigInt(INV_PIO4[at + 8]);
  res0 = ((res2 >> 32n) | (res0 << 32n)) & mask64;
  res0 = (res0 + res1) & mask64;
  const n = ((res0 + (1n << 61n)) & mask64) >> 62n;
  res0 = (res0 - (n << 62n)) & mask64;
  const signed = res0 >= 1n << 63n ? res0 - (1n << 64n) : res0;
  return [Number(signed) * PI63, Number(n)];
}

function sinOrCos(y: number, cosine: boolean): number {
  const x = Math.fround(y);
  if (!Number.isFinite(x)) return NaN;
  const top = top12(x);
  if (top < top12(PIO4)) {
    if (top < top12(2 ** -12)) return cosine ? 1 : x;
    return poly(x, x * x, false, cosine ? 1 : 0);
  }
  let reduced: number;
  let n: number;
  let quadrant: number;
  if (top < top12(120)) {
    [reduced, n] = reduceFast(x);
    quadrant = n;
  } else {
    [reduced, n] = reduceLarge(x);
    quadrant = n + (x < 0 ? 1 : 0);
  }
  const signed = reduced * SIGN[quadrant & 3];
  return poly(signed, reduced * reduced, (quadrant & 2) !== 0, cosine ? n ^ 1 : n);
}

/** C's sinf(x) for a float32 x, as glibc on x86-64 with FMA computes it. */
export const sinf = (x: number) => sinOrCos(x, false);
/** C's cosf(x) for a float32 x, as glibc on x86-64 with FMA computes it. */
export const cosf = (x: number) => sinOrCos(x, true);
