// api/tensor_file.ts: what the logits file readers (api/npy.ts, api/safetensors.ts) share: the
// result type, bounds-checked element copies, dtype conversion, shape rules and file reading.
// Every problem is a ValidationError that says what is wrong and what to do.
import { readFileSync } from "node:fs";
import { ValidationError } from "../ffi/errors.ts";
import {
  bf16BitsToFloat,
  type Dtype,
  dtypes,
  f16BitsToFloat,
  floatToBf16Bits,
  floatToF16Bits,
  type Logits,
} from "./dtype.ts";

/**
 * Logits read from a file, in the form {@link Router.route} takes: `data` is a Float32Array for
 * `f32`, or the raw 16-bit patterns in a Uint16Array for `f16` / `bf16`; row-major `[tokens, experts]`.
 */
export interface LogitsTensor {
  /** The elements, `tokens * experts` of them, row t at `[t * experts, (t + 1) * experts)`. */
  data: Logits;
  /** The element type of `data` (pass it as the router's `dtype`). */
  dtype: Dtype;
  /** Rows (tokens). A 1-D array in the file is one token. */
  tokens: number;
  /** Columns (experts, E). */
  experts: number;
  /** The shape as the file stores it. */
  shape: readonly number[];
  /** The element type as the file names it: `'<f4'`, `'<u2'` (npy) or `F32`, `BF16` (safetensors). */
  storedAs: string;
  /** The file's own dtype when `data` was converted to the requested {@link ReadLogitsOptions.dtype}. */
  convertedFrom?: Dtype;
  /** The tensor's name (safetensors only). */
  name?: string;
}

/** Options shared by the logits file readers. */
export interface ReadLogitsOptions {
  /**
   * The dtype wanted in the result. A file of another float type is converted exactly (fp16 and bf16
   * widen to fp32 exactly; narrowing rounds to nearest even, overflow to infinity) and
   * `convertedFrom` says so. Required for raw 16-bit npy elements (`'<u2'`, `'<i2'`, `'<V2'`, `'|V2'`):
   * NumPy has no bfloat16 type, so bf16 logits are saved as their bit patterns and read with
   * `dtype: "bf16"` (or `"f16"` for fp16 bits).
   */
  dtype?: Dtype;
  /** safetensors: the tensor to read. Default: the only 2-D tensor in the file (else an error lists them). */
  tensor?: string;
  /** A name for the data in error messages (the read* functions pass the path). */
  source?: string;
}

const littleEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bytes per element of each dtype. */
export const elementBytes = (dtype: Dtype): number => (dtype === "f32" ? 4 : 2);

/**
 * Copies `count` little-endian elements of `dtype` from `bytes[offset...]` into a fresh, aligned
 * typed array. The caller has checked the range; this checks it again, so it never reads past it.
 */
export function copyElements(bytes: Uint8Array, offset: number, count: number, dtype: Dtype, source: string): Logits {
  const size = elementBytes(dtype);
  const end = offset + count * size;
  if (!Number.isSafeInteger(end) || offset < 0 || end > bytes.length)
    throw new ValidationError(
      `${source}: the data needs bytes ${offset}..${end} but there are only ${bytes.length}: the file is truncated; write it again`,
    );
  const out = dtype === "f32" ? new Float32Array(count) : new Uint16Array(count);
  if (littleEndianHost) {
    new Uint8Array(out.buffer).set(bytes.subarray(offset, end));
  } else {
    const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * size);
    if (out instanceof Float32Array) {
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint32(i * 4, true);
    } else for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, true);
  }
  return out;
}

/** Writes typed-array elements little-endian at `out[offset...]`, bit for bit (NaN payloads included). */
export function writeLittleEndian(out: Uint8Array, offset: number, data: Logits): void {
  if (littleEndianHost) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + offset, data.byteLength);
  if (data instanceof Float32Array) {
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < bits.length; i++) view.setUint32(i * 4, bits[i] as number, true);
  } else for (let i = 0; i < data.length; i++) view.setUint16(i * 2, data[i] as number, true);
}

/** Converts logits between dtypes (exact where the target can hold the value; else round to nearest even). */
export function convertLogits(data: Logits, from: Dtype, to: Dtype): Logits {
  if (from === to) return data;
  const widen = from === "f32" ? undefined : from === "bf16" ? bf16BitsToFloat : f16BitsToFloat;
  if (to === "f32") {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = (widen as (b: number) => number)(data[i] as number);
    return out;
  }
  const narrow = to === "bf16" ? floatToBf16Bits : floatToF16Bits;
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    out[i] = narrow(widen ? widen(v) : v);
  }
  return out;
}

/**
 * The tensor a reader returns: `raw` as stored (`fileDtype`), converted to `wanted` when given.
 * `convertedFrom` is set only when a conversion happened.
 */
export function toLogitsTensor(
  raw: Logits,
  fileDtype: Dtype,
  wanted: Dtype | undefined,
  meta: { tokens: number; experts: number; shape: readonly number[]; storedAs: string; name?: string },
): LogitsTensor {
  const dtype = wanted ?? fileDtype;
  const result: LogitsTensor = { data: convertLogits(raw, fileDtype, dtype), dtype, ...meta };
  if (dtype !== fileDtype) result.convertedFrom = fileDtype;
  return result;
}

/** Checks a requested dtype option (it may come from untyped callers). */
export function checkDtypeOption(dtype: unknown, source: string): Dtype | undefined {
  if (dtype === undefined) return undefined;
  if (typeof dtype !== "string" || !(dtypes as readonly string[]).includes(dtype))
    throw new ValidationError(`${source}: dtype ${JSON.stringify(dtype)} is not one of f32, f16, bf16`);
  return dtype as Dtype;
}

/**
 * Turns a stored shape into `[tokens, experts]`: 2-D `[T, E]` as is, 1-D `[E]` as one token.
 * Anything else is a ValidationError that says how to reshape.
 */
export function logitsShape(shape: readonly number[], source: string): { tokens: number; experts: number } {
  for (const d of shape)
    if (!Number.isSafeInteger(d) || d < 0)
      throw new ValidationError(`${source}: shape [${shape.join(", ")}] has an invalid dimension ${d}`);
  let tokens: number;
  let experts: number;
  if (shape.length === 2) [tokens, experts] = shape as [number, number];
  else if (shape.length === 1) [tokens, experts] = [1, shape[0] as number];
  else
    throw new ValidationError(
      `${source}: logits must be 2-D [tokens, experts] (or 1-D [experts] for one token), got shape [${shape.join(", ")}]; ` +
        "reshape before saving, e.g. logits.reshape(-1, logits.shape[-1])",
    );
  if (experts < 1)
    throw new ValidationError(`${source}: shape [${shape.join(", ")}] has no experts (the last dimension is 0)`);
  if (!Number.isSafeInteger(tokens * experts))
    throw new ValidationError(`${source}: shape [${shape.join(", ")}] is too large to address`);
  return { tokens, experts };
}

/** Reads a whole file for a reader; turns file-system errors into ValidationErrors that say what to do. */
export function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ValidationError(`cannot read ${path}: no such file; check the path`);
    if (code === "EISDIR")
      throw new ValidationError(`cannot read ${path}: it is a directory; pass a .npy or .safetensors file`);
    if (code === "EACCES") throw new ValidationError(`cannot read ${path}: permission denied`);
    throw new ValidationError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

/** The first bytes of every .npy file. */
export const NPY_MAGIC = Uint8Array.of(0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59); // \x93NUMPY

/** The file format of `bytes`, by magic: "npy", "safetensors" (a plausible header length and `{`), or undefined. */
export function sniffLogitsFormat(bytes: Uint8Array): "npy" | "safetensors" | undefined {
  if (bytes.length >= NPY_MAGIC.length && NPY_MAGIC.every((b, i) => bytes[i] === b)) return "npy";
  if (bytes.length >= 9) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const headerLength = view.getBigUint64(0, true);
    if (headerLength >= 2n && headerLength <= BigInt(bytes.length - 8) && bytes[8] === 0x7b) return "safetensors";
  }
  return undefined;
}
