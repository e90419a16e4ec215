// bench/latency_probe.cu: the latency floor of any router kernel on this GPU. Graph replay of
// kernels that do no routing at all: (a) empty, (b) each warp reads one row of logits and
// writes k weights + k indices, with the same input rotation as bench/run.ts (so small inputs
// are L2-resident and larger ones come from HBM). A routing kernel cannot beat (b). Each is timed
// launched plainly and as a programmatic dependent launch (sm_90+: the kernel waits for the one
// before it with griddepcontrol.wait, then lets the next launch), as this library launches its
// kernels (hip/dependent_launch.hpp); (b) also as a dependent launch whose warps first hint the
// L2 at their row (prefetch.global.L2 of each 32-byte sector before the wait, as the library's
// small grids do), so that a kernel started early behind the one before it finds its row on chip.
//   nvcc -O3 -arch=sm_90 bench/latency_probe.cu -o /tmp/latency_probe && /tmp/latency_probe
#include <cstdio>
#include <cstdint>
#include <vector>
#include <algorithm>
#include <cstdlib>
#include <cuda_runtime.h>

#include "graph_timing.cuh"

__device__ __forceinline__ void await_prior_grid() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__global__ void empty_kernel() { await_prior_grid(); }

// One warp per token: lane l reads 16 bytes of the row, the warp combines them (one shuffle
// step, so the read is used) and lanes 0..k-1 write a weight and an index.
template <bool Hint>
__global__ void read_write_kernel(const uint4* logits, int row_vec, int tokens, int k, float* w, int* idx) {
  const int token = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (Hint && token < tokens && 2 * lane < row_vec)  // one 32-byte sector per lane
    asm volatile("prefetch.global.L2 [%0];" ::"l"(logits + static_cast<int64_t>(token) * row_vec + 2 * lane));
  await_prior_grid();
  if (token >= tokens) return;
  uint32_t x = 0;
  if (lane < row_vec) {
    const uint4 v = logits[static_cast<int64_t>(token) * row_vec + lane];
    x = v.x ^ v.y ^ v.z ^ v.w;
  }
  x = max(x, __shfl_xor_sync(0xffffffffu, x, 1));
  if (lane < k) {
    w[token * k + lane] = __uint_as_float(x & 0x3f7fffffu);
    idx[token * k + lane] = static_cast<int>(x & 63);
  }
}

// Launches kernel plainly, or with the programmatic-dependent-launch attribute.
template <typename... Params, typename... Args>
void launch(bool dependent, void (*kernel)(Params...), int grid, int block, cudaStream_t s, Args... args) {
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(grid);
  config.blockDim = dim3(block);
  config.stream = s;
  config.attrs = attribute;
  config.numAttrs = dependent ? 1 : 0;
  if (cudaLaunchKernelEx(&config, kernel, args...) != cudaSuccess) std::abort();
}

int main() {
  cudaStream_t s;
  cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  auto empty = [&](bool dependent) {
    return graph_median_us(s, 200, [&](int) { launch(dependent, empty_kernel, 1, 32, s); });
  };
  printf("empty kernel: %.2f us (dependent launch: %.2f us)\n", empty(false), empty(true));
  float* w;
  int* idx;
  cudaMalloc(&w, 65536 * 8 * 4);
  cudaMalloc(&idx, 65536 * 8 * 4);
  const int experts_list[] = {8, 64, 256, 512};
  const int tokens_list[] = {1, 16, 64, 256};
  for (int e : experts_list) {
    for (int t : tokens_list) {
      const size_t bytes = static_cast<size_t>(t) * std::max(e * 2, 16);
      const int copies = static_cast<int>(std::min<size_t>(256, (128u << 20) / bytes + 1));
      uint8_t* buf;
      cudaMalloc(&buf, bytes * copies);
      cudaMemset(buf, 0x3c, bytes * copies);
      const int row_vec = std::max(1, e * 2 / 16);
      const int blocks = (t + 7) / 8;
      auto floor = [&](bool dependent, bool hint) {
        return graph_median_us(s, copies, [&](int i) {
          const uint4* rows = reinterpret_cast<const uint4*>(buf + bytes * (i % copies));
          launch(dependent, hint ? read_write_kernel<true> : read_write_kernel<false>, blocks, 256, s, rows, row_vec, t,
                 8, w, idx);
        });
      };
      const float plain = floor(false, false);
      const float dependent = floor(true, false);
      printf(
          "read+write floor: E=%d T=%d bf16 (%d rotating copies of %zu bytes): %.2f us (dependent launch: %.2f us, "
          "with the L2 hint: %.2f us)\n",
          e, t, copies, bytes, plain, dependent, floor(true, true));
      cudaFree(buf);
    }
  }
  return 0;
}
