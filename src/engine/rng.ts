/**
 * The seeded random number generator: xorshift64*, exactly as llama2.c's sampler uses it, so that the same
 * seed draws the same tokens here and in llama2.c's `run`. Every random choice in Glassbox goes through this
 * (never the unseeded platform generator), which makes every sample reproducible from its seed.
 */
const MASK_64 = (1n << 64n) - 1n;
const MULTIPLIER = 0x2545f4914f6cdd1dn;

export class XorShiftRng {
  private state: bigint;

  /** The seed is a 64-bit unsigned integer; 0 would get stuck at 0, so it is not allowed. */
  constructor(seed: bigint | number) {
    const s = BigInt(seed) & MASK_64;
    if (s === 0n) throw new Error('XorShiftRng: the seed must not be 0');
    this.state = s;
  }

  /** The next 32 random bits, as llama2.c's random_u32. */
  nextU32(): number {
    let x = this.state;
    x ^= x >> 12n;
    x = (x ^ (x << 25n)) & MASK_64;
    x ^= x >> 27n;
    this.state = x;
    return Number(((x * MULTIPLIER) & MASK_64) >> 32n);
  }

  /** A float in [0, 1) with 24 random bits, as llama2.c's random_f32: (u32 >> 8) / 2^24. */
  nextFloat(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }
}
