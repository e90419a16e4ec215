// device_none.cpp: the GPU half of the ABI in a library built without a GPU toolchain.
// Every symbol exists (bun:ffi binds one table for all builds); the GPU entry points say why
// they cannot run, and topk_sigmoid dispatches to the host backend.
#include "status.h"

namespace {
const char* const kWhy =
    "this library was built without a GPU toolchain (host only); install nvcc (CUDA) or hipcc (ROCm) and run "
    "'bun run build'";

ts_status not_built(const char* entry) { return ts_fail(TS_ERR_NOT_BUILT, "%s: %s", entry, kWhy); }
}  // namespace

extern "C" {

int32_t topk_sigmoid_build_flags(void) {
#ifdef TS_SANITIZE
  return TS_BUILD_HOST | TS_BUILD_SANITIZE;
#else
  return TS_BUILD_HOST;
#endif
}

ts_status topk_sigmoid(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int64_t row_stride,
                       const float* bias, int32_t bias_len, int32_t k, int32_t renormalize, float scale, float* weights,
                       int32_t* indices, void* stream) {
  return ts_route_host({logits, dtype, tokens, experts, row_stride, bias, bias_len, k, renormalize, scale, weights,
                        indices, stream},
                       "topk_sigmoid");
}

#define TS_NOT_BUILT_ROUTE(name)                                                                                     \
  ts_status name(const void*, int32_t, int64_t, int32_t, int64_t, const float*, int32_t, int32_t, int32_t, float, \
                 float*, int32_t*, void*) {                                                                          \
    return not_built(#name);                                                                                         \
  }
TS_NOT_BUILT_ROUTE(topk_sigmoid_warp)
TS_NOT_BUILT_ROUTE(topk_sigmoid_gfx9)
TS_NOT_BUILT_ROUTE(topk_sigmoid_ck)
#undef TS_NOT_BUILT_ROUTE

ts_status topk_sigmoid_dispatch_backend(int32_t experts, int32_t* backend) {
  if (backend == nullptr) return ts_fail(TS_ERR_NULL_POINTER, "topk_sigmoid_dispatch_backend: backend is NULL");
  *backend = TS_BACKEND_HOST;
  return ts_ok();
}

ts_status topk_sigmoid_device_count(int32_t* count) {
  if (count == nullptr) return ts_fail(TS_ERR_NULL_POINTER, "topk_sigmoid_device_count: count is NULL");
  *count = 0;
  return ts_ok();
}

ts_status topk_sigmoid_set_device(int32_t ordinal) {
  return ts_fail(TS_ERR_INVALID_DEVICE, "topk_sigmoid_set_device: device %d does not exist: %s", ordinal, kWhy);
}
ts_status topk_sigmoid_get_device(int32_t*) { return not_built("topk_sigmoid_get_device"); }
ts_status topk_sigmoid_device_info(int32_t ordinal, ts_device_info*) {
  return ts_fail(TS_ERR_INVALID_DEVICE, "topk_sigmoid_device_info: device %d does not exist: %s", ordinal, kWhy);
}
ts_status topk_sigmoid_malloc(void**, uint64_t) { return not_built("topk_sigmoid_malloc"); }
ts_status topk_sigmoid_free(void*) { return not_built("topk_sigmoid_free"); }
ts_status topk_sigmoid_copy_to_device(void*, const void*, uint64_t, void*) {
  return not_built("topk_sigmoid_copy_to_device");
}
ts_status topk_sigmoid_copy_to_host(void*, const void*, uint64_t, void*) {
  return not_built("topk_sigmoid_copy_to_host");
}
ts_status topk_sigmoid_memset(void*, int32_t, uint64_t, void*) { return not_built("topk_sigmoid_memset"); }
ts_status topk_sigmoid_copy_device(void*, const void*, uint64_t, void*) { return not_built("topk_sigmoid_copy_device"); }
ts_status topk_sigmoid_stream_create(void**) { return not_built("topk_sigmoid_stream_create"); }
ts_status topk_sigmoid_stream_destroy(void*) { return not_built("topk_sigmoid_stream_destroy"); }
ts_status topk_sigmoid_stream_synchronize(void*) { return not_built("topk_sigmoid_stream_synchronize"); }
ts_status topk_sigmoid_event_create(void**) { return not_built("topk_sigmoid_event_create"); }
ts_status topk_sigmoid_event_destroy(void*) { return not_built("topk_sigmoid_event_destroy"); }
ts_status topk_sigmoid_event_record(void*, void*) { return not_built("topk_sigmoid_event_record"); }
ts_status topk_sigmoid_event_elapsed_ms(void*, void*, float*) { return not_built("topk_sigmoid_event_elapsed_ms"); }
ts_status topk_sigmoid_graph_begin_capture(void*) { return not_built("topk_sigmoid_graph_begin_capture"); }
ts_status topk_sigmoid_graph_end_capture(void*, void**) { return not_built("topk_sigmoid_graph_end_capture"); }
ts_status topk_sigmoid_graph_launch(void*, void*) { return not_built("topk_sigmoid_graph_launch"); }
ts_status topk_sigmoid_graph_destroy(void*) { return not_built("topk_sigmoid_graph_destroy"); }
ts_status topk_sigmoid_empty_kernel(void*) { return not_built("topk_sigmoid_empty_kernel"); }

}  // extern "C"
