// tests/split_keys_check.cu: the exhaustive check behind ts_split_ord16x2 and ts_split_value_of
// (hip/kernel_split.hpp), the split kernel's keys. For bf16 and fp16 it checks, on the GPU it runs
// on:
//   - every one of the 2^32 words: the pair form equals the form of each half on its own (no
//     carry or borrow crosses from one half into the other);
//   - every one of the 2^16 halves: ranking by the split form is ranking by ts_ord16 (equal
//     exactly where ts_ord16 is equal, in the same order), and the value read back from a key is
//     bit for bit the one ts_keys16::value_of reads from the exact key.
// Prints one JSON line; tests/gpu.test.ts builds and runs it with nvcc and requires 0 failures.
//   nvcc -O3 -std=c++17 -arch=sm_90 -I hip tests/split_keys_check.cu -o /tmp/skc && /tmp/skc
#include <algorithm>
#include <cstdio>
#include <vector>

#include "dtype_checks_main.cuh"
#include "kernel_split.hpp"

template <int Dtype>
__global__ void pairs_kernel(uint32_t chunk, unsigned long long* bad) {
  unsigned long long count = 0;
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (1u << 24); i += stride) {
    const uint32_t x = (chunk << 24) | i;
    const uint32_t lo = ts_split_ord16x2<Dtype>(x & 0xffffu) & 0xffffu;
    const uint32_t hi = ts_split_ord16x2<Dtype>(x >> 16) & 0xffffu;
    if (ts_split_ord16x2<Dtype>(x) != (lo | (hi << 16))) ++count;
  }
  if (count) atomicAdd(bad, count);
}

template <int Dtype>
__global__ void halves_kernel(uint32_t* split, uint32_t* value_bits) {
  const uint32_t h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= 65536u) return;
  split[h] = ts_split_ord16x2<Dtype>(h) & 0xffffu;
  value_bits[h] = ts_float_bits(ts_split_value_of<Dtype>(split[h] << 16));
}

template <int Dtype>
unsigned long long check(const char* name, unsigned long long* bad) {
  *bad = 0;
  for (uint32_t chunk = 0; chunk < 256; ++chunk) pairs_kernel<Dtype><<<1024, 256>>>(chunk, bad);
  uint32_t *split, *value_bits;
  cudaMallocManaged(&split, 65536 * sizeof(uint32_t));
  cudaMallocManaged(&value_bits, 65536 * sizeof(uint32_t));
  halves_kernel<Dtype><<<256, 256>>>(split, value_bits);
  if (cudaDeviceSynchronize() != cudaSuccess) return ~0ull;
  unsigned long long failures = *bad;
  const unsigned long long pair_failures = failures;
  constexpr uint32_t kInf = ts_keys16<Dtype>::kInfBits;
  std::vector<uint32_t> order(65536);
  for (uint32_t h = 0; h < 65536; ++h) order[h] = h;
  std::sort(order.begin(), order.end(), [](uint32_t a, uint32_t b) { return ts_ord16(a, kInf) < ts_ord16(b, kInf); });
  for (uint32_t n = 0; n < 65536; ++n) {
    const uint32_t h = order[n];
    if (n > 0) {  // consecutive in the exact order: equal stays equal, larger stays larger
      const uint32_t p = order[n - 1];
      const bool exact_equal = ts_ord16(p, kInf) == ts_ord16(h, kInf);
      if (exact_equal ? split[p] != split[h] : split[p] >= split[h]) ++failures;
    }
    const float expected = ts_keys16<Dtype>::value_of(ts_key32(ts_ord16(h, kInf), 0));
    if (value_bits[h] != ts_float_bits(expected)) ++failures;
  }
  printf("%s\"%s\": {\"pair_failures\": %llu, \"failures\": %llu}", Dtype == TS_DTYPE_BF16 ? "" : ", ", name,
         pair_failures, failures);
  cudaFree(split);
  cudaFree(value_bits);
  return failures;
}

int main() {
  return ts_dtype_checks_main("\"words\": 4294967296", [](auto dtype, const char* name, unsigned long long* bad) {
    return check<decltype(dtype)::value>(name, bad);
  });
}
