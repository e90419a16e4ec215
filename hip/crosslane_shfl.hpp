// crosslane_shfl.hpp: the warp-shuffle cross-lane policy (NVIDIA; AMD wave32/wave64 through
// HIP's __shfl). A policy gives the kernel template (kernel_warp.hpp) three group operations
// over an aligned group of W lanes of one wavefront:
//   max(u32) / max(u64): the unsigned maximum over the group, returned to every lane of it;
//   read(v, src):        lane src's value (src group-relative and uniform within the group);
//   read_sub(v, src, w): the same within each aligned w-lane segment of the group (kSubgroupRead:
//                        lets the kernel finish several tokens in one epilogue);
//   sum(u32):            the group's sum, to every lane (kGroupSum: lets the kernel verify a
//                        selection made from truncated lane lists);
//   xor_read(key, off):  the key of lane ^ off (kXorRead: lets small batches merge whole lane
//                        lists in log2(W) steps instead of k rounds).
// On sm_80+ a whole-warp u32 max is one redux.sync (the packed (value, index) keys of
// semantics.h make arg-max a plain max); the u64 max is two: the high words, then the low words
// of the lanes holding the winning high word. Narrower groups use an xor-shuffle butterfly.
#ifndef TOPK_SIGMOID_CROSSLANE_SHFL_HPP
#define TOPK_SIGMOID_CROSSLANE_SHFL_HPP

#include <stdint.h>

#include "gpu_compat.h"

struct ShflPolicy {
  static constexpr bool kSubgroupRead = true;
  static constexpr bool kGroupSum = true;
  static constexpr bool kXorRead = true;
  template <int W>
  struct Group {
#if defined(TS_PLATFORM_CUDA)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    static constexpr bool kRedux = true;  // redux.sync exists from sm_80
#else
    static constexpr bool kRedux = false;
#endif
    unsigned mask;
    __device__ explicit Group(int lane_in_wave)
        : mask(W == 32 ? 0xffffffffu : (((1u << W) - 1u) << (lane_in_wave & ~(W - 1)))) {}
    // redux.sync only for whole warps: groups with different masks in one warp serialise
    // (measured on H200: E=64, four 8-lane groups per warp, 1.9 us slower at T=256 than a
    // butterfly), so narrower groups use xor shuffles.
    __device__ uint32_t max(uint32_t v) const {
      if constexpr (kRedux && W == 32) {
        return __reduce_max_sync(mask, v);
      } else {
#pragma unroll
        for (int off = W / 2; off > 0; off >>= 1) {
          const uint32_t o = __shfl_xor_sync(mask, v, off, W);
          v = o > v ? o : v;
        }
        return v;
      }
    }
    __device__ uint64_t max(uint64_t v) const {
      if constexpr (kRedux && W == 32) {
        const uint32_t hi = __reduce_max_sync(mask, static_cast<uint32_t>(v >> 32));
        const uint32_t lo_in = static_cast<uint32_t>(v >> 32) == hi ? static_cast<uint32_t>(v) : 0u;
        const uint32_t lo = __reduce_max_sync(mask, lo_in);
        return (static_cast<uint64_t>(hi) << 32) | lo;
      } else {
#pragma unroll
        for (int off = W / 2; off > 0; off >>= 1) {
          const uint64_t o = __shfl_xor_sync(mask, static_cast<unsigned long long>(v), off, W);
          v = o > v ? o : v;
        }
        return v;
      }
    }
    __device__ uint32_t sum(uint32_t v) const {
      if constexpr (kRedux && W == 32) {
        return __reduce_add_sync(mask, v);
      } else {
#pragma unroll
        for (int off = W / 2; off > 0; off >>= 1) v += __shfl_xor_sync(mask, v, off, W);
        return v;
      }
    }
    __device__ float read(float v, int src) const { return W == 1 ? v : __shfl_sync(mask, v, src, W); }
    __device__ float read_sub(float v, int src, int width) const {
      return W == 1 ? v : __shfl_sync(mask, v, src, width);
    }
    __device__ uint32_t xor_read(uint32_t v, int offset) const { return __shfl_xor_sync(mask, v, offset, W); }
    __device__ uint64_t xor_read(uint64_t v, int offset) const {
      return __shfl_xor_sync(mask, static_cast<unsigned long long>(v), offset, W);
    }
#else  // HIP: __shfl_* act on the whole wavefront, width W keeps them inside the group
    __device__ explicit Group(int) {}
    __device__ uint32_t max(uint32_t v) const {
#pragma unroll
      for (int off = W / 2; off > 0; off >>= 1) {
        const uint32_t o = static_cast<uint32_t>(__shfl_xor(static_cast<int>(v), off, W));
        v = o > v ? o : v;
      }
      return v;
    }
    __device__ uint64_t max(uint64_t v) const {
#pragma unroll
      for (int off = W / 2; off > 0; off >>= 1) {
        const uint32_t ohi = static_cast<uint32_t>(__shfl_xor(static_cast<int>(v >> 32), off, W));
        const uint32_t olo = static_cast<uint32_t>(__shfl_xor(static_cast<int>(v), off, W));
        const uint64_t o = (static_cast<uint64_t>(ohi) << 32) | olo;
        v = o > v ? o : v;
      }
      return v;
    }
    __device__ uint32_t sum(uint32_t v) const {
#pragma unroll
      for (int off = W / 2; off > 0; off >>= 1) v += static_cast<uint32_t>(__shfl_xor(static_cast<int>(v), off, W));
      return v;
    }
    __device__ float read(float v, int src) const { return W == 1 ? v : __shfl(v, src, W); }
    __device__ float read_sub(float v, int src, int width) const { return W == 1 ? v : __shfl(v, src, width); }
    __device__ uint32_t xor_read(uint32_t v, int offset) const {
      return static_cast<uint32_t>(__shfl_xor(static_cast<int>(v), offset, W));
    }
    __device__ uint64_t xor_read(uint64_t v, int offset) const {
      const uint32_t hi = xor_read(static_cast<uint32_t>(v >> 32), offset);
      return (static_cast<uint64_t>(hi) << 32) | xor_read(static_cast<uint32_t>(v), offset);
    }
#endif
  };
};

#endif  // TOPK_SIGMOID_CROSSLANE_SHFL_HPP
