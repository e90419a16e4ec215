// weight_table_data.hpp: the weight table itself and its lookup (weight_table.hpp says why),
// for device_backend.hip only: the initializer, weight_table.inc, is generated at build time
// into the build's object directory by weight_table_gen.cpp (hip/build.ts).
#ifndef TOPK_SIGMOID_WEIGHT_TABLE_DATA_HPP
#define TOPK_SIGMOID_WEIGHT_TABLE_DATA_HPP

#include "weight_table.hpp"

#if defined(TS_PLATFORM_CUDA)
// [0]: fp16, [1]: bf16; entry ord: the bits of the weight of the logit ts_split_half_of(ord).
__device__ const uint32_t ts_weight_table[2][65536] = {
#include "weight_table.inc"
};

template <int Dtype>
__device__ __forceinline__ float ts_weight_of_ord(uint32_t ord) {
  static_assert(Dtype == TS_DTYPE_F16 || Dtype == TS_DTYPE_BF16, "16-bit logits");
  return __uint_as_float(__ldg(&ts_weight_table[Dtype == TS_DTYPE_BF16 ? 1 : 0][ord]));
}
#endif  // TS_PLATFORM_CUDA

#endif  // TOPK_SIGMOID_WEIGHT_TABLE_DATA_HPP
