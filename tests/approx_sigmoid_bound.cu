// tests/approx_sigmoid_bound.cu: the exhaustive check behind the bias prefilter
// (hip/bias_prefilter.hpp). Runs ts_sigmoid_prefilter and the exact ts_sigmoid on every one of
// the 2^32 fp32 bit patterns (every bf16 and fp16 logit is one of them) on the GPU it runs on
// and prints one JSON line: the largest |exact - approx| over non-NaN inputs, in units of
// 2^-16 (the bound is 2^-20 = 1/16 of a unit), and the count of inputs that break the prefilter's other assumptions (NaN in exactly
// one of the two, approx outside [0, 1]). tests/gpu.test.ts compiles and runs it with nvcc and
// requires max <= kTsPrefilterSigmoidBound / 4 and no breaks.
//   nvcc -O3 -std=c++17 -arch=sm_90 -I hip tests/approx_sigmoid_bound.cu -o /tmp/bound && /tmp/bound
#include <cstdio>

#include "bias_prefilter.hpp"

__global__ void bound_kernel(uint32_t chunk, unsigned int* max_err_bits, unsigned long long* breaks) {
  float worst = 0.0f;
  unsigned long long broken = 0;
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (1u << 24); i += stride) {
    const float x = ts_bits_float((chunk << 24) | i);
    const float exact = ts_sigmoid(x);
    const float approx = ts_sigmoid_prefilter(x);
    const bool nan_exact = ts_isnan(exact), nan_approx = ts_isnan(approx);
    if (nan_exact != nan_approx || ts_isnan(x) != nan_exact) {
      ++broken;
      continue;
    }
    if (nan_exact) continue;
    if (!(approx >= 0.0f && approx <= 1.0f)) ++broken;
    const float err = fabsf(exact - approx);  // both in [0, 1]: the difference is exact enough
    worst = err > worst ? err : worst;
  }
  atomicMax(max_err_bits, __float_as_uint(worst));  // non-negative floats order as their bits
  if (broken) atomicAdd(breaks, broken);
}

int main() {
  unsigned int* d_max = nullptr;
  unsigned long long* d_breaks = nullptr;
  if (cudaMalloc(&d_max, sizeof *d_max) != cudaSuccess || cudaMalloc(&d_breaks, sizeof *d_breaks) != cudaSuccess) {
    std::printf("{\"error\":\"no device memory\"}\n");
    return 2;
  }
  cudaMemset(d_max, 0, sizeof *d_max);
  cudaMemset(d_breaks, 0, sizeof *d_breaks);
  for (uint32_t chunk = 0; chunk < 256; ++chunk) bound_kernel<<<1024, 256>>>(chunk, d_max, d_breaks);
  unsigned int max_bits = 0;
  unsigned long long breaks = 0;
  cudaMemcpy(&max_bits, d_max, sizeof max_bits, cudaMemcpyDeviceToHost);
  const cudaError_t err = cudaMemcpy(&breaks, d_breaks, sizeof breaks, cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) {
    std::printf("{\"error\":\"%s\"}\n", cudaGetErrorString(err));
    return 2;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const float max_err = ts_bits_float(max_bits);
  std::printf("{\"device\":\"%s\",\"inputs\":4294967296,\"max_abs_error\":%.9g,\"max_in_units_of_2^-16\":%.6f,"
              "\"bound_in_units_of_2^-16\":%.6f,\"breaks\":%llu}\n",
              prop.name, max_err, max_err * 65536.0, kTsPrefilterSigmoidBound * 65536.0, breaks);
  return max_err <= kTsPrefilterSigmoidBound / 4 && breaks == 0 ? 0 : 1;
}
