// api/safetensors.ts: reads router logits from a safetensors file (one named tensor) and writes
// them. Layout: 8-byte little-endian header length N, N bytes of JSON header, then the data
// buffer; each tensor's data_offsets are relative to the buffer. Every entry of the header is
// checked against the file before any byte is copied, so a header that lies is an error.
import { ValidationError } from "../ffi/errors.ts";
import type { Dtype, Logits } from "./dtype.ts";
import {
  checkDtypeOption,
  copyElements,
  type LogitsTensor,
  logitsShape,
  type ReadLogitsOptions,
  readBytes,
  toLogitsTensor,
  writeLittleEndian,
} from "./tensor_file.ts";

/** The format's own limit on the JSON header (100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

/** Element sizes of the safetensors dtypes (to check every entry's byte range, logits or not). */
const itemBytes: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
  C64: 8,
};

const logitsDtypes: Record<string, Dtype> = { F32: "f32", F16: "f16", BF16: "bf16" };
const storedName: Record<Dtype, string> = { f32: "F32", f16: "F16", bf16: "BF16" };

/** One tensor as the safetensors header describes it (after the checks of {@link parseSafetensorsHeader}). */
export interface SafetensorsEntry {
  /** The tensor's key in the header. */
  name: string;
  /** `F32`, `BF16`, `I64`, ... as written in the file. */
  dtype: string;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Byte range `[begin, end)` relative to the start of the data buffer. */
  dataOffsets: [number, number];
}

/** A parsed safetensors header: its tensors, its `__metadata__`, and where the data buffer starts. */
export interface SafetensorsHeader {
  /** Every tensor, in header order. */
  entries: SafetensorsEntry[];
  /** The optional `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
  /** Offset of the data buffer in the file (8 + header length). */
  dataStart: number;
}

const describeEntry = (e: SafetensorsEntry) => `${e.name} ${e.dtype}[${e.shape.join(", ")}]`;

/**
 * Parses and checks the header of a safetensors file held in memory: the length prefix, the JSON,
 * and every tensor's dtype, shape and byte range against the size of the data buffer.
 *
 * @throws ValidationError when the file is truncated, the header is not valid JSON or not an
 *   object, an entry lacks dtype/shape/data_offsets, or an entry's byte range lies outside the
 *   file or disagrees with its shape and dtype.
 */
export function parseSafetensorsHeader(bytes: Uint8Array, source = "safetensors data"): SafetensorsHeader {
  if (!(bytes instanceof Uint8Array))
    throw new ValidationError(`${source}: parseSafetensors needs the file as a Uint8Array`);
  if (bytes.length < 8)
    throw new ValidationError(
      `${source}: only ${bytes.length} bytes, too short for a safetensors file (8-byte header length first): the file is truncated`,
    );
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES))
    throw new ValidationError(
      `${source}: the header length field says ${headerLength} bytes (the format allows at most ${MAX_HEADER_BYTES}): ` +
        "this is not a safetensors file, or it is damaged",
    );
  const length = Number(headerLength);
  if (8 + length > bytes.length)
    throw new ValidationError(
      `${source}: the header length field says ${length} bytes but only ${bytes.length - 8} follow it: ` +
        "the file is truncated, or it is not a safetensors file",
    );
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + length)));
  } catch (e) {
    throw new ValidationError(
      `${source}: the safetensors header is not valid JSON (${(e as Error).message}); the file is damaged or not safetensors`,
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json))
    throw new ValidationError(`${source}: the safetensors header is not a JSON object; the file is damaged`);
  const dataStart = 8 + length;
  const bufferBytes = bytes.length - dataStart;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) metadata = raw as Record<string, string>;
      continue;
    }
    const bad = (what: string): never => {
      throw new ValidationError(`${source}: tensor ${JSON.stringify(name)} in the header ${what}; the file is damaged`);
    };
    if (raw === null || typeof raw !== "object") return bad("is not an object");
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== "string") bad("has no dtype");
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      bad("has no valid shape (a list of non-negative integers)");
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    )
      bad("has no valid data_offsets ([begin, end] with 0 <= begin <= end)");
    const entry: SafetensorsEntry = {
      name,
      dtype: dtype as string,
      shape: shape as number[],
      dataOffsets: offsets as [number, number],
    };
    const [begin, end] = entry.dataOffsets;
    if (end > bufferBytes)
      throw new ValidationError(
        `${source}: tensor ${describeEntry(entry)} claims bytes ${begin}..${end} of the data, but the file holds only ` +
          `${bufferBytes}: the file is truncated or its header is wrong; write it again`,
      );
    const size = itemBytes[entry.dtype];
    if (size !== undefined) {
      const count = entry.shape.reduce((a, b) => a * b, 1);
      if (!Number.isSafeInteger(count * size) || count * size !== end - begin)
        throw new ValidationError(
          `${source}: tensor ${describeEntry(entry)} needs ${count * size} bytes, but its data_offsets span ` +
            `${end - begin}: the header does not match the data; write the file again`,
        );
    }
    entries.push(entry);
  }
  return { entries, metadata, dataStart };
}

/** Chooses the tensor to read: by name, else the only 2-D tensor, else the only tensor. */
function pickTensor(header: SafetensorsHeader, wanted: string | undefined, source: string): SafetensorsEntry {
  const list = header.entries.map(describeEntry).join(", ") || "none";
  if (wanted !== undefined) {
    const found = header.entries.find((e) => e.name === wanted);
    if (!found)
      throw new ValidationError(
        `${source}: no tensor named ${JSON.stringify(wanted)}; the file holds: ${list}; pick one of these names (--tensor NAME)`,
      );
    return found;
  }
  if (header.entries.length === 0) throw new ValidationError(`${source}: the safetensors file holds no tensors`);
  const twoD = header.entries.filter((e) => e.shape.length === 2);
  if (twoD.length === 1) return twoD[0] as SafetensorsEntry;
  if (twoD.length === 0 && header.entries.length === 1) return header.entries[0] as SafetensorsEntry;
  throw new ValidationError(
    `${source}: ${twoD.length ? `${twoD.length} 2-D tensors` : "no 2-D tensor"}, so it is not clear which holds the logits; ` +
      `the file holds: ${list}; name one with the tensor option (--tensor NAME)`,
  );
}

/**
 * Parses a safetensors file held in memory and returns one tensor as router logits.
 *
 * @param bytes The whole file.
 * @param options `tensor`: which tensor (default: the only 2-D tensor); `dtype`: the dtype
 *   wanted (other float types are converted); `source`: a name for error messages.
 * @returns The logits, row-major `[tokens, experts]`, copied out of `bytes`, with `name` set.
 * @throws ValidationError for a damaged or truncated file, a header that disagrees with the data,
 *   a missing or ambiguous tensor (the message lists the tensors), a dtype other than F32, F16 or
 *   BF16, or a shape other than `[tokens, experts]` / `[experts]`.
 */
export function parseSafetensors(bytes: Uint8Array, options: ReadLogitsOptions = {}): LogitsTensor {
  const source = options.source ?? "safetensors data";
  const wanted = checkDtypeOption(options.dtype, source);
  const header = parseSafetensorsHeader(bytes, source);
  const entry = pickTensor(header, options.tensor, source);
  const fileDtype = logitsDtypes[entry.dtype];
  if (!fileDtype)
    throw new ValidationError(
      `${source}: tensor ${describeEntry(entry)} has dtype ${entry.dtype}; logits must be F32, F16 or BF16 ` +
        "(in PyTorch: save logits.float() or logits.to(torch.bfloat16))",
    );
  const { tokens, experts } = logitsShape(entry.shape, `${source}: tensor ${JSON.stringify(entry.name)}`);
  const raw = copyElements(bytes, header.dataStart + entry.dataOffsets[0], tokens * experts, fileDtype, source);
  return toLogitsTensor(raw, fileDtype, wanted, {
    tokens,
    experts,
    shape: entry.shape,
    storedAs: entry.dtype,
    name: entry.name,
  });
}

/**
 * Reads one tensor of router logits from a safetensors file (see {@link parseSafetensors}).
 *
 * @param path The file.
 * @param options See {@link ReadLogitsOptions}; `tensor` names the tensor.
 * @throws ValidationError when the file cannot be read or is not valid; the message names the
 *   file and says what to do.
 */
export function readSafetensors(path: string, options: ReadLogitsOptions = {}): LogitsTensor {
  return parseSafetensors(readBytes(path), { ...options, source: options.source ?? path });
}

/** A tensor to write with {@link encodeSafetensors}. */
export interface SafetensorsTensorInput {
  /** Float32Array for f32, Uint16Array of bits for f16/bf16. */
  data: Logits;
  /** The dtype `data` holds (written as F32, F16 or BF16). */
  dtype: Dtype;
  /** Dimensions; their product must equal `data.length`. */
  shape: readonly number[];
}

/**
 * Encodes tensors as a safetensors file (header padded with spaces to a multiple of 8 bytes, data
 * in the order given). fp32, fp16 and bf16 are written as F32, F16 and BF16.
 *
 * @param tensors Name -> tensor.
 * @param metadata Optional string -> string `__metadata__`.
 * @throws ValidationError when a tensor's data does not fit its shape or dtype.
 */
export function encodeSafetensors(
  tensors: Record<string, SafetensorsTensorInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const parts: [number, Logits][] = [];
  for (const [name, t] of Object.entries(tensors)) {
    const wantArray = t.dtype === "f32" ? Float32Array : Uint16Array;
    if (!(t.data instanceof wantArray))
      throw new ValidationError(`encodeSafetensors: ${name}: ${t.dtype} data must be a ${wantArray.name}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== t.data.length)
      throw new ValidationError(
        `encodeSafetensors: ${name}: shape [${t.shape.join(", ")}] does not hold ${t.data.length} elements`,
      );
    header[name] = {
      dtype: storedName[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + t.data.byteLength],
    };
    parts.push([offset, t.data]);
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerBytes = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  for (const [at, data] of parts) writeLittleEndian(out, 8 + headerBytes.length + at, data);
  return out;
}
