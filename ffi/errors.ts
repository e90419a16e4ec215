// ffi/errors.ts: every native status code becomes a named Error class carrying the native
// message, so callers can `catch (e) { if (e instanceof InvalidKError) ... }`.
import { Status, type StatusName } from "./status.ts";

/** Base class of every error this module throws for a failed native call or a bad argument. */
export class TopkSigmoidError extends Error {
  /** The native status code (TS_ERR_*), or -1 for errors raised in TypeScript before any native call. */
  readonly status: number;
  /** The native status name, e.g. "TS_ERR_INVALID_K". */
  readonly statusName: string;
  constructor(message: string, status = -1, statusName = "TS_ERR_TYPESCRIPT") {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.statusName = statusName;
  }
}

/** A required pointer was NULL (TS_ERR_NULL_POINTER). */
export class NullPointerError extends TopkSigmoidError {}
/** dtype is not f32, f16 or bf16 (TS_ERR_INVALID_DTYPE). */
export class InvalidDtypeError extends TopkSigmoidError {}
/** experts outside 1..32768 (TS_ERR_INVALID_EXPERTS). */
export class InvalidExpertsError extends TopkSigmoidError {}
/** k outside 1..min(experts, 32) (TS_ERR_INVALID_K). */
export class InvalidKError extends TopkSigmoidError {}
/** row stride smaller than experts (TS_ERR_INVALID_STRIDE). */
export class InvalidStrideError extends TopkSigmoidError {}
/** tokens x stride, or the outputs' size, overflows 64 bits (TS_ERR_OVERFLOW). */
export class OverflowError extends TopkSigmoidError {}
/** a pointer not aligned to its element type (TS_ERR_MISALIGNED). */
export class MisalignedError extends TopkSigmoidError {}
/** bias length differs from experts, or a length without a bias (TS_ERR_INVALID_BIAS). */
export class InvalidBiasError extends TopkSigmoidError {}
/** another bad argument: tokens < 0, non-finite scale, aliasing outputs (TS_ERR_INVALID_ARGUMENT). */
export class InvalidArgumentError extends TopkSigmoidError {}
/** the library was built without the toolchain this needs (TS_ERR_NOT_BUILT). */
export class NotBuiltError extends TopkSigmoidError {}
/** a GPU build, but no usable GPU (TS_ERR_NO_DEVICE). */
export class NoDeviceError extends TopkSigmoidError {}
/** the device cannot run this kernel, e.g. gfx9 on NVIDIA (TS_ERR_WRONG_ARCH). */
export class WrongArchError extends TopkSigmoidError {}
/** valid arguments this kernel does not cover, e.g. E > 1024 on warp (TS_ERR_UNSUPPORTED). */
export class UnsupportedError extends TopkSigmoidError {}
/** a device ordinal that does not exist (TS_ERR_INVALID_DEVICE). */
export class InvalidDeviceError extends TopkSigmoidError {}
/** memory the device cannot address, e.g. pageable host memory (TS_ERR_INVALID_POINTER). */
export class InvalidPointerError extends TopkSigmoidError {}
/** the GPU runtime reported an error: launch, copy, sync (TS_ERR_DEVICE_RUNTIME). */
export class DeviceRuntimeError extends TopkSigmoidError {}
/** an allocation failed (TS_ERR_OUT_OF_MEMORY). */
export class OutOfMemoryError extends TopkSigmoidError {}
/** The native library could not be found or loaded; the message says what to build. */
export class LibraryNotFoundError extends TopkSigmoidError {}
/** A buffer or configuration failed validation in TypeScript (zod), before any native call. */
export class ValidationError extends TopkSigmoidError {}
/** A device buffer was used after it was disposed. */
export class DisposedError extends TopkSigmoidError {}

const classes: Record<StatusName, typeof TopkSigmoidError | undefined> = {
  TS_OK: undefined,
  TS_ERR_NULL_POINTER: NullPointerError,
  TS_ERR_INVALID_DTYPE: InvalidDtypeError,
  TS_ERR_INVALID_EXPERTS: InvalidExpertsError,
  TS_ERR_INVALID_K: InvalidKError,
  TS_ERR_INVALID_STRIDE: InvalidStrideError,
  TS_ERR_OVERFLOW: OverflowError,
  TS_ERR_MISALIGNED: MisalignedError,
  TS_ERR_INVALID_BIAS: InvalidBiasError,
  TS_ERR_INVALID_ARGUMENT: InvalidArgumentError,
  TS_ERR_NOT_BUILT: NotBuiltError,
  TS_ERR_NO_DEVICE: NoDeviceError,
  TS_ERR_WRONG_ARCH: WrongArchError,
  TS_ERR_UNSUPPORTED: UnsupportedError,
  TS_ERR_INVALID_DEVICE: InvalidDeviceError,
  TS_ERR_INVALID_POINTER: InvalidPointerError,
  TS_ERR_DEVICE_RUNTIME: DeviceRuntimeError,
  TS_ERR_OUT_OF_MEMORY: OutOfMemoryError,
};

const byCode = new Map<number, [StatusName, typeof TopkSigmoidError]>();
for (const [name, code] of Object.entries(Status) as [StatusName, number][]) {
  const cls = classes[name];
  if (cls) byCode.set(code, [name, cls]);
}

/** The Error for a native status code and its last-error message. */
export function errorForStatus(status: number, message: string): TopkSigmoidError {
  const entry = byCode.get(status);
  if (!entry) return new TopkSigmoidError(`${message} (unknown status ${status})`, status, "TS_ERR_UNKNOWN");
  const [name, cls] = entry;
  return new cls(message || name, status, name);
}
