// api/logits_file.ts: one entry point for logits files: picks the .npy or the safetensors reader
// by the file's first bytes (not its name), so a misnamed file still reads or fails clearly.
import { ValidationError } from "../ffi/errors.ts";
import { parseNpy } from "./npy.ts";
import { parseSafetensors } from "./safetensors.ts";
import { type LogitsTensor, type ReadLogitsOptions, readBytes, sniffLogitsFormat } from "./tensor_file.ts";

export type { LogitsTensor, ReadLogitsOptions } from "./tensor_file.ts";

/**
 * Parses router logits from a NumPy `.npy` or a safetensors file held in memory, recognised by
 * its magic bytes (`\x93NUMPY` for .npy; an 8-byte length then `{` for safetensors).
 *
 * @param bytes The whole file.
 * @param options See {@link ReadLogitsOptions} (`tensor` applies to safetensors only).
 * @throws ValidationError when the format is neither, or the reader rejects the file.
 */
export function parseLogitsFile(bytes: Uint8Array, options: ReadLogitsOptions = {}): LogitsTensor {
  const source = options.source ?? "logits data";
  const format = sniffLogitsFormat(bytes);
  if (format === "npy") {
    if (options.tensor !== undefined)
      throw new ValidationError(
        `${source}: an .npy file holds one array; the tensor option (--tensor) is for safetensors`,
      );
    return parseNpy(bytes, options);
  }
  if (format === "safetensors") return parseSafetensors(bytes, options);
  throw new ValidationError(
    `${source}: not a NumPy .npy or safetensors file (${bytes.length} bytes; neither magic matches); ` +
      "save logits with np.save(path, arr) or safetensors' save_file({name: tensor}, path)",
  );
}

/**
 * Reads router logits from a `.npy` or safetensors file (format recognised by content).
 *
 * @param path The file.
 * @param options See {@link ReadLogitsOptions}.
 * @throws ValidationError when the file cannot be read or is not valid logits.
 */
export function readLogitsFile(path: string, options: ReadLogitsOptions = {}): LogitsTensor {
  return parseLogitsFile(readBytes(path), { ...options, source: options.source ?? path });
}
