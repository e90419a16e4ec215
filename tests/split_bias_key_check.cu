// tests/split_bias_key_check.cu: the exhaustive check behind the split bias kernel's cheap keys
// (hip/kernel_split_bias.hpp). The key is one integer multiply-add of the fixed-point value's
// bits, with no clamp: it relies on the card returning every NaN as 0x7fffffff (q = 0). For bf16
// and fp16 it checks, on the GPU it runs on, every one of the 2^16 logits against biases at the
// edges of the fixed point's range (the largest |b| from 0 to 1e30, b from -largest to +largest):
//   - a NaN logit gives q = 0 (the key is its field), also as the maximum of two NaN values (a
//     vector's best key, through fmaxf), with a NaN bias term (the experts past the row) and as
//     sm_80's clamp value -(2^24 - 1);
//   - every other logit gives q in [2^20, 5 * 2^20] and exactly the key of the form before
//     (fixed point y + 1.5 * 2^23 in [2^23, 2^24), a NaN clamped to 2^23, key = y's low 23 bits
//     << 9 | field) less (2^20 + 1) << 9: the same order, the same gaps, so the kernel's check and
//     its bound D are unchanged.
// Prints one JSON line; tests/gpu.test.ts builds and runs it with nvcc and requires 0 failures.
//   nvcc -O3 -std=c++17 -arch=sm_90 -I hip tests/split_bias_key_check.cu -o /tmp/sbkc && /tmp/sbkc
#include <cstdio>

#include "dtype_checks_main.cuh"
#include "kernel_split_bias.hpp"

constexpr int kLargest = 7;
__constant__ float kLargestAbs[kLargest] = {0.0f, 1e-30f, 0.3f, 1.0f, 40.0f, 9000.0f, 1e30f};
constexpr int kFractions = 7;
__constant__ float kFraction[kFractions] = {-1.0f, -0.5f, -1e-7f, 0.0f, 0.25f, 0.999f, 1.0f};

// The key of the form before the integer multiply-add, the reference.
__device__ uint32_t key_before(float s, float b, float scale, uint32_t field) {
  const float y = __fmaf_rn(s, scale, __fmaf_rn(b, scale, 12582912.0f));
  return (ts_float_bits(fmaxf(y, 8388608.0f)) << 9) | field;
}

template <int Dtype>
__global__ void keys_kernel(unsigned long long* bad) {
  const uint32_t h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= 65536u) return;
  const uint32_t field = h & 511u;
  const float x = ts_split_bias_logit<Dtype>(h, 0);
  const bool nan = x != x;
  const float s = ts_sigmoid_prefilter(x);
  unsigned long long count = 0;
  for (int l = 0; l < kLargest; ++l) {
    const float largest = kLargestAbs[l];
    const float scale = ts_split_bias_scale(largest);
    for (int f = 0; f < kFractions; ++f) {
      const float b = largest * kFraction[f];
      const float y = ts_split_bias_y(x, ts_split_bias_fixed(b, scale), scale);
      const uint32_t key = ts_split_bias_key_of_y(y, field);
      if (nan) {
        if (key != field) ++count;
      } else {
        const uint32_t q = key >> 9;
        if (q < (1u << 20) || q > 5u * (1u << 20)) ++count;
        if (key != key_before(s, b, scale, field) - ((1u << 20) + 1u) * 512u) ++count;
      }
      // A vector's best: the maximum of this value and a NaN one (NaNs of either sign, quiet or
      // not, in both dtypes), NaN only where both are.
      constexpr uint32_t kNans[4] = {0x7fc0u, 0xffffu, 0x7f81u, 0xff81u};
      const float y_nan =
          ts_split_bias_y(ts_split_bias_logit<Dtype>(kNans[h & 3u], 0), ts_split_bias_fixed(b, scale), scale);
      const uint32_t best = ts_split_bias_key_of_y(fmaxf(y, y_nan), field);
      if (best != key) ++count;
    }
    // sm_80's clamp of a vector's NaN maximum (ts_split_bias_vector_best_key): the NaN's key.
    if (ts_split_bias_key_of_y(-16777215.0f, field) != field) ++count;
    // Past the row: the bias term is a NaN.
    if (ts_split_bias_key_of_y(ts_split_bias_y(x, ts_bits_float(0x7fffffffu), scale), field) != field) ++count;
  }
  if (count) atomicAdd(bad, count);
}

template <int Dtype>
unsigned long long check(const char* name, unsigned long long* bad) {
  *bad = 0;
  keys_kernel<Dtype><<<256, 256>>>(bad);
  if (cudaDeviceSynchronize() != cudaSuccess) return ~0ull;
  const unsigned long long failures = *bad;
  printf("%s\"%s\": {\"failures\": %llu}", Dtype == TS_DTYPE_BF16 ? "" : ", ", name, failures);
  return failures;
}

static_assert(kLargest * kFractions == 49, "the biases' count in the JSON line");

int main() {
  return ts_dtype_checks_main("\"logits\": 65536, \"biases\": 49",
                              [](auto dtype, const char* name, unsigned long long* bad) {
                                return check<decltype(dtype)::value>(name, bad);
                              });
}
