// tests/sigmoid_branchless.cu: the exhaustive check behind ts_weight_of_logit_branchless
// (hip/semantics.h), the weights the warp kernel's Small form computes several at a time. Runs it
// and ts_weight_of_logit on every one of the 2^32 fp32 bit patterns (every bf16 and fp16 logit
// is one of them) on the GPU it runs on and prints one JSON line with the number of inputs whose
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
  for (uint32_t chunk = 0; chunk < 256; ++chunk) compare_kernel<<<1024, 256>>>(chunk, differ, first);
  if (cudaDeviceSynchronize() != cudaSuccess) {
    printf("{\"error\": \"kernel failed\"}\n");
    return 2;
  }
  printf("{\"inputs\": 4294967296, \"differ\": %llu, \"first\": \"0x%08x\"}\n", *differ, *first);
  return *differ == 0 ? 0 : 1;
}
