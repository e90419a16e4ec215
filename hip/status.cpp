// status.cpp: last-error storage, status names and argument validation (shared by all builds).
#include "status.h"

#include <cmath>
#include <cstdarg>
#include <cstdio>

namespace {
thread_local char g_last_error[1024];
}

ts_status ts_fail(ts_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(g_last_error, sizeof g_last_error, format, args);
  va_end(args);
  return status;
}

ts_status ts_ok() {
  g_last_error[0] = '\0';
  return TS_OK;
}

int32_t ts_dtype_size(int32_t dtype) { return dtype == TS_DTYPE_F32 ? 4 : 2; }

const char* ts_dtype_name(int32_t dtype) {
  switch (dtype) {
    case TS_DTYPE_F32: return "f32";
    case TS_DTYPE_F16: return "f16";
    case TS_DTYPE_BF16: return "bf16";
    default: return "unknown";
  }
}

static bool ranges_overlap(const void* a, uint64_t a_bytes, const void* b, uint64_t b_bytes) {
  const uintptr_t pa = reinterpret_cast<uintptr_t>(a), pb = reinterpret_cast<uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

ts_status ts_validate_route(const ts_route_args& a, const char* entry, bool* noop) {
  *noop = false;
  if (a.dtype != TS_DTYPE_F32 && a.dtype != TS_DTYPE_F16 && a.dtype != TS_DTYPE_BF16)
    return ts_fail(TS_ERR_INVALID_DTYPE, "%s: dtype %d is not one of f32 (0), f16 (1), bf16 (2)", entry, a.dtype);
  if (a.tokens < 0)
    return ts_fail(TS_ERR_INVALID_ARGUMENT, "%s: tokens = %lld; it must be >= 0", entry, (long long)a.tokens);
  if (a.experts < 1 || a.experts > TOPK_SIGMOID_MAX_EXPERTS)
    return ts_fail(TS_ERR_INVALID_EXPERTS, "%s: experts = %d is out of range 1..%d", entry, a.experts,
                   TOPK_SIGMOID_MAX_EXPERTS);
  const int32_t k_max = a.experts < TOPK_SIGMOID_MAX_K ? a.experts : TOPK_SIGMOID_MAX_K;
  if (a.k < 1 || a.k > k_max)
    return ts_fail(TS_ERR_INVALID_K, "%s: k = %d is out of range: k must be in 1..min(experts, %d) = 1..%d", entry, a.k,
                   TOPK_SIGMOID_MAX_K, k_max);
  if (a.row_stride < a.experts)
    return ts_fail(TS_ERR_INVALID_STRIDE, "%s: row_stride = %lld is less than experts = %d", entry,
                   (long long)a.row_stride, a.experts);
  const int64_t elem = ts_dtype_size(a.dtype);
  // tokens * row_stride * elem and tokens * k * 4 must fit in int64 (and so in any address space).
  if (a.tokens > 0 && (a.row_stride > INT64_MAX / elem / a.tokens))
    return ts_fail(TS_ERR_OVERFLOW, "%s: tokens (%lld) * row_stride (%lld) * %lld bytes overflows 64 bits", entry,
                   (long long)a.tokens, (long long)a.row_stride, (long long)elem);
  if (a.tokens > INT64_MAX / 4 / a.k)
    return ts_fail(TS_ERR_OVERFLOW, "%s: tokens (%lld) * k (%d) outputs overflow 64 bits", entry, (long long)a.tokens,
                   a.k);
  if (!std::isfinite(a.scale))
    return ts_fail(TS_ERR_INVALID_ARGUMENT, "%s: scale = %g; it must be a finite number", entry, (double)a.scale);
  if (a.bias == nullptr && a.bias_len != 0)
    return ts_fail(TS_ERR_INVALID_BIAS, "%s: bias is NULL but bias_len = %d; pass bias_len 0 without a bias", entry,
                   a.bias_len);
  if (a.bias != nullptr && a.bias_len != a.experts)
    return ts_fail(TS_ERR_INVALID_BIAS, "%s: bias has %d elements; it must have experts = %d", entry, a.bias_len,
                   a.experts);
  if (a.tokens == 0) {
    *noop = true;
    return ts_ok();
  }
  if (a.logits == nullptr) return ts_fail(TS_ERR_NULL_POINTER, "%s: logits is NULL", entry);
  if (a.weights == nullptr) return ts_fail(TS_ERR_NULL_POINTER, "%s: weights is NULL", entry);
  if (a.indices == nullptr) return ts_fail(TS_ERR_NULL_POINTER, "%s: indices is NULL", entry);
  if (reinterpret_cast<uintptr_t>(a.logits) % static_cast<uintptr_t>(elem) != 0)
    return ts_fail(TS_ERR_MISALIGNED, "%s: logits %p is not aligned to its %lld-byte %s elements", entry, a.logits,
                   (long long)elem, ts_dtype_name(a.dtype));
  if (reinterpret_cast<uintptr_t>(a.weights) % 4 != 0)
    return ts_fail(TS_ERR_MISALIGNED, "%s: weights %p is not 4-byte aligned", entry, static_cast<void*>(a.weights));
  if (reinterpret_cast<uintptr_t>(a.indices) % 4 != 0)
    return ts_fail(TS_ERR_MISALIGNED, "%s: indices %p is not 4-byte aligned", entry, static_cast<void*>(a.indices));
  if (a.bias != nullptr && reinterpret_cast<uintptr_t>(a.bias) % 4 != 0)
    return ts_fail(TS_ERR_MISALIGNED, "%s: bias %p is not 4-byte aligned", entry, static_cast<const void*>(a.bias));
  const uint64_t out_bytes = static_cast<uint64_t>(a.tokens) * static_cast<uint64_t>(a.k) * 4u;
  if (ranges_overlap(a.weights, out_bytes, a.indices, out_bytes))
    return ts_fail(TS_ERR_INVALID_ARGUMENT, "%s: weights and indices overlap; they must be separate buffers", entry);
  // Outputs written over the inputs would be read back mid-call (and, split across threads or
  // blocks, differently each time): refuse them.
  const uint64_t in_bytes =
      (static_cast<uint64_t>(a.tokens - 1) * static_cast<uint64_t>(a.row_stride) + static_cast<uint64_t>(a.experts)) *
      static_cast<uint64_t>(elem);
  const uint64_t bias_bytes = a.bias ? static_cast<uint64_t>(a.experts) * 4u : 0u;
  if (ranges_overlap(a.weights, out_bytes, a.logits, in_bytes) || ranges_overlap(a.indices, out_bytes, a.logits, in_bytes))
    return ts_fail(TS_ERR_INVALID_ARGUMENT, "%s: an output buffer overlaps the logits; outputs must not alias inputs",
                   entry);
  if (a.bias && (ranges_overlap(a.weights, out_bytes, a.bias, bias_bytes) ||
                 ranges_overlap(a.indices, out_bytes, a.bias, bias_bytes)))
    return ts_fail(TS_ERR_INVALID_ARGUMENT, "%s: an output buffer overlaps the bias; outputs must not alias inputs",
                   entry);
  return ts_ok();
}

extern "C" {

const char* topk_sigmoid_last_error(void) { return g_last_error; }

int32_t topk_sigmoid_abi_version(void) { return TOPK_SIGMOID_ABI_VERSION; }

const char* topk_sigmoid_status_name(ts_status status) {
  switch (status) {
    case TS_OK: return "TS_OK";
    case TS_ERR_NULL_POINTER: return "TS_ERR_NULL_POINTER";
    case TS_ERR_INVALID_DTYPE: return "TS_ERR_INVALID_DTYPE";
    case TS_ERR_INVALID_EXPERTS: return "TS_ERR_INVALID_EXPERTS";
    case TS_ERR_INVALID_K: return "TS_ERR_INVALID_K";
    case TS_ERR_INVALID_STRIDE: return "TS_ERR_INVALID_STRIDE";
    case TS_ERR_OVERFLOW: return "TS_ERR_OVERFLOW";
    case TS_ERR_MISALIGNED: return "TS_ERR_MISALIGNED";
    case TS_ERR_INVALID_BIAS: return "TS_ERR_INVALID_BIAS";
    case TS_ERR_INVALID_ARGUMENT: return "TS_ERR_INVALID_ARGUMENT";
    case TS_ERR_NOT_BUILT: return "TS_ERR_NOT_BUILT";
    case TS_ERR_NO_DEVICE: return "TS_ERR_NO_DEVICE";
    case TS_ERR_WRONG_ARCH: return "TS_ERR_WRONG_ARCH";
    case TS_ERR_UNSUPPORTED: return "TS_ERR_UNSUPPORTED";
    case TS_ERR_INVALID_DEVICE: return "TS_ERR_INVALID_DEVICE";
    case TS_ERR_INVALID_POINTER: return "TS_ERR_INVALID_POINTER";
    case TS_ERR_DEVICE_RUNTIME: return "TS_ERR_DEVICE_RUNTIME";
    case TS_ERR_OUT_OF_MEMORY: return "TS_ERR_OUT_OF_MEMORY";
    default: return "TS_ERR_UNKNOWN";
  }
}

}  // extern "C"
