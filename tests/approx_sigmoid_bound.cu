// tests/approx_sigmoid_bound.cu: the exhaustive check behind the bias kernels' cheap sigmoids.
// Runs, on every one of the 2^32 fp32 bit patterns (every bf16 and fp16 logit is one of them) on
// the GPU it runs on, the exact ts_sigmoid against
//  - the prefilter's ts_sigmoid_prefilter (hip/bias_prefilter.hpp; two MUFU instructions), and
//  - the split bias kernel's pass-1 score 0.5 + 0.5 ts_tanh_half_approx(x) (kernel_split_bias.hpp,
//    Select; one MUFU instruction), its error taken in double so the check adds no rounding,
// and prints one JSON line: each one's largest |exact - approx| over non-NaN inputs (the first also
// in units of 2^-16: the bound is 2^-20 = 1/16 of a unit), and the count of inputs that break
// the kernels' other assumptions (NaN in exactly one of the pair, an approximation outside
// [0, 1], a tanh outside [-1, 1]). tests/gpu.test.ts compiles and runs it with nvcc and requires
// max <= kTsPrefilterSigmoidBound / 4, tanh max <= kTsTanhScoreBound / 2 and no breaks.
//   nvcc -O3 -std=c++17 -arch=sm_90 -I hip tests/approx_sigmoid_bound.cu -o /tmp/bound && /tmp/bound
#include <cmath>
#include <cstdio>
#include <cstring>

#include "bias_prefilter.hpp"

__global__ void bound_kernel(uint32_t chunk, unsigned int* max_err_bits, unsigned long long* max_tanh_err_bits,
                             unsigned long long* breaks) {
  float worst = 0.0f;
  double worst_tanh = 0.0;
  unsigned long long broken = 0;
  const uint32_t stride = gridDim.x * blockDim.x;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (1u << 24); i += stride) {
    const float x = ts_bits_float((chunk << 24) | i);
    const float exact = ts_sigmoid(x);
    const float approx = ts_sigmoid_prefilter(x);
    const float t = ts_tanh_half_approx(x);
    const bool nan_exact = ts_isnan(exact), nan_approx = ts_isnan(approx), nan_t = ts_isnan(t);
    if (nan_exact != nan_approx || nan_exact != nan_t || ts_isnan(x) != nan_exact) {
      ++broken;
      continue;
    }
    if (nan_exact) continue;
    if (!(approx >= 0.0f && approx <= 1.0f) || !(t >= -1.0f && t <= 1.0f)) ++broken;
    const float err = fabsf(exact - approx);  // both in [0, 1]: the difference is exact enough
    worst = err > worst ? err : worst;
    const double err_tanh = fabs(0.5 + 0.5 * static_cast<double>(t) - static_cast<double>(exact));
    worst_tanh = err_tanh > worst_tanh ? err_tanh : worst_tanh;
  }
  // Non-negative floats and doubles order as their bits.
  atomicMax(max_err_bits, __float_as_uint(worst));
  atomicMax(max_tanh_err_bits, static_cast<unsigned long long>(__double_as_longlong(worst_tanh)));
  if (broken) atomicAdd(breaks, broken);
}

int main() {
  unsigned int* d_max = nullptr;
  unsigned long long *d_max_tanh = nullptr, *d_breaks = nullptr;
  if (cudaMalloc(&d_max, sizeof *d_max) != cudaSuccess || cudaMalloc(&d_max_tanh, sizeof *d_max_tanh) != cudaSuccess ||
      cudaMalloc(&d_breaks, sizeof *d_breaks) != cudaSuccess) {
    std::printf("{\"error\":\"no device memory\"}\n");
    return 2;
  }
  cudaMemset(d_max, 0, sizeof *d_max);
  cudaMemset(d_max_tanh, 0, sizeof *d_max_tanh);
  cudaMemset(d_breaks, 0, sizeof *d_breaks);
  for (uint32_t chunk = 0; chunk < 256; ++chunk) bound_kernel<<<1024, 256>>>(chunk, d_max, d_max_tanh, d_breaks);
  unsigned int max_bits = 0;
  unsigned long long max_tanh_bits = 0, breaks = 0;
  cudaMemcpy(&max_bits, d_max, sizeof max_bits, cudaMemcpyDeviceToHost);
  cudaMemcpy(&max_tanh_bits, d_max_tanh, sizeof max_tanh_bits, cudaMemcpyDeviceToHost);
  const cudaError_t err = cudaMemcpy(&breaks, d_breaks, sizeof breaks, cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) {
    std::printf("{\"error\":\"%s\"}\n", cudaGetErrorString(err));
    return 2;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  const float max_err = ts_bits_float(max_bits);
  double max_tanh = 0.0;
  static_assert(sizeof max_tanh == sizeof max_tanh_bits, "64-bit double");
  std::memcpy(&max_tanh, &max_tanh_bits, sizeof max_tanh);
  std::printf("{\"device\":\"%s\",\"inputs\":4294967296,\"max_abs_error\":%.9g,\"max_in_units_of_2^-16\":%.6f,"
              "\"bound_in_units_of_2^-16\":%.6f,\"tanh_max_abs_error\":%.9g,\"tanh_max_log2\":%.4f,"
              "\"tanh_bound\":%.9g,\"breaks\":%llu}\n",
              prop.name, max_err, max_err * 65536.0, kTsPrefilterSigmoidBound * 65536.0, max_tanh,
              max_tanh > 0.0 ? std::log2(max_tanh) : -1e9, static_cast<double>(kTsTanhScoreBound), breaks);
  return max_err <= kTsPrefilterSigmoidBound / 4 && max_tanh <= kTsTanhScoreBound / 2 && breaks == 0 ? 0 : 1;
}
