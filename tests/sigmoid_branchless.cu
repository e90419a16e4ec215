// tests/sigmoid_branchless.cu: the checks behind ts_division_branchless (hip/semantics.h).
// - ts_weight_of_logit_branchless, the weights the warp kernel's Small form computes several at
//   a time, against ts_weight_of_logit on every one of the 2^32 fp32 bit patterns (every bf16 and
//   fp16 logit is one of them);
// - the division itself against the IEEE division on about 10^9 operand pairs for which
//   ts_division_in_range holds (the thread select kernel's renormalisation).
// Runs on the GPU it finds and prints one JSON line with the number of inputs (and pairs) whose
// two results differ in any bit. tests/gpu.test.ts compiles and runs it with nvcc and requires 0.
//   nvcc -O3 -std=c++17 --fmad=false -arch=sm_90 -I hip tests/sigmoid_branchless.cu -o /tmp/sb && /tmp/sb
#include <cstdio>

#include "semantics.h"

__global__ void compare_kernel(uint32_t chunk, unsigned long long* differ, unsigned int* first) {
  unsigned long long count = 0;
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (1u << 24); i += stride) {
    const uint32_t bits = (chunk << 24) | i;
    const float x = ts_bits_float(bits);
    if (ts_float_bits(ts_weight_of_logit(x)) != ts_float_bits(ts_weight_of_logit_branchless(x))) {
      ++count;
      atomicMin(first, bits);
    }
  }
  if (count) atomicAdd(differ, count);
}

// ts_division_branchless against the IEEE division (TS_DIV) wherever ts_division_in_range holds:
// the dividend is each 32-bit pattern of this chunk (those in range: about 10^9 of 2^32), the
// divisor a hash of it with an exponent in [-60, 60] (even chunks) or [-60, 3] (odd chunks: the
// renormalisation's sums, at most 8).
__global__ void division_kernel(uint32_t chunk, unsigned long long* pairs, unsigned long long* differ,
                                unsigned int* first) {
  unsigned long long tested = 0, count = 0;
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (1u << 24); i += stride) {
    const uint32_t bits = (chunk << 24) | i;
    uint32_t h = bits * 0x9e3779b1u;
    h ^= h >> 15;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    const uint32_t exponent = (chunk & 1u) ? (h >> 23) % 64u : (h >> 23) % 121u;  // + (-60)
    const float d = ts_bits_float(((exponent + 67u) << 23) | (h & 0x7fffffu));
    const float n = ts_bits_float(bits);
    if (!ts_division_in_range(n, d)) continue;
    ++tested;
    if (ts_float_bits(ts_division_branchless(n, d)) != ts_float_bits(TS_DIV(n, d))) {
      ++count;
      atomicMin(first, bits);
    }
  }
  atomicAdd(pairs, tested);
  if (count) atomicAdd(differ, count);
}

int main() {
  unsigned long long* differ;
  unsigned int* first;
  if (cudaMallocManaged(&differ, sizeof *differ) != cudaSuccess ||
      cudaMallocManaged(&first, sizeof *first) != cudaSuccess) {
    printf("{\"error\": \"no CUDA device\"}\n");
    return 2;
  }
  *differ = 0;
  *first = 0xffffffffu;
  unsigned long long *pairs, *division_differ;
  unsigned int* division_first;
  if (cudaMallocManaged(&pairs, sizeof *pairs) != cudaSuccess ||
      cudaMallocManaged(&division_differ, sizeof *division_differ) != cudaSuccess ||
      cudaMallocManaged(&division_first, sizeof *division_first) != cudaSuccess) {
    printf("{\"error\": \"no CUDA device\"}\n");
    return 2;
  }
  *pairs = 0;
  *division_differ = 0;
  *division_first = 0xffffffffu;
  for (uint32_t chunk = 0; chunk < 256; ++chunk) {
    compare_kernel<<<1024, 256>>>(chunk, differ, first);
    division_kernel<<<1024, 256>>>(chunk, pairs, division_differ, division_first);
  }
  if (cudaDeviceSynchronize() != cudaSuccess) {
    printf("{\"error\": \"kernel failed\"}\n");
    return 2;
  }
  printf(
      "{\"inputs\": 4294967296, \"differ\": %llu, \"first\": \"0x%08x\", \"division_pairs\": %llu, "
      "\"division_differ\": %llu, \"division_first\": \"0x%08x\"}\n",
      *differ, *first, *pairs, *division_differ, *division_first);
  return *differ == 0 && *division_differ == 0 ? 0 : 1;
}
