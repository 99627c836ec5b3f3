// SIMD helpers shared by matmul.as and layer.as (AssemblyScript; see matmul.as for the notation).

/** c + a·b in each lane: one fused instruction with relaxed SIMD, else a multiply and an add. */
@inline
export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** The sum of the four lanes. */
@inline
export function laneSum(v: v128): f32 {
  const pairs = f32x4.add(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(pairs, f32x4.shuffle(pairs, pairs, 1, 0, 3, 2)), 0);
}

/** The largest of the four lanes. */
@inline
export function laneMax(v: v128): f32 {
  const pairs = f32x4.max(v, f32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.max(pairs, f32x4.shuffle(pairs, pairs, 1, 0, 3, 2)), 0);
}

/** The four lanes of a float32 vector, widened and added into a float64 pair (no float32 rounding). */
@inline
export function addWidened(sum: v128, v: v128): v128 {
  const high = f32x4.shuffle(v, v, 2, 3, 0, 1);
  return f64x2.add(sum, f64x2.add(f64x2.promote_low_f32x4(v), f64x2.promote_low_f32x4(high)));
}

/** The two lanes of a float64 pair, added. */
@inline
export function pairSum(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// e^x in four float32 lanes, to about 2 ulp: the range reduction and polynomial of Cephes' expf.
// e^x = 2^n · e^r with n = round(x / ln 2) and r = x − n·ln 2 in [−ln2/2, ln2/2], where a degree-6
// polynomial is accurate to float32; 2^n is built directly from its exponent bits. ln 2 is split in two
// so that n·ln2High is exact and r loses nothing. Inputs are clamped to where 2^n is a normal float32:
// below −87.3 the result is ~1e-38 instead of a denormal (0 for every purpose here), above 88.3 it is
// 2.4e38 instead of infinity, and NaN stays NaN.
const LOG2_E: f32 = 1.44269504088896341;
const LN2_HIGH: f32 = 0.693359375;
const LN2_LOW: f32 = -2.12194440e-4;
const EXP_MIN: f32 = -87.3;
const EXP_MAX: f32 = 88.3;

@inline
export function exp4(x: v128): v128 {
  x = f32x4.min(f32x4.max(x, f32x4.splat(EXP_MIN)), f32x4.splat(EXP_MAX));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2_E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HIGH)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LOW)));
  let p = f32x4.splat(1.9875691500e-4);
  p = madd(p, r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  p = madd(p, f32x4.mul(r, r), f32x4.add(r, f32x4.splat(1)));
  const twoToN = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return f32x4.mul(p, twoToN);
}
