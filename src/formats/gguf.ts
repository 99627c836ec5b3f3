/**
 * GGUF, llama.cpp's model file (version 3): one file holding the hyper-parameters, the tokenizer and the
 * weights, each tensor in any of ggml's element types. Little-endian throughout:
 *
 *   "GGUF"  u32 version  u64 tensor_count  u64 metadata_count
 *   metadata_count × { string key, u32 value_type, value }      e.g. "llama.block_count" → u32 5
 *   tensor_count × { string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset }
 *   padding to `general.alignment` (default 32), then the data section; tensor bytes are at data + offset
 *
 * A string is a u64 byte length and that many bytes of UTF-8; an array is a u32 item type, a u64 count and the
 * items. ggml lists a tensor's dimensions innermost first (dims[0] is the length of a row), the reverse of the
 * [rows, columns] shape used everywhere else here, so shapes are reversed on the way in and out.
 *
 * This file is the container only: bytes ↔ metadata and stored tensors (their blocks kept as they are, see
 * src/engine/quant.ts). What the names and keys mean for a Llama model is in gguf-llama.ts.
 *
 * Nothing is trusted: every count and length is checked against the bytes left before anything is allocated,
 * so a hostile file gets one FormatError naming it, quickly and in memory bounded by its size.
 */
import { BLOCK_FORMATS, tensorBytes, type QuantType } from '../engine/quant.ts';
import { FormatError } from './errors.ts';

export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"

/** ggml's type ids for the element types glassbox reads (ggml.h `enum ggml_type`). */
export const GGML_TYPE_IDS: Record<QuantType, number> = {
  f32: 0,
  f16: 1,
  bf16: 30,
  q8_0: 8,
  q4_0: 2,
  q4_1: 3,
  q4_k: 12,
  q6_k: 14,
};
const QUANT_TYPE_BY_ID = new Map(Object.entries(GGML_TYPE_IDS).map(([type, id]) => [id, type as QuantType]));

/** The other ggml types, by id, so a message can say "Q5_K, which glassbox does not read" rather than "type 13". */
const OTHER_GGML_TYPES: Record<number, string> = {
  6: 'Q5_0', 7: 'Q5_1', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 13: 'Q5_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS',
  18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32',
  27: 'I64', 28: 'F64', 29: 'IQ1_M', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
}; // prettier-ignore

export const ggmlTypeName = (type: QuantType) => type.toUpperCase();
const READ_TYPES = Object.keys(GGML_TYPE_IDS)
  .map((type) => ggmlTypeName(type as QuantType))
  .join(', ');

/** GGUF's metadata value types (gguf.h `enum gguf_type`). */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
type ScalarType = Exclude<(typeof GgufType)[keyof typeof GgufType], 9>;

const SCALAR_BYTES: Record<ScalarType, number> = {
  0: 1,
  1: 1,
  2: 2,
  3: 2,
  4: 4,
  5: 4,
  6: 4,
  7: 1,
  8: 8,
  10: 8,
  11: 8,
  12: 8,
};
const TYPE_NAMES = [
  'u8',
  'i8',
  'u16',
  'i16',
  'u32',
  'i32',
  'f32',
  'bool',
  'string',
  'array',
  'u64',
  'i64',
  'f64',
];

export type GgufScalar = number | bigint | boolean | string;

/**
 * One metadata value with its type, as read and as written. Numbers are Numbers, except 64-bit integers
 * beyond 2^53, which stay BigInts; an array's items are all of `itemType`.
 */
export type GgufEntry =
  | { type: ScalarType; value: GgufScalar }
  | { type: typeof GgufType.ARRAY; itemType: ScalarType; value: readonly GgufScalar[] };

export interface GgufTensor {
  name: string;
  type: QuantType;
  /** Row-major, [rows, columns] for a matrix (ggml's dims reversed). */
  shape: number[];
  /** The stored blocks: a view on the file's bytes. */
  bytes: Uint8Array;
}

export interface GgufFile {
  version: number;
  alignment: number;
  /** In file order. */
  metadata: Map<string, GgufEntry>;
  /** In file order. */
  tensors: Map<string, GgufTensor>;
}

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** A cursor over the file that refuses to read past its end, naming what it was reading. */
class Cursor {
  offset = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    readonly fail: (problem: string) => never,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.offset;
  }

  /** Moves past n bytes, returning where they start; fails if the file ends first. */
  take(n: number, what: string): number {
    if (n > this.remaining) {
      this.fail(
        `${what} at byte ${this.offset} needs ${n} bytes, but the file ends ${this.remaining} bytes later ` +
          `(truncated?)`,
      );
    }
    const at = this.offset;
    this.offset += n;
    return at;
  }

  u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }

  /** A u64 as a Number; above 2^53 it cannot be a real count or offset, so it is refused. */
  u64(what: string): number {
    const at = this.take(8, what);
    const value = this.view.getUint32(at + 4, true) * 2 ** 32 + this.view.getUint32(at, true);
    if (!Number.isSafeInteger(value))
      this.fail(`${what} at byte ${at} is ${this.view.getBigUint64(at, true)}, too large`);
    return value;
  }

  string(what: string): string {
    const length = this.u64(`the length of ${what}`);
    const at = this.take(length, `${what} (${length} bytes)`);
    try {
      return utf8.decode(this.bytes.subarray(at, at + length));
    } catch {
      return this.fail(`${what} at byte ${at} is not valid UTF-8`);
    }
  }

  scalar(type: ScalarType, what: string): GgufScalar {
    if (type === GgufType.STRING) return this.string(what);
    const at = this.take(SCALAR_BYTES[type], what);
    const view = this.view;
    switch (type) {
      case GgufType.UINT8:
        return view.getUint8(at);
      case GgufType.INT8:
        return view.getInt8(at);
      case GgufType.UINT16:
        return view.getUint16(at, true);
      case GgufType.INT16:
        return view.getInt16(at, true);
      case GgufType.UINT32:
        return view.getUint32(at, true);
      case GgufType.INT32:
        return view.getInt32(at, true);
      case GgufType.FLOAT32:
        return view.getFloat32(at, true);
      case GgufType.FLOAT64:
        return view.getFloat64(at, true);
      case GgufType.BOOL: {
        const byte = view.getUint8(at);
        if (byte > 1) this.fail(`${what} at byte ${at} is a bool holding ${byte}; a bool is 0 or 1`);
        return byte === 1;
      }
      default: {
        const big = type === GgufType.UINT64 ? view.getBigUint64(at, true) : view.getBigInt64(at, true);
        const small = Number(big);
        return Number.isSafeInteger(small) ? small : big;
      }
    }
  }

  valueType(what: string): number {
    const type = this.u32(what);
    if (type > GgufType.FLOAT64) this.fail(`${what} is ${type}, which is not a GGUF value type (0–12)`);
    return type;
  }

  entry(key: string): GgufEntry {
    const type = this.valueType(`the value type of "${key}"`);
    if (type !== GgufType.ARRAY)
      return { type: type as ScalarType, value: this.scalar(type as ScalarType, `"${key}"`) };
    const itemType = this.valueType(`the item type of array "${key}"`);
    if (itemType === GgufType.ARRAY)
      this.fail(`"${key}" is an array of arrays, which GGUF readers do not support`);
    const count = this.u64(`the length of array "${key}"`);
    // Every item takes at least its fixed size (a string at least its 8-byte length): check before allocating.
    const least = SCALAR_BYTES[itemType as ScalarType];
    if (count * least > this.remaining) {
      this.fail(
        `array "${key}" says it has ${count} ${TYPE_NAMES[itemType]} items, at least ${count * least} bytes, ` +
          `but only ${this.remaining} bytes are left in the file`,
      );
    }
    const value: GgufScalar[] = new Array<GgufScalar>(count);
    for (let i = 0; i < count; i++) value[i] = this.scalar(itemType as ScalarType, `"${key}"[${i}]`);
    return { type: GgufType.ARRAY, itemType: itemType as ScalarType, value };
  }
}

/** Reads and checks a GGUF file's structure. Tensor bytes are views on `bytes`: do not modify it after. */
export function parseGguf(bytes: Uint8Array, file: string): GgufFile {
  function fail(problem: string): never {
    throw new FormatError(file, problem);
  }
  const cursor = new Cursor(bytes, fail);
  if (bytes.length < 4 || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    const start = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    fail(`not a GGUF file: it starts with bytes [${start}], not "GGUF"`);
  }
  cursor.take(4, 'the magic');
  const version = cursor.u32('the version');
  if (version !== 2 && version !== GGUF_VERSION) {
    const hint = version === 0x03000000 || version === 0x02000000 ? ' (a big-endian file?)' : '';
    fail(`GGUF version ${version}${hint}; this reader reads versions 2 and 3, little-endian`);
  }
  const tensorCount = cursor.u64('the tensor count');
  const metadataCount = cursor.u64('the metadata count');
  // Each metadata entry takes at least 8 + 4 + 1 bytes, each tensor description at least 8 + 4 + 4 + 8.
  if (metadataCount * 13 + tensorCount * 24 > cursor.remaining) {
    fail(
      `the header promises ${metadataCount} metadata entries and ${tensorCount} tensors, more than the ` +
        `${bytes.length}-byte file can hold`,
    );
  }

  const metadata = new Map<string, GgufEntry>();
  for (let i = 0; i < metadataCount; i++) {
    const key = cursor.string(`metadata key ${i}`);
    if (metadata.has(key)) fail(`metadata key "${key}" appears twice`);
    metadata.set(key, cursor.entry(key));
  }
  const alignment = readAlignment(metadata, fail);

  const infos = readTensorInfos(cursor, tensorCount, fail);
  const dataStart = Math.ceil(cursor.offset / alignment) * alignment;
  if (dataStart > bytes.length && tensorCount > 0) {
    fail(`the data section would start at byte ${dataStart}, past the end of the ${bytes.length}-byte file`);
  }
  const dataBytes = Math.max(0, bytes.length - dataStart);
  const tensors = new Map<string, GgufTensor>();
  for (const info of infos) {
    if (info.offset % alignment !== 0) {
      fail(
        `tensor "${info.name}" starts at data offset ${info.offset}, not a multiple of the alignment ${alignment}`,
      );
    }
    if (info.offset + info.size > dataBytes) {
      fail(
        `tensor "${info.name}" (${ggmlTypeName(info.type)} [${info.shape.join(', ')}], ${info.size} bytes at ` +
          `data offset ${info.offset}) reaches past the end of the ${dataBytes}-byte data section`,
      );
    }
    const start = dataStart + info.offset;
    tensors.set(info.name, {
      name: info.name,
      type: info.type,
      shape: info.shape,
      bytes: bytes.subarray(start, start + info.size),
    });
  }
  checkNoOverlap(infos, fail);
  return { version, alignment, metadata, tensors };
}

function readAlignment(metadata: Map<string, GgufEntry>, fail: (problem: string) => never): number {
  const entry = metadata.get('general.alignment');
  if (!entry) return GGUF_DEFAULT_ALIGNMENT;
  if (entry.type !== GgufType.UINT32 || !isPowerOfTwo(entry.value as number)) {
    fail(
      `general.alignment must be a u32 power of two, got ${TYPE_NAMES[entry.type]} ${String(entry.value)}`,
    );
  }
  return entry.value as number;
}

interface TensorInfo {
  name: string;
  type: QuantType;
  shape: number[];
  offset: number;
  size: number;
}

/** The tensor descriptions: names unique, at most 4 dimensions, a type glassbox reads, whole blocks per row. */
function readTensorInfos(cursor: Cursor, count: number, fail: (problem: string) => never): TensorInfo[] {
  const infos: TensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < count; i++) {
    const name = cursor.string(`the name of tensor ${i}`);
    if (names.has(name)) fail(`tensor "${name}" appears twice`);
    names.add(name);
    const dimensions = cursor.u32(`the dimension count of tensor "${name}"`);
    if (dimensions < 1 || dimensions > 4)
      fail(`tensor "${name}" has ${dimensions} dimensions; ggml allows 1 to 4`);
    const dims: number[] = [];
    for (let d = 0; d < dimensions; d++) dims.push(cursor.u64(`dimension ${d} of tensor "${name}"`));
    const typeId = cursor.u32(`the type of tensor "${name}"`);
    const type = QUANT_TYPE_BY_ID.get(typeId);
    if (!type) {
      const known = OTHER_GGML_TYPES[typeId];
      fail(
        known
          ? `tensor "${name}" is ${known}, which glassbox does not read (it reads ${READ_TYPES})`
          : `tensor "${name}" has type id ${typeId}, which is not a ggml type`,
      );
    }
    const offset = cursor.u64(`the data offset of tensor "${name}"`);
    const shape = dims.reverse();
    const elements = shape.reduce((product, size) => product * size, 1);
    if (!Number.isSafeInteger(elements)) fail(`tensor "${name}" has shape [${shape.join(', ')}], too large`);
    const size = tensorBytes(type, shape);
    if (size === undefined) {
      fail(
        `tensor "${name}" is ${ggmlTypeName(type)} with rows of ${shape[shape.length - 1]}, not a multiple of ` +
          `its block size ${BLOCK_FORMATS[type].blockSize}`,
      );
    }
    infos.push({ name, type, shape, offset, size });
  }
  return infos;
}

function checkNoOverlap(infos: TensorInfo[], fail: (problem: string) => never): void {
  const sorted = [...infos].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const [before, after] = [sorted[i - 1], sorted[i]];
    if (after.offset < before.offset + before.size && before.size > 0 && after.size > 0) {
      fail(`tensors "${before.name}" and "${after.name}" overlap in the data section`);
    }
  }
}

// ------------------------------------------------------------------------------------------------- writing

/** Grows as it is written; little-endian. */
class Writer {
  private bytes = new Uint8Array(1 << 16);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.bytes.length) {
      const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  raw(data: Uint8Array): void {
    const at = this.reserve(data.length);
    this.bytes.set(data, at);
  }

  // reserve() may grow the buffer, so it runs before this.view is read.
  u32(value: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, value, true);
  }

  u64(value: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(value), true);
  }

  string(text: string): void {
    const encoded = utf8Encoder.encode(text);
    this.u64(encoded.length);
    this.raw(encoded);
  }

  scalar(type: ScalarType, value: GgufScalar): void {
    if (type === GgufType.STRING) return this.string(value as string);
    const at = this.reserve(SCALAR_BYTES[type]);
    const view = this.view;
    const n = value as number;
    switch (type) {
      case GgufType.UINT8:
        return view.setUint8(at, n);
      case GgufType.INT8:
        return view.setInt8(at, n);
      case GgufType.UINT16:
        return view.setUint16(at, n, true);
      case GgufType.INT16:
        return view.setInt16(at, n, true);
      case GgufType.UINT32:
        return view.setUint32(at, n, true);
      case GgufType.INT32:
        return view.setInt32(at, n, true);
      case GgufType.FLOAT32:
        return view.setFloat32(at, n, true);
      case GgufType.FLOAT64:
        return view.setFloat64(at, n, true);
      case GgufType.BOOL:
        return view.setUint8(at, value ? 1 : 0);
      case GgufType.UINT64:
        return view.setBigUint64(at, BigInt(value as number | bigint), true);
      default:
        return view.setBigInt64(at, BigInt(value as number | bigint), true);
    }
  }

  padTo(alignment: number): void {
    this.reserve((alignment - (this.length % alignment)) % alignment); // new bytes are already zero
  }

  result(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

export interface GgufTensorToWrite {
  name: string;
  type: QuantType;
  shape: readonly number[];
  bytes: Uint8Array;
}

/**
 * A GGUF version 3 file of these metadata entries and tensors, in the order given, each tensor's data aligned
 * to `alignment` (written as general.alignment when not the default). The same input gives the same bytes.
 */
export function serializeGguf(
  metadata: ReadonlyMap<string, GgufEntry>,
  tensors: readonly GgufTensorToWrite[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): Uint8Array {
  const entries = new Map(metadata);
  if (alignment !== GGUF_DEFAULT_ALIGNMENT)
    entries.set('general.alignment', { type: GgufType.UINT32, value: alignment });
  const out = new Writer();
  out.raw(Uint8Array.from(MAGIC));
  out.u32(GGUF_VERSION);
  out.u64(tensors.length);
  out.u64(entries.size);
  for (const [key, entry] of entries) {
    out.string(key);
    out.u32(entry.type);
    if (entry.type === GgufType.ARRAY) {
      out.u32(entry.itemType);
      out.u64(entry.value.length);
      for (const item of entry.value) out.scalar(entry.itemType, item);
    } else {
      out.scalar(entry.type, entry.value);
    }
  }
  let offset = 0;
  for (const tensor of tensors) {
    if (tensorBytes(tensor.type, tensor.shape) !== tensor.bytes.length) {
      throw new Error(
        `tensor "${tensor.name}": ${tensor.bytes.length} bytes do not fit ${tensor.type} [${tensor.shape.join(', ')}]`,
      );
    }
    out.string(tensor.name);
    out.u32(tensor.shape.length);
    for (const size of [...tensor.shape].reverse()) out.u64(size);
    out.u32(GGML_TYPE_IDS[tensor.type]);
    out.u64(offset);
    offset += Math.ceil(tensor.bytes.length / alignment) * alignment;
  }
  out.padTo(alignment);
  for (const tensor of tensors) {
    out.raw(tensor.bytes);
    out.padTo(alignment);
  }
  return out.result();
}
