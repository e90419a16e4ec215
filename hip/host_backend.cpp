// host_backend.cpp: topk_sigmoid_host, the CPU backend. One pass per row over the logits with
// a k-long sorted list of packed keys (semantics.h), no allocation per row, rows split across
// the worker pool for large batches. It is also the reference every GPU backend must match.
#include <cstring>

#include "host_pool.h"
#include "keys.hpp"
#include "status.h"

namespace {

template <int Dtype>
inline typename ts_input<Dtype>::Raw load_raw(const void* row, int32_t e) {
  return static_cast<const typename ts_input<Dtype>::Raw*>(row)[e];
}

struct RowJob {
  ts_route_args a;
};

template <int Dtype, bool HasBias>
void route_rows(void* context, int64_t begin, int64_t end) {
  using K = ts_keys<Dtype, HasBias>;
  using Key = typename K::Key;
  const ts_route_args& a = static_cast<RowJob*>(context)->a;
  const int32_t k = a.k, E = a.experts;
  const size_t row_bytes = static_cast<size_t>(a.row_stride) * static_cast<size_t>(ts_dtype_size(Dtype));
  Key top[TOPK_SIGMOID_MAX_K];
  float w[TOPK_SIGMOID_MAX_K];
  for (int64_t t = begin; t < end; ++t) {
    const void* row = static_cast<const char*>(a.logits) + static_cast<size_t>(t) * row_bytes;
    for (int32_t i = 0; i < k; ++i) top[i] = 0;  // 0 is below every real key
    for (int32_t e = 0; e < E; ++e) {
      ts_offer_desc(top, k, K::make(load_raw<Dtype>(row, e), HasBias ? a.bias[e] : 0.0f, static_cast<uint32_t>(e)));
    }
    float* weights = a.weights + t * k;
    int32_t* indices = a.indices + t * k;
    float sum = 0.0f;
    for (int32_t r = 0; r < k; ++r) {
      const uint32_t idx = ts_key_index(static_cast<uint32_t>(top[r]));
      w[r] = ts_weight_of_logit(ts_input<Dtype>::to_float(load_raw<Dtype>(row, static_cast<int32_t>(idx))));
      sum = TS_ADD(sum, w[r]);  // rank order
      indices[r] = static_cast<int32_t>(idx);
    }
    for (int32_t r = 0; r < k; ++r) weights[r] = ts_final_weight(w[r], sum, a.renormalize != 0, a.scale);
  }
}

template <int Dtype>
ts_row_body pick_body(bool has_bias) {
  return has_bias ? &route_rows<Dtype, true> : &route_rows<Dtype, false>;
}

}  // namespace

ts_status ts_route_host(const ts_route_args& args, const char* entry) {
  RowJob job{args};
  bool noop = false;
  const ts_status st = ts_validate_route(job.a, entry, &noop);
  if (st != TS_OK || noop) return st;
  const int32_t dtype = args.dtype;
  const bool has_bias = args.bias != nullptr;
  ts_row_body body = dtype == TS_DTYPE_F32    ? pick_body<TS_DTYPE_F32>(has_bias)
                     : dtype == TS_DTYPE_F16 ? pick_body<TS_DTYPE_F16>(has_bias)
                                             : pick_body<TS_DTYPE_BF16>(has_bias);
  ts_parallel_rows(args.tokens, args.experts, body, &job);
  return ts_ok();
}

extern "C" ts_status topk_sigmoid_host(const void* logits, int32_t dtype, int64_t tokens, int32_t experts,
                                       int64_t row_stride, const float* bias, int32_t bias_len, int32_t k,
                                       int32_t renormalize, float scale, float* weights, int32_t* indices,
                                       void* stream) {
  return ts_route_host({logits, dtype, tokens, experts, row_stride, bias, bias_len, k, renormalize, scale, weights,
                        indices, stream},
                       "topk_sigmoid_host");
}

extern "C" ts_status topk_sigmoid_host_set_threads(int32_t threads) {
  if (threads < 0 || threads > 1024)
    return ts_fail(TS_ERR_INVALID_ARGUMENT, "topk_sigmoid_host_set_threads: threads = %d; use 0 (auto) or 1..1024",
                   threads);
  ts_set_host_threads(threads);
  return ts_ok();
}
