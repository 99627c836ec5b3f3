/**
 * What the loader fuzz tests share: a seeded generator, the Fuzzer that keeps score (load or FormatError, never
 * anything else, never slow), extreme header values, and byte-level damage.
 */
import { expect } from 'vitest';
import { FormatError } from '../src/formats/errors.ts';

/** xorshift32: small, seeded, and the same on every machine. */
export function rng(seed: number) {
  let state = seed >>> 0 || 1;
  const next = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
  return {
    /** An integer in [0, n). */
    below: (n: number) => next() % n,
    pick: <T>(items: readonly T[]): T => items[next() % items.length],
    byte: () => next() & 0xff,
  };
}
export type Rng = ReturnType<typeof rng>;

/** Runs variants through a loader and keeps score; anything but success or FormatError is a failure. */
export class Fuzzer {
  loaded = 0;
  rejected = 0;
  failures: string[] = [];
  slowest = { label: '', ms: 0 };
  readonly messages = new Set<string>();

  attempt(label: string, load: () => unknown): void {
    const start = performance.now();
    try {
      load();
      this.loaded++;
    } catch (error) {
      if (error instanceof FormatError) {
        this.rejected++;
        this.messages.add(error.message.replace(/\d+/g, 'N').slice(0, 80));
      } else {
        this.failures.push(`${label}: ${String(error)}`);
      }
    }
    const ms = performance.now() - start;
    if (ms > this.slowest.ms) this.slowest = { label, ms };
  }

  get total() {
    return this.loaded + this.rejected + this.failures.length;
  }

  report(name: string, minimum: number): void {
    console.info(
      `[fuzz] ${name}: ${this.total} loads attempted, ${this.loaded} loaded, ${this.rejected} FormatError ` +
        `(${this.messages.size} distinct messages), slowest ${this.slowest.ms.toFixed(1)} ms (${this.slowest.label})`,
    );
    expect(this.failures.slice(0, 10)).toEqual([]);
    expect(this.total).toBeGreaterThanOrEqual(minimum);
    expect(this.loaded).toBeGreaterThan(0);
    expect(this.rejected).toBeGreaterThan(0);
    expect(this.slowest.ms).toBeLessThan(1000); // a safety net against hangs, not a benchmark
  }
}

/** Values that break naive integer handling, as int32 header fields. */
export const EXTREME_INT32 = [
  0,
  -1,
  1,
  2,
  3,
  7,
  65536,
  1 << 20,
  2 ** 31 - 1,
  -(2 ** 31),
  0x7fc00000 /* NaN's bits */,
];

/** Values that break naive number handling, as u64 safetensors header lengths. */
export const EXTREME_U64 = [
  0n,
  1n,
  2n,
  7n,
  2n ** 31n,
  2n ** 32n,
  2n ** 32n + 2n,
  2n ** 53n + 1n,
  2n ** 63n,
  2n ** 64n - 1n,
];

/** Byte-level damage anywhere: truncation, extension, random flips. Shared by both formats. */
export function byteMutations(base: Uint8Array, random: Rng, count: number, headerBytes: number) {
  const variants: [string, Uint8Array][] = [];
  for (let length = 0; length <= 64; length++)
    variants.push([`truncate to ${length}`, base.subarray(0, length)]);
  for (const delta of [-8, -4, -1, 1, 4, 8]) {
    const resized = new Uint8Array(base.length + delta);
    resized.set(base.subarray(0, resized.length));
    variants.push([`resize by ${delta}`, resized]);
  }
  while (variants.length < count) {
    const kind = random.below(3);
    if (kind === 0) {
      const length = random.below(base.length);
      variants.push([`truncate to ${length}`, base.subarray(0, length)]);
    } else {
      // Flip a few bytes, in the header (kind 1) or anywhere (kind 2).
      const copy = new Uint8Array(base);
      const flips = 1 + random.below(4);
      const where: number[] = [];
      for (let f = 0; f < flips; f++) {
        const at = random.below(kind === 1 ? headerBytes : base.length);
        copy[at] = random.byte();
        where.push(at);
      }
      variants.push([`set bytes ${where.join(',')}`, copy]);
    }
  }
  return variants;
}
