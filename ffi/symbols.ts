// ffi/symbols.ts: the bun:ffi symbol table of hip/topk_sigmoid.h. tests/abi.test.ts parses the
// header's TS_EXPORT lines and checks every name, argument type and return type against this.
import { FFIType } from "bun:ffi";

const { ptr, i32, i64, u64, f32, cstring } = FFIType;

// One routing signature shared by every backend entry point.
const route = {
  args: [ptr, i32, i64, i32, i64, ptr, i32, i32, i32, f32, ptr, ptr, ptr],
  returns: i32,
} as const;

export const symbols = {
  topk_sigmoid: route,
  topk_sigmoid_warp: route,
  topk_sigmoid_gfx9: route,
  topk_sigmoid_ck: route,
  topk_sigmoid_host: route,
  topk_sigmoid_dispatch_backend: { args: [i32, ptr], returns: i32 },
  topk_sigmoid_abi_version: { args: [], returns: i32 },
  topk_sigmoid_build_flags: { args: [], returns: i32 },
  topk_sigmoid_last_error: { args: [], returns: cstring },
  topk_sigmoid_status_name: { args: [i32], returns: cstring },
  topk_sigmoid_host_set_threads: { args: [i32], returns: i32 },
  topk_sigmoid_device_count: { args: [ptr], returns: i32 },
  topk_sigmoid_set_device: { args: [i32], returns: i32 },
  topk_sigmoid_get_device: { args: [ptr], returns: i32 },
  topk_sigmoid_device_info: { args: [i32, ptr], returns: i32 },
  topk_sigmoid_malloc: { args: [ptr, u64], returns: i32 },
  topk_sigmoid_free: { args: [ptr], returns: i32 },
  topk_sigmoid_copy_to_device: { args: [ptr, ptr, u64, ptr], returns: i32 },
  topk_sigmoid_copy_to_host: { args: [ptr, ptr, u64, ptr], returns: i32 },
  topk_sigmoid_memset: { args: [ptr, i32, u64, ptr], returns: i32 },
  topk_sigmoid_copy_device: { args: [ptr, ptr, u64, ptr], returns: i32 },
  topk_sigmoid_stream_create: { args: [ptr], returns: i32 },
  topk_sigmoid_stream_destroy: { args: [ptr], returns: i32 },
  topk_sigmoid_stream_synchronize: { args: [ptr], returns: i32 },
  topk_sigmoid_event_create: { args: [ptr], returns: i32 },
  topk_sigmoid_event_destroy: { args: [ptr], returns: i32 },
  topk_sigmoid_event_record: { args: [ptr, ptr], returns: i32 },
  topk_sigmoid_event_elapsed_ms: { args: [ptr, ptr, ptr], returns: i32 },
  topk_sigmoid_graph_begin_capture: { args: [ptr], returns: i32 },
  topk_sigmoid_graph_end_capture: { args: [ptr, ptr], returns: i32 },
  topk_sigmoid_graph_launch: { args: [ptr, ptr], returns: i32 },
  topk_sigmoid_graph_destroy: { args: [ptr], returns: i32 },
  topk_sigmoid_empty_kernel: { args: [ptr], returns: i32 },
} as const;

export type Symbols = typeof symbols;
export type RouteEntry =
  | "topk_sigmoid"
  | "topk_sigmoid_warp"
  | "topk_sigmoid_gfx9"
  | "topk_sigmoid_ck"
  | "topk_sigmoid_host";
