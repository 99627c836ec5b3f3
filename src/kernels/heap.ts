/**
 * A first-fit allocator over WebAssembly linear memory, for the kernels in wasm.ts: packed weights, the
 * scratch region of each call, the RoPE tables and the control block of the worker threads.
 */

const PAGE_BYTES = 65536;
const ALIGN = 64;

/** Allocates from a WebAssembly memory, which it grows when nothing free is big enough. */
export class LinearHeap {
  /** Free ranges, sorted by start and never adjacent (they are merged). */
  private readonly free: { start: number; bytes: number }[] = [];
  private readonly allocated = new Map<number, number>();
  private view: Float32Array;

  constructor(
    private readonly memory: WebAssembly.Memory,
    base: number,
  ) {
    this.free.push({ start: base, bytes: memory.buffer.byteLength - base });
    this.view = new Float32Array(memory.buffer);
  }

  /** The whole memory as floats. Take it after allocating: growth replaces the buffer. */
  get f32(): Float32Array {
    if (this.view.buffer !== this.memory.buffer) this.view = new Float32Array(this.memory.buffer);
    return this.view;
  }

  /** Bytes of the allocation that starts at `start` (0 if none does). */
  sizeOf(start: number): number {
    return this.allocated.get(start) ?? 0;
  }

  allocate(requested: number): number {
    const bytes = Math.max(ALIGN, Math.ceil(requested / ALIGN) * ALIGN);
    let index = this.free.findIndex((range) => range.bytes >= bytes);
    if (index < 0) index = this.grow(bytes);
    const range = this.free[index];
    const start = range.start;
    if (range.bytes === bytes) this.free.splice(index, 1);
    else {
      range.start += bytes;
      range.bytes -= bytes;
    }
    this.allocated.set(start, bytes);
    return start;
  }

  release(start: number): void {
    const bytes = this.allocated.get(start);
    if (bytes === undefined) return;
    this.allocated.delete(start);
    let index = this.free.findIndex((range) => range.start > start);
    if (index < 0) index = this.free.length;
    this.free.splice(index, 0, { start, bytes });
    this.mergeAround(index);
  }

  /** Grows the memory so that the last free range holds `bytes`; returns that range's index. */
  private grow(bytes: number): number {
    const end = this.memory.buffer.byteLength;
    const last = this.free[this.free.length - 1];
    const tailFree = last && last.start + last.bytes === end ? last.bytes : 0;
    // At least half the current size again, so that a growing model does not grow memory on every weight.
    const pages = Math.max(Math.ceil((bytes - tailFree) / PAGE_BYTES), Math.ceil(end / PAGE_BYTES / 2));
    try {
      this.memory.grow(pages);
    } catch {
      throw new RangeError(
        `WebAssembly kernels: cannot grow memory from ${end / 2 ** 20} MiB by ${(pages * PAGE_BYTES) / 2 ** 20} MiB`,
      );
    }
    this.free.push({ start: end, bytes: pages * PAGE_BYTES });
    this.mergeAround(this.free.length - 1);
    return this.free.length - 1;
  }

  private mergeAround(index: number): void {
    const next = this.free[index + 1];
    const range = this.free[index];
    if (next && range.start + range.bytes === next.start) {
      range.bytes += next.bytes;
      this.free.splice(index + 1, 1);
    }
    const previous = this.free[index - 1];
    if (previous && previous.start + previous.bytes === range.start) {
      previous.bytes += range.bytes;
      this.free.splice(index, 1);
    }
  }
}
