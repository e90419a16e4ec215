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

export class NullPointerError extends TopkSigmoidError {}
export class InvalidDtypeError extends TopkSigmoidError {}
export class InvalidExpertsError extends TopkSigmoidError {}
export class InvalidKError extends TopkSigmoidError {}
export class InvalidStrideError extends TopkSigmoidError {}
export class OverflowError extends TopkSigmoidError {}
export class MisalignedError extends TopkSigmoidError {}
export class InvalidBiasError extends TopkSigmoidError {}
export class InvalidArgumentError extends TopkSigmoidError {}
export class NotBuiltError extends TopkSigmoidError {}
export class NoDeviceError extends TopkSigmoidError {}
export class WrongArchError extends TopkSigmoidError {}
export class UnsupportedError extends TopkSigmoidError {}
export class InvalidDeviceError extends TopkSigmoidError {}
export class InvalidPointerError extends TopkSigmoidError {}
export class DeviceRuntimeError extends TopkSigmoidError {}
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
