// mod.ts: the public API of topk-sigmoid for Bun (re-exports only).
// Data flow: hip/ (native sources) -> lib/ (built .so) -> ffi/ (bun:ffi) -> api/ -> here.

export { type BackendChoice, backendNames, type RouterConfig, type RouterConfigInput, RouterConfigSchema } from "./api/config.ts";
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
export { libraryInfo, setHostThreads } from "./api/library_info.ts";
export {
  createRouter,
  type DeviceOutputs,
  parseRouterConfig,
  type RouteOptions,
  type RouteResult,
  Router,
} from "./api/router.ts";
export * from "./ffi/errors.ts";
export type { BackendName } from "./ffi/status.ts";
