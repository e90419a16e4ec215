// mod.ts: the public API of topk-sigmoid for Bun (re-exports only).
// Data flow: hip/ (native sources) -> lib/ (built .so) -> ffi/ (bun:ffi) -> api/ -> here.

export {
  type BackendChoice,
  backendNames,
  type RouterConfig,
  type RouterConfigInput,
  RouterConfigSchema,
} from "./api/config.ts";
export {
  currentDevice,
  DeviceBuffer,
  DeviceEvent,
  type DeviceInfo,
  deviceCount,
  deviceInfo,
  Graph,
  launchEmptyKernel,
  Stream,
  type StreamLike,
  setDevice,
  synchronize,
} from "./api/device.ts";
export {
  bf16BitsToFloat,
  type Dtype,
  dtypeBytes,
  dtypes,
  f16BitsToFloat,
  floatToBf16Bits,
  floatToF16Bits,
  type Logits,
  logitsToFloat32,
  toLogits,
} from "./api/dtype.ts";
export { type LibraryInfo, libraryInfo, setHostThreads } from "./api/library_info.ts";
// Logits files (.npy and safetensors readers and writers; examples/route.ts --logits).
export { parseLogitsFile, readLogitsFile } from "./api/logits_file.ts";
export { encodeNpy, parseNpy, readNpy } from "./api/npy.ts";
export {
  createRouter,
  type DeviceOutputs,
  parseRouterConfig,
  type RouteOptions,
  type RouteResult,
  Router,
} from "./api/router.ts";
export {
  encodeSafetensors,
  parseSafetensors,
  parseSafetensorsHeader,
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsHeader,
  type SafetensorsTensorInput,
} from "./api/safetensors.ts";
export type { LogitsTensor, ReadLogitsOptions } from "./api/tensor_file.ts";
export * from "./ffi/errors.ts";
export type { BackendName } from "./ffi/status.ts";
