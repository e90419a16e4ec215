// bench/load_probe.cu: how fast the largest E=128 batch's bytes can move at all, without any
// routing. T=65536 rows of 128 bf16 logits (256 bytes) and 64 bytes written per token (8
// weights + 8 indices), the bytes of the benchmark's E=128 bandwidth row; graph replay of 40
// launches over 8 rotating copies of the rows (134 MB, past the L2), median of 15 samples.
// Every kernel reads each row once and writes a token's 64 bytes from it, so the time is the
// memory side of a routing kernel of that batch:
//   - one-shot, loads: the vector select kernel's pattern (4 lanes per token, 8 tokens per
//     warp, each lane 4 x 16 bytes) in a grid of 1024 blocks of 256 threads, every warp
//     loading once, as the library's E=128 kernel does at T=65536;
//   - one-shot, bulk copy: the same grid, the rows copied into shared memory by the copy
//     engine (cp.async.bulk completing on an mbarrier, sm_90), 2 KB per warp or 16 KB per block;
//   - persistent, G groups per warp: a quarter, an eighth ... of the warps, each loading its
//     next group's rows (into registers, or into a second shared-memory stage by bulk copy)
//     before it finishes the current one;
// and, for scale, an empty kernel and a device-to-device copy of one copy of the rows (16.8 MB
// read and written) in the same graph form. BENCHMARKS.md, What limits, quotes its output.
//   nvcc -O3 -arch=sm_90 bench/load_probe.cu -o /tmp/load_probe && /tmp/load_probe
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "graph_timing.cuh"

constexpr int kTokens = 65536;
constexpr int kRowVectors = 16;    // 16-byte vectors per row (E=128 bf16)
constexpr int kTokensPerWarp = 8;  // 4 lanes per token
constexpr int kBlock = 256;        // 8 warps
constexpr int kWarpBytes = kTokensPerWarp * kRowVectors * 16;

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// One bulk copy of `bytes` into shared memory, completing on the (re)initialised barrier `bar`
// (parity 0). Called by one thread.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
#if __CUDA_ARCH__ >= 900
  const uint32_t b = shared_address(bar);
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(b));
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(b), "r"(bytes) : "memory");
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   shared_address(dst)),
               "l"(src), "r"(bytes), "r"(b)
               : "memory");
#endif
}

__device__ __forceinline__ void bulk_wait(uint64_t* bar) {
#if __CUDA_ARCH__ >= 900
  asm volatile(
      "{ .reg .pred p; WAIT%=: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], 0; @!p bra WAIT%=; }" ::"r"(
          shared_address(bar))
      : "memory");
#endif
}

// The 4 vectors lane (g, l) of a warp holds: 64 bytes of token g's row, as the kernel loads them.
__device__ __forceinline__ int vector_of(int t0, int lane, int c) {
  return (t0 + (lane >> 2)) * kRowVectors + c * 4 + (lane & 3);
}

// Uses every loaded word (so no load is dropped) and writes the token's 8 weights and 8 indices.
__device__ __forceinline__ void write_token(const uint4 (&v)[4], int t0, int lane, float* w, int* idx) {
  uint32_t x = 0;
#pragma unroll
  for (int c = 0; c < 4; ++c) x ^= v[c].x ^ v[c].y ^ v[c].z ^ v[c].w;
  x ^= __shfl_xor_sync(0xffffffffu, x, 1);
  x ^= __shfl_xor_sync(0xffffffffu, x, 2);
  const int token = t0 + (lane >> 2), slot = token * 8 + (lane & 3) * 2;
  w[slot] = __uint_as_float(x & 0x3f7fffffu);
  w[slot + 1] = 1.0f;
  idx[slot] = static_cast<int>(x & 127u);
  idx[slot + 1] = lane & 3;
}

__global__ void empty_kernel() {}

__global__ void __launch_bounds__(kBlock, 8) one_shot_loads(const uint4* __restrict__ rows, float* w, int* idx) {
  const int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x & 31;
  const int t0 = warp * kTokensPerWarp;
  uint4 v[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) v[c] = rows[vector_of(t0, lane, c)];
  write_token(v, t0, lane, w, idx);
}

template <bool PerBlock>
__global__ void __launch_bounds__(kBlock, 8) one_shot_bulk(const uint4* __restrict__ rows, float* w, int* idx) {
  __shared__ alignas(128) uint4 stage[8][kWarpBytes / 16];
  __shared__ alignas(8) uint64_t bar[8];
  const int warp_in_block = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int t0 = (blockIdx.x * 8 + warp_in_block) * kTokensPerWarp;
  if (PerBlock) {
    if (threadIdx.x == 0) bulk_copy(stage, rows + blockIdx.x * 8 * kTokensPerWarp * kRowVectors, 8 * kWarpBytes, bar);
    __syncthreads();
    bulk_wait(bar);
  } else {
    if (lane == 0) bulk_copy(stage[warp_in_block], rows + t0 * kRowVectors, kWarpBytes, &bar[warp_in_block]);
    __syncwarp();
    bulk_wait(&bar[warp_in_block]);
  }
  uint4 v[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) v[c] = stage[warp_in_block][vector_of(0, lane, c)];
  write_token(v, t0, lane, w, idx);
}

// Persistent warps, G groups each (grid stride): the next group's loads issued before the current
// group is written.
template <int G>
__global__ void __launch_bounds__(kBlock) persistent_loads(const uint4* __restrict__ rows, float* w, int* idx) {
  const int warps = gridDim.x * 8, warp = blockIdx.x * 8 + threadIdx.x / 32, lane = threadIdx.x & 31;
  uint4 next[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) next[c] = rows[vector_of(warp * kTokensPerWarp, lane, c)];
#pragma unroll 1
  for (int i = 0; i < G; ++i) {
    const int t0 = (warp + i * warps) * kTokensPerWarp;
    uint4 v[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) v[c] = next[c];
    if (i + 1 < G) {
#pragma unroll
      for (int c = 0; c < 4; ++c) next[c] = rows[vector_of(t0 + warps * kTokensPerWarp, lane, c)];
    }
    write_token(v, t0, lane, w, idx);
  }
}

template <int G>
__global__ void __launch_bounds__(kBlock) persistent_bulk(const uint4* __restrict__ rows, float* w, int* idx) {
  __shared__ alignas(128) uint4 stage[8][2][kWarpBytes / 16];
  __shared__ alignas(8) uint64_t bar[8][2];
  const int warp_in_block = threadIdx.x / 32, lane = threadIdx.x & 31;
  const int warps = gridDim.x * 8, warp = blockIdx.x * 8 + warp_in_block;
  if (lane == 0)
    bulk_copy(stage[warp_in_block][0], rows + warp * kTokensPerWarp * kRowVectors, kWarpBytes, &bar[warp_in_block][0]);
#pragma unroll 1
  for (int i = 0; i < G; ++i) {
    const int t0 = (warp + i * warps) * kTokensPerWarp, s = i & 1;
    if (lane == 0 && i + 1 < G)
      bulk_copy(stage[warp_in_block][s ^ 1], rows + (t0 + warps * kTokensPerWarp) * kRowVectors, kWarpBytes,
                &bar[warp_in_block][s ^ 1]);
    __syncwarp();
    bulk_wait(&bar[warp_in_block][s]);
    uint4 v[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) v[c] = stage[warp_in_block][s][vector_of(0, lane, c)];
    __syncwarp();  // every lane has read stage s before lane 0 refills it
    write_token(v, t0, lane, w, idx);
  }
}

int main() {
  constexpr int kCopies = 8, kCalls = 40;
  constexpr size_t kRowBytes = static_cast<size_t>(kTokens) * kRowVectors * 16;
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    std::printf("load_probe: no CUDA device\n");
    return 1;
  }
  uint8_t* rows = nullptr;
  uint8_t* copy_dst = nullptr;
  float* w = nullptr;
  int* idx = nullptr;
  cudaMalloc(&rows, kRowBytes * kCopies);
  cudaMalloc(&copy_dst, kRowBytes * kCopies);
  cudaMalloc(&w, kTokens * 8 * sizeof(float));
  cudaMalloc(&idx, kTokens * 8 * sizeof(int));
  std::vector<uint8_t> host(kRowBytes * kCopies);
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);  // not zeros
  cudaMemcpy(rows, host.data(), host.size(), cudaMemcpyHostToDevice);
  cudaStream_t stream;
  cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
  std::printf("# %s, %d SMs; T=%d E=128 bf16 rows, 64 bytes written per token; graph replay of %d launches over %d copies\n",
              prop.name, prop.multiProcessorCount, kTokens, kCalls, kCopies);
  const double moved = static_cast<double>(kRowBytes) + kTokens * 64.0;
  auto copy_of = [&](int i) { return reinterpret_cast<const uint4*>(rows + kRowBytes * (i % kCopies)); };
  auto timed = [&](const char* name, double bytes, auto launch_one) {
    const float us = graph_median_us(stream, kCalls, launch_one);
    if (bytes > 0) std::printf("%-40s %7.2f us  %.2f TB/s\n", name, us, bytes / us / 1e6);
    else std::printf("%-40s %7.2f us\n", name, us);
  };
  const int one_shot_grid = kTokens / (8 * kTokensPerWarp);
  timed("empty kernel", 0, [&](int) { empty_kernel<<<1, 32, 0, stream>>>(); });
  timed("device copy of the rows (read + write)", 2.0 * kRowBytes, [&](int i) {
    cudaMemcpyAsync(copy_dst + kRowBytes * (i % kCopies), rows + kRowBytes * ((i + 3) % kCopies), kRowBytes,
                    cudaMemcpyDeviceToDevice, stream);
  });
  timed("one-shot, loads", moved, [&](int i) { one_shot_loads<<<one_shot_grid, kBlock, 0, stream>>>(copy_of(i), w, idx); });
  timed("one-shot, bulk copy 2 KB per warp", moved,
        [&](int i) { one_shot_bulk<false><<<one_shot_grid, kBlock, 0, stream>>>(copy_of(i), w, idx); });
  timed("one-shot, bulk copy 16 KB per block", moved,
        [&](int i) { one_shot_bulk<true><<<one_shot_grid, kBlock, 0, stream>>>(copy_of(i), w, idx); });
  timed("persistent, loads, 2 groups per warp", moved,
        [&](int i) { persistent_loads<2><<<one_shot_grid / 2, kBlock, 0, stream>>>(copy_of(i), w, idx); });
  timed("persistent, loads, 4 groups per warp", moved,
        [&](int i) { persistent_loads<4><<<one_shot_grid / 4, kBlock, 0, stream>>>(copy_of(i), w, idx); });
  timed("persistent, bulk copy, 2 groups per warp", moved,
        [&](int i) { persistent_bulk<2><<<one_shot_grid / 2, kBlock, 0, stream>>>(copy_of(i), w, idx); });
  timed("persistent, bulk copy, 4 groups per warp", moved,
        [&](int i) { persistent_bulk<4><<<one_shot_grid / 4, kBlock, 0, stream>>>(copy_of(i), w, idx); });
  const cudaError_t err = cudaDeviceSynchronize();
  std::printf("%s\n", err == cudaSuccess ? "ok" : cudaGetErrorString(err));
  return err == cudaSuccess ? 0 : 1;
}
