// api/npy.ts: reads router logits from NumPy .npy files (format versions 1.0, 2.0 and 3.0) and
// writes them. Little-endian float32 ('<f4'), float16 ('<f2'), and bf16 bit patterns ('<u2',
// '<i2', '<V2', '|V2', read with dtype "bf16"), C order, shape [tokens, experts] or [experts]. The header
// is parsed as data (a small Python-literal parser, never eval) and checked against the file size.
import { ValidationError } from "../ffi/errors.ts";
import type { Dtype, Logits } from "./dtype.ts";
import {
  checkDtypeOption,
  copyElements,
  elementBytes,
  type LogitsTensor,
  logitsShape,
  NPY_MAGIC,
  type ReadLogitsOptions,
  readBytes,
  toLogitsTensor,
  writeLittleEndian,
} from "./tensor_file.ts";

const MAX_HEADER_BYTES = 1 << 20;

type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

/** Parses the Python literal of an .npy header (dict, tuple, list, str, int, bool, None). */
function parsePyLiteral(text: string, source: string): PyValue {
  let i = 0;
  const fail = (what: string): never => {
    throw new ValidationError(
      `${source}: malformed .npy header (${what} at character ${i}): ${JSON.stringify(text.slice(0, 120))}; save the array again with np.save`,
    );
  };
  const skip = () => {
    while (i < text.length && " \t\r\n".includes(text[i] as string)) i++;
  };
  const value = (depth: number): PyValue => {
    if (depth > 16) fail("nesting too deep");
    skip();
    const c = text[i];
    if (c === undefined) return fail("unexpected end");
    if (c === "'" || c === '"') {
      i++;
      let out = "";
      while (i < text.length && text[i] !== c) {
        if (text[i] === "\\") i++;
        out += text[i] ?? "";
        i++;
      }
      if (text[i] !== c) fail("unterminated string");
      i++;
      return out;
    }
    if (c === "{" || c === "(" || c === "[") {
      const close = c === "{" ? "}" : c === "(" ? ")" : "]";
      i++;
      const items: PyValue[] = [];
      const dict: { [key: string]: PyValue } = {};
      for (;;) {
        skip();
        if (text[i] === close) {
          i++;
          break;
        }
        if (c === "{") {
          const key = value(depth + 1);
          if (typeof key !== "string") fail("a dict key that is not a string");
          skip();
          if (text[i] !== ":") fail("expected ':'");
          i++;
          dict[key as string] = value(depth + 1);
        } else {
          items.push(value(depth + 1));
        }
        skip();
        if (text[i] === ",") i++;
        else if (text[i] !== close) fail(`expected ',' or '${close}'`);
      }
      return c === "{" ? dict : items;
    }
    const word = /^[A-Za-z_]+|^[-+]?\d+L?/.exec(text.slice(i))?.[0];
    if (!word) return fail(`unexpected character ${JSON.stringify(c)}`);
    i += word.length;
    if (word === "True") return true;
    if (word === "False") return false;
    if (word === "None") return null;
    if (/^[-+]?\d+L?$/.test(word)) return Number(word.replace("L", ""));
    return fail(`unknown word ${word}`);
  };
  const result = value(0);
  skip();
  if (i !== text.length) fail("trailing characters");
  return result;
}

/** What each accepted descr holds. `raw` descrs need the caller to name the 16-bit format. */
const descrs: Record<string, { dtype: Dtype; raw: boolean }> = {
  "<f4": { dtype: "f32", raw: false },
  "<f2": { dtype: "f16", raw: false },
  "<u2": { dtype: "bf16", raw: true },
  "<i2": { dtype: "bf16", raw: true },
  "<V2": { dtype: "bf16", raw: true },
  "|V2": { dtype: "bf16", raw: true },
};

function descrError(descr: string, source: string): ValidationError {
  const kind = descr.slice(1);
  const supported =
    "logits must be float32 ('<f4'), float16 ('<f2'), or bf16 bit patterns ('<u2', '<i2' or '<V2', read with dtype bf16)";
  if (descr.startsWith(">") && ["f4", "f2", "u2", "i2", "V2"].includes(kind))
    return new ValidationError(
      `${source}: the array is big-endian ('${descr}'); save it little-endian: np.save(path, arr.astype('<${kind}'))`,
    );
  if (kind === "f8")
    return new ValidationError(
      `${source}: float64 ('${descr}') is not supported: ${supported}; save arr.astype(np.float32)`,
    );
  return new ValidationError(`${source}: unsupported element type '${descr}': ${supported}`);
}

/**
 * Parses an .npy file held in memory into router logits.
 *
 * @param bytes The whole file.
 * @param options `dtype`: the dtype wanted (converts other float types; required as `"bf16"` or
 *   `"f16"` for raw 16-bit elements); `source`: a name for error messages.
 * @returns The logits, row-major `[tokens, experts]`, copied out of `bytes`.
 * @throws ValidationError when the file is not an .npy file, is truncated or has bytes left over,
 *   its header is malformed or disagrees with the file size, the element type is unsupported
 *   (float64, big-endian, integers, structured), the array is in Fortran order, or the shape is
 *   not `[tokens, experts]` / `[experts]`. The message says what to do.
 */
export function parseNpy(bytes: Uint8Array, options: ReadLogitsOptions = {}): LogitsTensor {
  const source = options.source ?? "npy data";
  const wanted = checkDtypeOption(options.dtype, source);
  if (!(bytes instanceof Uint8Array)) throw new ValidationError(`${source}: parseNpy needs the file as a Uint8Array`);
  if (bytes.length < 10 || !NPY_MAGIC.every((b, i) => bytes[i] === b))
    throw new ValidationError(
      bytes.length < 10 && NPY_MAGIC.every((b, i) => i >= bytes.length || bytes[i] === b)
        ? `${source}: only ${bytes.length} bytes, too short for an .npy header: the file is truncated; save it again`
        : `${source}: not an .npy file (it does not start with \\x93NUMPY); save logits with np.save(path, arr)`,
    );
  const major = bytes[6] as number;
  const minor = bytes[7] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerStart: number;
  let headerLength: number;
  if (major === 1) {
    headerStart = 10;
    headerLength = view.getUint16(8, true);
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12)
      throw new ValidationError(`${source}: only ${bytes.length} bytes, the file is truncated; save it again`);
    headerStart = 12;
    headerLength = view.getUint32(8, true);
  } else {
    throw new ValidationError(
      `${source}: .npy format version ${major}.${minor} is not supported (1.0, 2.0 and 3.0 are); save it with np.save`,
    );
  }
  if (headerLength > MAX_HEADER_BYTES)
    throw new ValidationError(
      `${source}: the .npy header claims ${headerLength} bytes (more than ${MAX_HEADER_BYTES}): the file is damaged`,
    );
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length)
    throw new ValidationError(
      `${source}: the .npy header claims ${headerLength} bytes but the file ends after ${bytes.length - headerStart}: ` +
        "the file is truncated; save it again",
    );
  const headerBytes = bytes.subarray(headerStart, dataStart);
  const headerText =
    major === 3
      ? new TextDecoder("utf-8", { fatal: false }).decode(headerBytes)
      : Array.from(headerBytes, (b) => String.fromCharCode(b)).join("");
  const header = parsePyLiteral(headerText, source);
  if (header === null || typeof header !== "object" || Array.isArray(header))
    throw new ValidationError(`${source}: malformed .npy header (not a dict); save the array again with np.save`);
  const { descr, fortran_order: fortranOrder, shape } = header;
  if (typeof descr !== "string")
    throw new ValidationError(
      `${source}: structured or missing dtype in the .npy header; save a plain float array (e.g. arr.astype(np.float32))`,
    );
  if (typeof fortranOrder !== "boolean")
    throw new ValidationError(`${source}: malformed .npy header (fortran_order missing); save it again with np.save`);
  if (!Array.isArray(shape) || !shape.every((d) => typeof d === "number"))
    throw new ValidationError(`${source}: malformed .npy header (shape is not a tuple of integers); save it again`);
  const dims = shape as number[];
  const stored = descrs[descr];
  if (!stored) throw descrError(descr, source);
  if (stored.raw && wanted !== "bf16" && wanted !== "f16")
    throw new ValidationError(
      `${source}: the array holds raw 16-bit values ('${descr}'); NumPy has no bfloat16 type, so bf16 logits are ` +
        "saved as their bits: if these are bf16 bits, read them with dtype bf16 (--dtype bf16); fp16 bits, dtype f16",
    );
  const fileDtype: Dtype = stored.raw ? (wanted as Dtype) : stored.dtype;
  const { tokens, experts } = logitsShape(dims, source);
  if (fortranOrder && dims.length === 2 && tokens > 1 && experts > 1)
    throw new ValidationError(
      `${source}: the array is stored in Fortran (column-major) order; save a C-order copy: ` +
        "np.save(path, np.ascontiguousarray(arr))",
    );
  const count = tokens * experts;
  const dataBytes = count * elementBytes(fileDtype);
  const available = bytes.length - dataStart;
  const shapeText = `(${dims.join(", ")}${dims.length === 1 ? "," : ""})`;
  if (available < dataBytes)
    throw new ValidationError(
      `${source}: the header says shape ${shapeText} of '${descr}' (${dataBytes} bytes of data), but only ${available} ` +
        "bytes follow it: the file is truncated or its header is wrong; save it again",
    );
  if (available > dataBytes)
    throw new ValidationError(
      `${source}: ${available - dataBytes} bytes follow the ${dataBytes} bytes of data that the header's shape ${shapeText} ` +
        `of '${descr}' describes: the header does not match the file; save it again`,
    );
  const raw = copyElements(bytes, dataStart, count, fileDtype, source);
  return toLogitsTensor(raw, fileDtype, wanted, { tokens, experts, shape: dims, storedAs: descr });
}

/**
 * Reads an .npy file of router logits (see {@link parseNpy} for the accepted formats).
 *
 * @param path The file.
 * @param options See {@link ReadLogitsOptions}.
 * @throws ValidationError when the file cannot be read or is not valid logits; the message names
 *   the file and says what to do.
 */
export function readNpy(path: string, options: ReadLogitsOptions = {}): LogitsTensor {
  return parseNpy(readBytes(path), { ...options, source: options.source ?? path });
}

const npyDescr: Record<Dtype, string> = { f32: "<f4", f16: "<f2", bf16: "<u2" };

/**
 * Encodes logits as an .npy file (format 1.0, C order). fp32 is written as `'<f4'`, fp16 as
 * `'<f2'` and bf16 as its bit patterns `'<u2'` (NumPy has no bfloat16; read them back with dtype
 * bf16, or in Python with `ml_dtypes`: `np.load(path).view(ml_dtypes.bfloat16)`).
 *
 * @param data Float32Array for f32, Uint16Array of bits for f16/bf16.
 * @param shape `[tokens, experts]` or `[experts]`; its product must equal `data.length`.
 * @param dtype The dtype `data` holds.
 * @throws ValidationError when `data` does not fit `shape` or `dtype`.
 */
export function encodeNpy(data: Logits, shape: readonly number[], dtype: Dtype): Uint8Array {
  const wantArray = dtype === "f32" ? Float32Array : Uint16Array;
  if (!(data instanceof wantArray))
    throw new ValidationError(`encodeNpy: ${dtype} data must be a ${wantArray.name}, got ${data?.constructor?.name}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== data.length)
    throw new ValidationError(
      `encodeNpy: shape [${shape.join(", ")}] does not hold ${data.length} elements; pass the data's real shape`,
    );
  const shapeText = `(${shape.join(", ")}${shape.length === 1 ? "," : ""})`;
  let header = `{'descr': '${npyDescr[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad with spaces so that magic (6) + version (2) + length (2) + header + "\n" is a multiple of 64.
  header += " ".repeat((64 - ((10 + header.length + 1) % 64)) % 64);
  header += "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  writeLittleEndian(out, 10 + header.length, data);
  return out;
}
