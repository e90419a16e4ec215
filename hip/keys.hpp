// keys.hpp: how one logit becomes a ranking key, for every dtype and bias mode. Shared by the
// host backend and the GPU kernels so both rank with the very same words (semantics.h).
#ifndef TOPK_SIGMOID_KEYS_HPP
#define TOPK_SIGMOID_KEYS_HPP

#include "semantics.h"
#include "topk_sigmoid.h"

// The in-memory element of each dtype and its exact fp32 value.
template <int Dtype>
struct ts_input {
  using Raw = uint16_t;
  TS_HD static float to_float(Raw raw) {
    return Dtype == TS_DTYPE_BF16 ? ts_bf16_to_float(raw) : ts_f16_to_float(raw);
  }
};
template <>
struct ts_input<TS_DTYPE_F32> {
  using Raw = float;
  TS_HD static float to_float(Raw raw) { return raw; }
};

// Without bias, 16-bit inputs rank on their own bits: a 32-bit (value, index) key. Everything
// else ranks on an fp32 value (the logit, or sigmoid + bias): a 64-bit key.
template <int Dtype, bool HasBias>
struct ts_keys {
  using Key = uint64_t;
  TS_HD static Key make(typename ts_input<Dtype>::Raw raw, float bias, uint32_t index) {
    const float x = ts_input<Dtype>::to_float(raw);
    return ts_key64(ts_ord32(HasBias ? ts_biased_value(x, bias) : x), index);
  }
};
template <>
struct ts_keys<TS_DTYPE_BF16, false> {
  using Key = uint32_t;
  TS_HD static Key make(uint16_t raw, float, uint32_t index) { return ts_key32(ts_ord_bf16(raw), index); }
};
template <>
struct ts_keys<TS_DTYPE_F16, false> {
  using Key = uint32_t;
  TS_HD static Key make(uint16_t raw, float, uint32_t index) { return ts_key32(ts_ord_f16(raw), index); }
};

#endif  // TOPK_SIGMOID_KEYS_HPP
