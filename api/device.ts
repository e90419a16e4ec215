// api/device.ts: devices, device memory, streams, events and graphs for scripts that keep a
// pipeline on the GPU. DeviceBuffer frees itself on `using`/dispose(); a FinalizationRegistry
// frees one that was forgotten (a safety net, not a schedule: dispose explicitly).
import type { Pointer } from "bun:ffi";
import { DisposedError, ValidationError } from "../ffi/errors.ts";
import { check, native } from "../ffi/library.ts";
import { type BackendName, backendName, Vendor } from "../ffi/status.ts";

/** A stream handle for the native calls: a Stream, or null for the device's default stream. */
export type StreamLike = Stream | null | undefined;
export const streamHandle = (s: StreamLike): Pointer | null => (s ? s.handle : null);

const outPointer = () => new BigUint64Array(1);
const pointerOf = (cell: BigUint64Array) => Number(cell[0]) as Pointer;
const NONE = 0 as Pointer;
// bun:ffi takes typed arrays; any ArrayBufferView is viewed as bytes.
const bytesOf = (data: ArrayBufferView) =>
  data instanceof Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

/** Number of GPUs the loaded library can use (0 on a host-only build or without a GPU). */
export function deviceCount(): number {
  const out = new Int32Array(1);
  check(native().symbols.topk_sigmoid_device_count(out));
  return out[0] as number;
}

/** Makes `ordinal` the current device of this thread; throws InvalidDeviceError if it does not exist. */
export function setDevice(ordinal: number): void {
  check(native().symbols.topk_sigmoid_set_device(ordinal));
}

/** The current device ordinal. */
export function currentDevice(): number {
  const out = new Int32Array(1);
  check(native().symbols.topk_sigmoid_get_device(out));
  return out[0] as number;
}

export interface DeviceInfo {
  ordinal: number;
  vendor: "nvidia" | "amd" | "none";
  name: string;
  /** "sm_90", "gfx942", ... */
  arch: string;
  major: number;
  minor: number;
  multiprocessors: number;
  warpSize: number;
  totalMemory: number;
  /** The kernel topk_sigmoid picks on this device for experts <= 1024. */
  dispatchBackend: BackendName;
  /** L2 cache size in bytes (benchmarks rotate inputs past it). */
  l2CacheBytes: number;
  /**
   * Kernels start before the previous kernel in their stream ends (programmatic dependent launch:
   * NVIDIA sm_90+, unless TOPK_SIGMOID_PDL=0 was set when the device was first used).
   */
  dependentLaunch: boolean;
  /** The GPU runtime's version (cudaRuntimeGetVersion / hipRuntimeGetVersion), e.g. 13000. */
  runtimeVersion: number;
}

// ts_device_info layout (hip/topk_sigmoid.h): i64, 10 x i32, char[256], char[64].
const INFO_I32 = 10;
const NAME_AT = 8 + 4 * INFO_I32;
const INFO_BYTES = NAME_AT + 256 + 64;
const cString = (bytes: Uint8Array) => {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
};

/** Properties of a device (default: the current one). */
export function deviceInfo(ordinal?: number): DeviceInfo {
  const lib = native();
  const index = ordinal ?? currentDevice();
  const buf = new Uint8Array(INFO_BYTES);
  check(lib.symbols.topk_sigmoid_device_info(index, buf));
  const view = new DataView(buf.buffer);
  const i32 = (field: number) => view.getInt32(8 + 4 * field, true);
  const vendor = i32(1);
  return {
    totalMemory: Number(view.getBigInt64(0, true)),
    ordinal: i32(0),
    vendor: vendor === Vendor.TS_VENDOR_NVIDIA ? "nvidia" : vendor === Vendor.TS_VENDOR_AMD ? "amd" : "none",
    major: i32(2),
    minor: i32(3),
    multiprocessors: i32(4),
    warpSize: i32(5),
    dispatchBackend: backendName(i32(6)),
    l2CacheBytes: i32(7),
    dependentLaunch: i32(8) !== 0,
    runtimeVersion: i32(9),
    name: cString(buf.subarray(NAME_AT, NAME_AT + 256)),
    arch: cString(buf.subarray(NAME_AT + 256, INFO_BYTES)),
  };
}

const bufferRegistry = new FinalizationRegistry<Pointer>((pointer) => {
  native().symbols.topk_sigmoid_free(pointer);
});

/** A block of device memory on the device current at allocation. */
export class DeviceBuffer {
  #pointer: Pointer;
  readonly bytes: number;
  /** False for views made with wrap(): their memory belongs to someone else and is never freed here. */
  readonly owned: boolean;

  private constructor(pointer: Pointer, bytes: number, owned: boolean) {
    this.#pointer = pointer;
    this.bytes = bytes;
    this.owned = owned;
    if (owned) bufferRegistry.register(this, pointer, this);
  }

  /**
   * A non-owning view of device memory allocated elsewhere (another library's tensor): usable
   * wherever a DeviceBuffer is; dispose() only forgets the address. The caller keeps the memory
   * alive and on the current device.
   */
  static wrap(pointer: number | bigint, bytes: number): DeviceBuffer {
    const address = typeof pointer === "bigint" ? Number(pointer) : pointer;
    if (!Number.isSafeInteger(address) || address <= 0)
      throw new ValidationError(`DeviceBuffer.wrap: pointer must be a non-zero address, got ${pointer}`);
    if (!Number.isSafeInteger(bytes) || bytes <= 0)
      throw new ValidationError(`DeviceBuffer.wrap: bytes must be a positive integer, got ${bytes}`);
    return new DeviceBuffer(address as Pointer, bytes, false);
  }

  /** Allocates `bytes` (> 0) of device memory (uninitialised). */
  static alloc(bytes: number): DeviceBuffer {
    if (!Number.isSafeInteger(bytes) || bytes <= 0)
      throw new ValidationError(`DeviceBuffer.alloc: bytes must be a positive integer, got ${bytes}`);
    const cell = outPointer();
    check(native().symbols.topk_sigmoid_malloc(cell, bytes));
    return new DeviceBuffer(pointerOf(cell), bytes, true);
  }

  /** Allocates a buffer the size of `data` and copies it there. */
  static from(data: ArrayBufferView, stream?: StreamLike): DeviceBuffer {
    const buffer = DeviceBuffer.alloc(Math.max(1, data.byteLength));
    try {
      buffer.upload(data, stream);
    } catch (e) {
      buffer.dispose();
      throw e;
    }
    return buffer;
  }

  /** The raw device address (for custom native calls). Throws DisposedError after dispose(). */
  get pointer(): Pointer {
    if (this.#pointer === 0) throw new DisposedError("this DeviceBuffer was disposed");
    return this.#pointer;
  }

  /** True after dispose(). */
  get disposed(): boolean {
    return this.#pointer === 0;
  }

  /** Copies `data` to the start of this buffer; returns when the copy is done. */
  upload(data: ArrayBufferView, stream?: StreamLike): void {
    if (data.byteLength > this.bytes)
      throw new ValidationError(`upload: ${data.byteLength} bytes do not fit in a ${this.bytes}-byte DeviceBuffer`);
    if (data.byteLength === 0) return;
    check(
      native().symbols.topk_sigmoid_copy_to_device(this.pointer, bytesOf(data), data.byteLength, streamHandle(stream)),
    );
  }

  /** Copies the start of this buffer into `into`; returns when the copy is done. */
  download<T extends ArrayBufferView>(into: T, stream?: StreamLike): T {
    if (into.byteLength > this.bytes)
      throw new ValidationError(`download: ${into.byteLength} bytes exceed the ${this.bytes}-byte DeviceBuffer`);
    if (into.byteLength > 0)
      check(
        native().symbols.topk_sigmoid_copy_to_host(bytesOf(into), this.pointer, into.byteLength, streamHandle(stream)),
      );
    return into;
  }

  /** Copies `bytes` (default: all of `source`) from another DeviceBuffer, asynchronously on the stream. */
  copyFrom(source: DeviceBuffer, bytes = source.bytes, stream?: StreamLike): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > source.bytes || bytes > this.bytes)
      throw new ValidationError(
        `copyFrom: ${bytes} bytes do not fit (source ${source.bytes} bytes, destination ${this.bytes} bytes)`,
      );
    check(native().symbols.topk_sigmoid_copy_device(this.pointer, source.pointer, bytes, streamHandle(stream)));
  }

  /** Sets every byte to `value` (asynchronous on the stream). */
  fill(value: number, stream?: StreamLike): void {
    check(native().symbols.topk_sigmoid_memset(this.pointer, value & 0xff, this.bytes, streamHandle(stream)));
  }

  /** The whole buffer copied to a new Float32Array (synchronous). */
  toFloat32Array(stream?: StreamLike): Float32Array {
    return this.download(new Float32Array(Math.floor(this.bytes / 4)), stream);
  }
  /** The whole buffer copied to a new Int32Array (synchronous). */
  toInt32Array(stream?: StreamLike): Int32Array {
    return this.download(new Int32Array(Math.floor(this.bytes / 4)), stream);
  }
  /** The whole buffer copied to a new Uint16Array (synchronous). */
  toUint16Array(stream?: StreamLike): Uint16Array {
    return this.download(new Uint16Array(Math.floor(this.bytes / 2)), stream);
  }

  /** Frees the memory now (a wrap() view only forgets the address). Safe to call twice. */
  dispose(): void {
    if (this.#pointer === 0) return;
    const pointer = this.#pointer;
    this.#pointer = NONE;
    if (!this.owned) return;
    bufferRegistry.unregister(this);
    check(native().symbols.topk_sigmoid_free(pointer));
  }

  /** For `using`: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** A GPU stream of the current device. */
export class Stream {
  #handle: Pointer;
  readonly #owned: boolean;
  private constructor(handle: Pointer, owned: boolean) {
    this.#handle = handle;
    this.#owned = owned;
  }
  /** Creates a non-blocking stream on the current device. */
  static create(): Stream {
    const cell = outPointer();
    check(native().symbols.topk_sigmoid_stream_create(cell));
    return new Stream(pointerOf(cell), true);
  }
  /** A non-owning view of a stream created elsewhere (a cudaStream_t / hipStream_t address). */
  static wrap(handle: number | bigint): Stream {
    const address = typeof handle === "bigint" ? Number(handle) : handle;
    if (!Number.isSafeInteger(address) || address <= 0)
      throw new ValidationError(`Stream.wrap: handle must be a non-zero address, got ${handle}`);
    return new Stream(address as Pointer, false);
  }
  /** The raw stream handle. Throws DisposedError after dispose(). */
  get handle(): Pointer {
    if (this.#handle === 0) throw new DisposedError("this Stream was disposed");
    return this.#handle;
  }
  /** Blocks until everything queued on the stream has finished. */
  synchronize(): void {
    check(native().symbols.topk_sigmoid_stream_synchronize(this.handle));
  }
  /** Destroys the stream (a wrap() view only forgets the handle). Safe to call twice. */
  dispose(): void {
    if (this.#handle === 0) return;
    const handle = this.#handle;
    this.#handle = NONE;
    if (this.#owned) check(native().symbols.topk_sigmoid_stream_destroy(handle));
  }
  /** For `using`: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Waits for the default stream (null) or a stream to finish its work. */
export function synchronize(stream?: StreamLike): void {
  check(native().symbols.topk_sigmoid_stream_synchronize(streamHandle(stream)));
}

/** A device event, for timing with the GPU's own clock. */
export class DeviceEvent {
  #handle: Pointer;
  private constructor(handle: Pointer) {
    this.#handle = handle;
  }
  /** Creates a timing event on the current device. */
  static create(): DeviceEvent {
    const cell = outPointer();
    check(native().symbols.topk_sigmoid_event_create(cell));
    return new DeviceEvent(pointerOf(cell));
  }
  /** The raw event handle. Throws DisposedError after dispose(). */
  get handle(): Pointer {
    if (this.#handle === 0) throw new DisposedError("this DeviceEvent was disposed");
    return this.#handle;
  }
  /** Records the event on a stream (default stream when omitted). */
  record(stream?: StreamLike): void {
    check(native().symbols.topk_sigmoid_event_record(this.handle, streamHandle(stream)));
  }
  /** Milliseconds from `start` to this event (both recorded; waits for this one). */
  elapsedSince(start: DeviceEvent): number {
    const out = new Float32Array(1);
    check(native().symbols.topk_sigmoid_event_elapsed_ms(start.handle, this.handle, out));
    return out[0] as number;
  }
  /** Destroys it now. Safe to call twice. */
  dispose(): void {
    if (this.#handle === 0) return;
    const handle = this.#handle;
    this.#handle = NONE;
    check(native().symbols.topk_sigmoid_event_destroy(handle));
  }
  /** For `using`: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** A captured, instantiated graph of stream work, replayed with launch(). */
export class Graph {
  #handle: Pointer;
  private constructor(handle: Pointer) {
    this.#handle = handle;
  }
  /** Captures what `body` enqueues on `stream` (must be a created Stream, not the default). */
  static capture(stream: Stream, body: () => void): Graph {
    check(native().symbols.topk_sigmoid_graph_begin_capture(stream.handle));
    const cell = outPointer();
    try {
      body();
    } finally {
      check(native().symbols.topk_sigmoid_graph_end_capture(stream.handle, cell));
    }
    return new Graph(pointerOf(cell));
  }
  /** Replays the captured work on a stream (asynchronous). */
  launch(stream: Stream): void {
    if (this.#handle === 0) throw new DisposedError("this Graph was disposed");
    check(native().symbols.topk_sigmoid_graph_launch(this.#handle, stream.handle));
  }
  /** Destroys it now. Safe to call twice. */
  dispose(): void {
    if (this.#handle === 0) return;
    const handle = this.#handle;
    this.#handle = NONE;
    check(native().symbols.topk_sigmoid_graph_destroy(handle));
  }
  /** For `using`: the same as dispose(). */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Enqueues an empty one-block kernel (the launch floor, for benchmarks). */
export function launchEmptyKernel(stream?: StreamLike): void {
  check(native().symbols.topk_sigmoid_empty_kernel(streamHandle(stream)));
}
