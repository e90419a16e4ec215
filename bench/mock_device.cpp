// bench/mock_device.cpp: a pretend GPU for checking the benchmark harness on a machine without
// one. It replaces hip/device_none.cpp: "device memory" is host memory, a "kernel" is a busy-wait
// of a modelled duration (optionally also the real host backend), events read the clock, and
// graph capture records the calls of a stream and replays them. Timings mean nothing; the point
// is that every GPU code path of bench/run.ts (capture, replay, events, rotation, routers,
// tinybench on routeDevice, the report, the chart) runs before the lead spends device time.
//
//   g++ -std=c++17 -O2 -shared -fPIC -Ihip bench/mock_device.cpp hip/status.cpp hip/host_pool.cpp
//       hip/host_backend.cpp -o /tmp/libtopk_sigmoid_mock.so -lpthread      (one line)
//   TOPK_SIGMOID_LIB=/tmp/libtopk_sigmoid_mock.so bun bench/run.ts --quick --no-torch --out /tmp/mock
// TS_MOCK_COMPUTE=1 also runs the host backend inside every mocked kernel.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "status.h"

namespace {
using Clock = std::chrono::steady_clock;
using Op = std::function<void()>;

struct MockStream {
  bool capturing = false;
  std::vector<Op> ops;
};
struct MockGraph {
  std::vector<Op> ops;
};
struct MockEvent {
  Clock::time_point t{};
  bool recorded = false;
};

MockStream g_default_stream;
MockStream* stream_of(void* s) { return s ? static_cast<MockStream*>(s) : &g_default_stream; }

void spin_us(double us) {
  const auto end = Clock::now() + std::chrono::nanoseconds(static_cast<long long>(us * 1000.0));
  while (Clock::now() < end) {
  }
}

// Enqueues work: recorded while the stream captures, else run now (the mock "GPU" is synchronous).
void enqueue(void* stream, Op op) {
  MockStream* s = stream_of(stream);
  if (s->capturing)
    s->ops.push_back(std::move(op));
  else
    op();
}

bool compute() {
  const char* v = std::getenv("TS_MOCK_COMPUTE");
  return v && v[0] == '1';
}

ts_status mock_route(const char* entry, double launch_us, double bytes_per_us, const void* logits, int32_t dtype,
                     int64_t tokens, int32_t experts, int64_t row_stride, const float* bias, int32_t bias_len,
                     int32_t k, int32_t renormalize, float scale, float* weights, int32_t* indices, void* stream) {
  ts_route_args a{logits, dtype,       tokens, experts, row_stride, bias,   bias_len,
                  k,      renormalize, scale,  weights, indices,    stream};
  bool noop = false;
  ts_status st = ts_validate_route(a, entry, &noop);
  if (st != TS_OK || noop) return st;
  const double bytes = double(tokens) * double(experts) * ts_dtype_size(dtype) + double(tokens) * k * 8.0;
  const double us = launch_us + bytes / bytes_per_us;
  const bool also = compute();
  enqueue(stream, [=] {
    spin_us(us);
    if (also)
      topk_sigmoid_host(logits, dtype, tokens, experts, row_stride, bias, bias_len, k, renormalize, scale, weights,
                        indices, nullptr);
  });
  return ts_ok();
}
}  // namespace

extern "C" {

int32_t topk_sigmoid_build_flags(void) { return TS_BUILD_HOST | TS_BUILD_CUDA; }

#define TS_MOCK_ARGS                                                                                                  \
  const void *logits, int32_t dtype, int64_t tokens, int32_t experts, int64_t row_stride, const float *bias,          \
      int32_t bias_len, int32_t k, int32_t renormalize, float scale, float *weights, int32_t *indices, void *stream
#define TS_MOCK_PASS logits, dtype, tokens, experts, row_stride, bias, bias_len, k, renormalize, scale, weights, indices, stream

// Modelled kernel times: launch + bytes / bandwidth (bytes per us: 3e6 = 3 TB/s).
ts_status topk_sigmoid_warp(TS_MOCK_ARGS) {
  if (experts > TOPK_SIGMOID_MAX_EXPERTS_WARP)
    return ts_fail(TS_ERR_UNSUPPORTED, "topk_sigmoid_warp: experts %d > %d", experts, TOPK_SIGMOID_MAX_EXPERTS_WARP);
  return mock_route("topk_sigmoid_warp", 1.5, 3.0e6, TS_MOCK_PASS);
}
ts_status topk_sigmoid_ck(TS_MOCK_ARGS) { return mock_route("topk_sigmoid_ck", 2.5, 0.8e6, TS_MOCK_PASS); }
ts_status topk_sigmoid(TS_MOCK_ARGS) {
  return experts <= TOPK_SIGMOID_MAX_EXPERTS_WARP ? topk_sigmoid_warp(TS_MOCK_PASS) : topk_sigmoid_ck(TS_MOCK_PASS);
}
ts_status topk_sigmoid_gfx9(TS_MOCK_ARGS) {
  (void)logits, (void)dtype, (void)tokens, (void)experts, (void)row_stride, (void)bias, (void)bias_len, (void)k;
  (void)renormalize, (void)scale, (void)weights, (void)indices, (void)stream;
  return ts_fail(TS_ERR_WRONG_ARCH, "topk_sigmoid_gfx9: the mock device is NVIDIA-like");
}

ts_status topk_sigmoid_dispatch_backend(int32_t experts, int32_t* backend) {
  if (!backend) return ts_fail(TS_ERR_NULL_POINTER, "backend is NULL");
  *backend = experts <= TOPK_SIGMOID_MAX_EXPERTS_WARP ? TS_BACKEND_WARP : TS_BACKEND_CK;
  return ts_ok();
}

ts_status topk_sigmoid_device_count(int32_t* count) {
  if (!count) return ts_fail(TS_ERR_NULL_POINTER, "count is NULL");
  *count = 1;
  return ts_ok();
}
ts_status topk_sigmoid_set_device(int32_t ordinal) {
  return ordinal == 0 ? ts_ok() : ts_fail(TS_ERR_INVALID_DEVICE, "mock: device %d does not exist", ordinal);
}
ts_status topk_sigmoid_get_device(int32_t* ordinal) {
  if (!ordinal) return ts_fail(TS_ERR_NULL_POINTER, "ordinal is NULL");
  *ordinal = 0;
  return ts_ok();
}
ts_status topk_sigmoid_device_info(int32_t ordinal, ts_device_info* info) {
  if (ordinal != 0) return ts_fail(TS_ERR_INVALID_DEVICE, "mock: device %d does not exist", ordinal);
  if (!info) return ts_fail(TS_ERR_NULL_POINTER, "info is NULL");
  std::memset(info, 0, sizeof *info);
  info->total_memory = 80LL << 30;
  info->vendor = TS_VENDOR_NVIDIA;
  info->major = 9;
  info->multiprocessors = 132;
  info->warp_size = 32;
  info->dispatch_backend = TS_BACKEND_WARP;
  info->l2_cache_bytes = 50 << 20;
  std::strcpy(info->name, "Mock GPU (host busy-wait)");
  std::strcpy(info->arch, "sm_90");
  return ts_ok();
}

ts_status topk_sigmoid_malloc(void** ptr, uint64_t bytes) {
  if (!ptr) return ts_fail(TS_ERR_NULL_POINTER, "ptr is NULL");
  void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!p) return ts_fail(TS_ERR_OUT_OF_MEMORY, "mock: malloc(%llu) failed", (unsigned long long)bytes);
  *ptr = p;
  return ts_ok();
}
ts_status topk_sigmoid_free(void* ptr) {
  std::free(ptr);
  return ts_ok();
}
ts_status topk_sigmoid_copy_to_device(void* dst, const void* src, uint64_t bytes, void*) {
  std::memcpy(dst, src, bytes);
  return ts_ok();
}
ts_status topk_sigmoid_copy_to_host(void* dst, const void* src, uint64_t bytes, void*) {
  std::memcpy(dst, src, bytes);
  return ts_ok();
}
ts_status topk_sigmoid_memset(void* dst, int32_t value, uint64_t bytes, void* stream) {
  enqueue(stream, [=] { std::memset(dst, value, bytes); });
  return ts_ok();
}
ts_status topk_sigmoid_copy_device(void* dst, const void* src, uint64_t bytes, void* stream) {
  enqueue(stream, [=] { std::memmove(dst, src, bytes); });
  return ts_ok();
}

ts_status topk_sigmoid_stream_create(void** stream) {
  *stream = new MockStream();
  return ts_ok();
}
ts_status topk_sigmoid_stream_destroy(void* stream) {
  delete static_cast<MockStream*>(stream);
  return ts_ok();
}
ts_status topk_sigmoid_stream_synchronize(void* stream) {
  if (stream_of(stream)->capturing)
    return ts_fail(TS_ERR_DEVICE_RUNTIME, "mock: synchronize on a capturing stream (cudaErrorStreamCaptureUnsupported)");
  return ts_ok();
}
ts_status topk_sigmoid_event_create(void** event) {
  *event = new MockEvent();
  return ts_ok();
}
ts_status topk_sigmoid_event_destroy(void* event) {
  delete static_cast<MockEvent*>(event);
  return ts_ok();
}
ts_status topk_sigmoid_event_record(void* event, void* stream) {
  auto* e = static_cast<MockEvent*>(event);
  if (stream_of(stream)->capturing) return ts_fail(TS_ERR_DEVICE_RUNTIME, "mock: event recorded inside a capture");
  e->t = Clock::now();
  e->recorded = true;
  return ts_ok();
}
ts_status topk_sigmoid_event_elapsed_ms(void* start, void* end, float* ms) {
  auto* a = static_cast<MockEvent*>(start);
  auto* b = static_cast<MockEvent*>(end);
  if (!a->recorded || !b->recorded) return ts_fail(TS_ERR_DEVICE_RUNTIME, "mock: event not recorded");
  *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
  return ts_ok();
}
ts_status topk_sigmoid_graph_begin_capture(void* stream) {
  if (!stream) return ts_fail(TS_ERR_INVALID_ARGUMENT, "mock: cannot capture the default stream");
  MockStream* s = stream_of(stream);
  if (s->capturing) return ts_fail(TS_ERR_DEVICE_RUNTIME, "mock: already capturing");
  s->capturing = true;
  s->ops.clear();
  return ts_ok();
}
ts_status topk_sigmoid_graph_end_capture(void* stream, void** graph_exec) {
  MockStream* s = stream_of(stream);
  if (!s->capturing) return ts_fail(TS_ERR_DEVICE_RUNTIME, "mock: not capturing");
  s->capturing = false;
  auto* g = new MockGraph();
  g->ops.swap(s->ops);
  *graph_exec = g;
  return ts_ok();
}
ts_status topk_sigmoid_graph_launch(void* graph_exec, void* stream) {
  auto* g = static_cast<MockGraph*>(graph_exec);
  enqueue(stream, [g] {
    for (auto& op : g->ops) {
      spin_us(0.3);  // inter-node gap
      op();
    }
  });
  return ts_ok();
}
ts_status topk_sigmoid_graph_destroy(void* graph_exec) {
  delete static_cast<MockGraph*>(graph_exec);
  return ts_ok();
}
ts_status topk_sigmoid_empty_kernel(void* stream) {
  enqueue(stream, [] { spin_us(0.4); });
  return ts_ok();
}

}  // extern "C"
