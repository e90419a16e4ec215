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
// value_of(key) gives back the ranked logit of a key made without bias (NaN for NaN).
template <int Dtype, bool HasBias>
struct ts_keys {
  using Key = uint64_t;
  TS_HD static Key make(typename ts_input<Dtype>::Raw raw, float bias, uint32_t index) {
    const float x = ts_input<Dtype>::to_float(raw);
    return ts_key64(ts_ord32(HasBias ? ts_biased_value(x, bias) : x), index);
  }
  TS_HD static float value_of(Key key) { return ts_unord32(static_cast<uint32_t>(key >> 32)); }
};
template <int Dtype>
struct ts_keys16 {
  using Key = uint32_t;
  static constexpr uint32_t kInfBits = Dtype == TS_DTYPE_BF16 ? 0x7f80u : 0x7c00u;
  TS_HD static Key make(uint16_t raw, float, uint32_t index) { return ts_key32(ts_ord16(raw, kInfBits), index); }
  TS_HD static float value_of(Key key) {
    const uint32_t ord = key >> 16;
    return ord == 0u ? ts_bits_float(0x7fc00000u) : ts_input<Dtype>::to_float(ts_unord16(ord));
  }
};
template <>
struct ts_keys<TS_DTYPE_BF16, false> : ts_keys16<TS_DTYPE_BF16> {};
template <>
struct ts_keys<TS_DTYPE_F16, false> : ts_keys16<TS_DTYPE_F16> {};

// The 16-bit float behind the orderable half ord of a key built from ts_split_ord16x2
// (kernel_warp.hpp; ord > 0; +0 for either zero; ord 0, a NaN's, gives the NaN 0xffff). Here
// rather than with ts_split_ord16x2 because the weight table's generator (weight_table_gen.cpp)
// runs it on the host.
TS_HD uint16_t ts_split_half_of(uint32_t ord) {
  return static_cast<uint16_t>(ord >= 0x8000u ? ord & 0x7fffu : ord ^ 0xffffu);
}

// Offers key to list[0..k), kept in descending order (k >= 1, empty slots 0): it goes in at its
// rank and the smallest falls off. The host backend (per row) and the generic GPU kernel (per
// thread) keep their running top-k this way.
template <class Key>
TS_HD void ts_offer_desc(Key* list, int k, Key key) {
  if (key <= list[k - 1]) return;
  int pos = k - 1;
  while (pos > 0 && list[pos - 1] < key) {
    list[pos] = list[pos - 1];
    --pos;
  }
  list[pos] = key;
}

#endif  // TOPK_SIGMOID_KEYS_HPP
