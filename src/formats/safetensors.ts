/**
 * safetensors: the tensor file Hugging Face uses, and about the simplest one there is.
 *
 *   bytes [0, 8)        N, the length of the header, a little-endian unsigned 64-bit integer
 *   bytes [8, 8 + N)    the header: a JSON object, one entry per tensor, plus optional string metadata
 *                         { "model.norm.weight": { "dtype": "F32", "shape": [64], "data_offsets": [0, 256] },
 *                           "__metadata__": { "format": "pt" } }
 *   bytes [8 + N, end)  the data buffer; a tensor's bytes are data[begin, end), little-endian, row-major
 *
 * Nothing in the header is trusted: the parser checks every field before it touches the data, so a broken or
 * hostile file produces one FormatError that says what is wrong, never a crash or a huge allocation.
 *
 * Also here, because llama2.c files need them too: reading little-endian float32s out of a byte buffer, and
 * finding the first value that is not a finite number.
 */
import type { Tensor } from '../engine/model.ts';
import { bfloat16ToFloat32, float16ToFloat32 } from '../engine/quant.ts';
import { FormatError } from './errors.ts';

/** The element types this loader reads; F16 and BF16 are widened to float32 on load. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export interface SafetensorsTensor {
  /** The dtype stored in the file (the data below is always float32). */
  dtype: SafetensorsDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  /** In the order of their bytes in the data buffer. */
  tensors: Map<string, SafetensorsTensor>;
  /** The header's optional "__metadata__" (string → string); empty when absent. */
  metadata: Record<string, string>;
}

/** A header longer than this is refused before it is decoded (the Rust implementation uses the same limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** dtypes the format defines that this loader does not read, so the message can say "valid but unsupported". */
const OTHER_SAFETENSORS_DTYPES = new Set([
  'F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'C64',
  'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4',
]); // prettier-ignore

const METADATA_KEY = '__metadata__';

/** The float16/bfloat16 widening lives with the other element types (src/engine/quant.ts). */
export { bfloat16ToFloat32, float16ToFloat32 };

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * `count` little-endian float32s starting `byteOffset` bytes into `bytes`. A view on the same memory when the
 * address is 4-byte aligned (typed arrays require it), otherwise a copy; either way no bytes are reinterpreted
 * wrongly. The caller has already checked that the range lies inside `bytes`.
 */
export function readFloat32LE(bytes: Uint8Array, byteOffset: number, count: number): Float32Array {
  const address = bytes.byteOffset + byteOffset;
  if (HOST_IS_LITTLE_ENDIAN) {
    if (address % 4 === 0) return new Float32Array(bytes.buffer, address, count);
    // `new Uint8Array(view)` always copies (unlike Buffer#slice, which would return another view).
    return new Float32Array(new Uint8Array(bytes.subarray(byteOffset, byteOffset + 4 * count)).buffer);
  }
  const view = new DataView(bytes.buffer, address, 4 * count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/** Index of the first NaN or ±Infinity in `data`, or -1 when every value is finite. */
export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) return i;
  }
  return -1;
}

/** A flat row-major index as a coordinate, e.g. 70 in shape [8, 64] → "[1, 6]". */
export function formatIndex(flatIndex: number, shape: readonly number[]): string {
  const coordinates: number[] = [];
  let rest = flatIndex;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    coordinates.unshift(rest % shape[axis]);
    rest = Math.floor(rest / shape[axis]);
  }
  return `[${coordinates.join(', ')}]`;
}

function decodeTensor(
  bytes: Uint8Array,
  byteOffset: number,
  dtype: SafetensorsDtype,
  count: number,
): Float32Array {
  if (dtype === 'F32') return readFloat32LE(bytes, byteOffset, count);
  const view = new DataView(bytes.buffer, bytes.byteOffset + byteOffset, 2 * count);
  const out = new Float32Array(count);
  if (dtype === 'F16') {
    for (let i = 0; i < count; i++) out[i] = float16ToFloat32(view.getUint16(2 * i, true));
  } else {
    // Write the widened bits straight into the float32s' memory: the same shift as bfloat16ToFloat32.
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) outBits[i] = view.getUint16(2 * i, true) << 16;
  }
  return out;
}

/** A short, safe rendering of a JSON value for an error message. */
function preview(value: unknown): string {
  if (Array.isArray(value) && value.length > 8) return `an array of ${value.length} items`;
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = `a deeply nested ${typeof value}`;
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Checks one tensor entry of the header against the format's rules and the size of the data buffer. */
function parseEntry(
  name: string,
  value: unknown,
  dataBytes: number,
  fail: (problem: string) => never,
): HeaderEntry {
  if (!isPlainObject(value)) fail(`header entry "${name}" must be an object, got ${preview(value)}`);
  const { dtype, shape, data_offsets: offsets } = value;

  if (typeof dtype !== 'string') fail(`tensor "${name}": dtype must be a string, got ${preview(dtype)}`);
  if (!(dtype in BYTES_PER_ELEMENT)) {
    fail(
      OTHER_SAFETENSORS_DTYPES.has(dtype)
        ? `tensor "${name}" has dtype ${dtype}, which this loader does not read (it reads F32, F16 and BF16)`
        : `tensor "${name}" has unknown dtype ${preview(dtype)} (this loader reads F32, F16 and BF16)`,
    );
  }
  const elementBytes = BYTES_PER_ELEMENT[dtype as SafetensorsDtype];

  if (!Array.isArray(shape)) fail(`tensor "${name}": shape must be an array, got ${preview(shape)}`);
  let elements = 1;
  for (const size of shape) {
    if (!Number.isSafeInteger(size) || size < 0) {
      fail(
        `tensor "${name}": shape ${preview(shape)} must hold non-negative integers, found ${preview(size)}`,
      );
    }
    elements *= size; // may grow past 2^53 (even to Infinity) for a hostile shape; checked below, never used
  }
  if (shape.includes(0)) elements = 0;
  const neededBytes = elements * elementBytes;

  if (!Array.isArray(offsets) || offsets.length !== 2) {
    fail(`tensor "${name}": data_offsets must be [begin, end], got ${preview(offsets)}`);
  }
  const [begin, end] = offsets as unknown[];
  if (!Number.isSafeInteger(begin) || !Number.isSafeInteger(end) || (begin as number) < 0) {
    fail(`tensor "${name}": data_offsets ${preview(offsets)} must be non-negative integers`);
  }
  const [b, e] = [begin as number, end as number];
  if (e < b) fail(`tensor "${name}": data_offsets [${b}, ${e}] end before they begin`);
  if (e > dataBytes) {
    fail(
      `tensor "${name}": data_offsets [${b}, ${e}] reach past the end of the ${dataBytes}-byte data buffer`,
    );
  }
  if (neededBytes !== e - b) {
    fail(
      `tensor "${name}": shape ${preview(shape)} of ${dtype} needs ` +
        `${Number.isSafeInteger(neededBytes) ? `${neededBytes} bytes` : 'more than 2^53 bytes'}, ` +
        `but data_offsets [${b}, ${e}] hold ${e - b} bytes`,
    );
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin: b, end: e };
}

/**
 * Reads a safetensors file. Throws FormatError (naming `file`) for anything malformed or non-finite.
 * Aligned F32 tensors are views on `bytes` (no copy), so do not modify `bytes` after.
 */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  // A declared function (not an arrow) so TypeScript narrows types after `if (…) fail(…)`.
  function fail(problem: string): never {
    throw new FormatError(file, problem);
  }
  if (bytes.length < 8) {
    fail(`file is ${bytes.length} bytes, too short for the 8-byte safetensors header length`);
  }

  // The u64 as two u32 halves, so no BigInt is needed and nothing above 2^53 can slip through as a Number.
  const lengthView = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const low = lengthView.getUint32(0, true);
  const high = lengthView.getUint32(4, true);
  const headerBytes = high * 2 ** 32 + low;
  if (high !== 0 || headerBytes > MAX_HEADER_BYTES) {
    fail(`header length field says ${headerBytes} bytes, more than the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8 + headerBytes > bytes.length) {
    fail(
      `header length field says ${headerBytes} bytes, but the file has only ${bytes.length - 8} bytes after it ` +
        `(truncated, or not a safetensors file)`,
    );
  }

  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes));
  } catch {
    return fail(`header is not valid UTF-8 text`);
  }
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (error) {
    return fail(`header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(header)) fail(`header must be a JSON object, got ${preview(header)}`);
  const entries = header as Record<string, unknown>;

  const dataStart = 8 + headerBytes;
  const dataBytes = bytes.length - dataStart;

  let metadata: Record<string, string> = {};
  const tensorEntries: HeaderEntry[] = [];
  for (const name of Object.keys(entries)) {
    const value = entries[name];
    if (name === METADATA_KEY) {
      if (!isPlainObject(value)) fail(`${METADATA_KEY} must be an object of strings, got ${preview(value)}`);
      for (const [key, text] of Object.entries(value)) {
        if (typeof text !== 'string') fail(`${METADATA_KEY}.${key} must be a string, got ${preview(text)}`);
      }
      // fromEntries defines own properties, so a key like "__proto__" stays data rather than a prototype.
      metadata = Object.fromEntries(Object.entries(value as Record<string, string>));
      continue;
    }
    tensorEntries.push(parseEntry(name, value, dataBytes, fail));
  }

  // The spec: tensors tile the data buffer exactly, in offset order, with no overlap and no hole.
  tensorEntries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: HeaderEntry | undefined;
  for (const entry of tensorEntries) {
    if (entry.begin < covered && previous) {
      fail(
        `tensors "${previous.name}" [${previous.begin}, ${previous.end}) and "${entry.name}" ` +
          `[${entry.begin}, ${entry.end}) overlap in the data buffer`,
      );
    }
    if (entry.begin > covered) {
      fail(
        `bytes [${covered}, ${entry.begin}) of the data buffer belong to no tensor (a hole before "${entry.name}")`,
      );
    }
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataBytes) {
    fail(`the data buffer is ${dataBytes} bytes but the tensors cover only the first ${covered}`);
  }

  const tensors = new Map<string, SafetensorsTensor>();
  for (const { name, dtype, shape, begin, end } of tensorEntries) {
    const data = decodeTensor(bytes, dataStart + begin, dtype, (end - begin) / BYTES_PER_ELEMENT[dtype]);
    const bad = firstNonFinite(data);
    if (bad >= 0)
      fail(`tensor "${name}" holds ${data[bad]} at ${formatIndex(bad, shape)}; weights must be finite`);
    tensors.set(name, { dtype, shape, data });
  }
  return { tensors, metadata };
}

/**
 * Writes tensors as a float32 safetensors file. Tensors are written in sorted name order (bytewise-stable on
 * ASCII names, which model weights use), the header is padded with spaces to a multiple of 8 bytes as the Rust
 * implementation does, so the data starts 8-byte aligned. The same input always gives the same bytes.
 *
 * Values are copied bit for bit (−0 and subnormals survive). Non-finite values are refused, because the loader
 * refuses them: a file this function writes always loads.
 */
export function serializeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  // Null prototype: a tensor named "__proto__" becomes a key, not the object's prototype.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata !== undefined) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new Error(`safetensors metadata "${key}" must be a string`);
    }
    header[METADATA_KEY] = { ...metadata };
  }

  const names = Object.keys(tensors).sort();
  let dataBytes = 0;
  for (const name of names) {
    const { data, shape } = tensors[name];
    if (name === METADATA_KEY) throw new Error(`a tensor cannot be named ${METADATA_KEY}`);
    if (!shape.every((size) => Number.isSafeInteger(size) && size >= 0)) {
      throw new Error(`tensor "${name}": shape [${shape.join(', ')}] must hold non-negative integers`);
    }
    const elements = shape.reduce((product, size) => product * size, 1);
    if (elements !== data.length) {
      throw new Error(
        `tensor "${name}": shape [${shape.join(', ')}] has ${elements} elements but data has ${data.length}`,
      );
    }
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      throw new Error(
        `tensor "${name}" holds ${data[bad]} at ${formatIndex(bad, shape)}; only finite weights are saved`,
      );
    }
    header[name] = {
      dtype: 'F32',
      shape: [...shape],
      data_offsets: [dataBytes, dataBytes + 4 * data.length],
    };
    dataBytes += 4 * data.length;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerBytes + dataBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes, true); // the u64's high half stays 0: headers are far below 4 GiB
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerBytes);

  let offset = 8 + headerBytes;
  for (const name of names) {
    const { data } = tensors[name];
    if (HOST_IS_LITTLE_ENDIAN) {
      out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    } else {
      for (let i = 0; i < data.length; i++) view.setFloat32(offset + 4 * i, data[i], true);
    }
    offset += data.byteLength;
  }
  return out;
}
