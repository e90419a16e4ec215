// kernel_warp.hpp: the register-resident top-k kernel, one template for every vendor.
// A group of W lanes routes one token (W divides the wavefront; several tokens per wavefront
// for small E). Lane l holds experts [l*V, l*V + V) in registers as packed (value, index) keys
// (keys.hpp), so each of the k rounds is: group max of the lanes' best keys (the Policy's one
// cross-lane step), the owner drops that key and rescans its V keys. Lane r keeps round r's
// winner, reloads that one logit for its weight (sigmoid only k times per token without bias),
// and the rank-order sum for renormalisation is read lane by lane so every backend adds in the
// same order. Only Policy differs between NVIDIA (shuffles/redux) and AMD gfx9 (DPP).
#ifndef TOPK_SIGMOID_KERNEL_WARP_HPP
#define TOPK_SIGMOID_KERNEL_WARP_HPP

#include "gpu_compat.h"
#include "keys.hpp"

constexpr int kWarpBlock = 256;

// The wavefront size of the device code being compiled (64 on gfx9, 32 on NVIDIA / RDNA).
#if defined(__AMDGCN_WAVEFRONT_SIZE)
#define TS_WAVE __AMDGCN_WAVEFRONT_SIZE
#elif defined(TS_PLATFORM_HIP)
#define TS_WAVE 64
#else
#define TS_WAVE 32
#endif

struct ts_kernel_args {
  const void* logits;
  int64_t tokens;
  int64_t row_stride;
  const float* bias;
  float* weights;
  int32_t* indices;
  int32_t experts;
  int32_t k;
  int32_t renormalize;
  float scale;
  int32_t vector_loads;  // rows are 16-byte aligned and E * elem is a multiple of 16
};

template <class Key>
__device__ __forceinline__ Key ts_umax(Key a, Key b) {
  return a > b ? a : b;
}

template <class Policy, int Dtype, int W, int V, bool HasBias>
__global__ void __launch_bounds__(kWarpBlock) ts_warp_kernel(const ts_kernel_args a) {
  using Raw = typename ts_input<Dtype>::Raw;
  using K = ts_keys<Dtype, HasBias>;
  using Key = typename K::Key;
  constexpr int kGroups = kWarpBlock / W;
  constexpr int kPerVector = 16 / sizeof(Raw);
  static_assert(V % kPerVector == 0, "a lane's slice is whole 16-byte vectors");
  static_assert(W <= TS_WAVE_SIZE_MAX, "a group fits in one wavefront");

  const int lane = threadIdx.x & (W - 1);
  const int experts = a.experts;
  const int base = lane * V;
  const typename Policy::template Group<W> group(static_cast<int>(threadIdx.x % TS_WAVE));

  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kGroups; first < a.tokens;
       first += static_cast<int64_t>(gridDim.x) * kGroups) {
    const int64_t token = first + threadIdx.x / W;
    if (token >= a.tokens) break;  // the whole group leaves together
    const Raw* row = static_cast<const Raw*>(a.logits) + token * a.row_stride;

    Raw raw[V];
    if (a.vector_loads) {
#pragma unroll
      for (int c = 0; c < V / kPerVector; ++c) {
        const int e0 = base + c * kPerVector;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (e0 < experts) v = *reinterpret_cast<const uint4*>(row + e0);
        __builtin_memcpy(&raw[c * kPerVector], &v, 16);
      }
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) raw[j] = base + j < experts ? row[base + j] : Raw(0);
    }

    Key keys[V];
    Key best = 0;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const int e = base + j;
      keys[j] = e < experts ? K::make(raw[j], HasBias ? a.bias[e] : 0.0f, static_cast<uint32_t>(e)) : Key(0);
      best = ts_umax(best, keys[j]);
    }

    // k rounds of group arg-max. Keys are distinct, so exactly one lane owns each winner.
    Key mine = 0;
    for (int r = 0; r < a.k; ++r) {
      const Key winner = group.max(best);
      if (lane == r) mine = winner;
      if (best == winner) {
        best = 0;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          keys[j] = keys[j] == winner ? Key(0) : keys[j];
          best = ts_umax(best, keys[j]);
        }
      }
    }

    float w = 0.0f;
    uint32_t index = 0;
    if (lane < a.k) {
      index = ts_key_index(static_cast<uint32_t>(mine));
      w = ts_weight_of_logit(ts_input<Dtype>::to_float(row[index]));
    }
    float sum = 0.0f;
    if (a.renormalize) {
      for (int r = 0; r < a.k; ++r) sum = TS_ADD(sum, group.read(w, r));
    }
    if (lane < a.k) {
      const int64_t o = token * a.k + lane;
      a.weights[o] = ts_final_weight(w, sum, a.renormalize != 0, a.scale);
      a.indices[o] = static_cast<int32_t>(index);
    }
  }
}

// Group width W and values per lane V for E experts and k on a wavefront of `wave` lanes:
// the narrowest power-of-two group with W >= k (lane r keeps rank r) and W * V >= E, V >= 8
// (16-byte loads of 16-bit logits).
struct ts_warp_shape {
  int w;
  int v;
};
inline ts_warp_shape ts_pick_warp_shape(int experts, int k, int max_width) {
  int need = (experts + 7) / 8;
  if (need < k) need = k;
  int w = 1;
  while (w < need && w < max_width) w <<= 1;
  int v = 8;
  while (w * v < experts) v <<= 1;
  return {w, v};
}

#endif  // TOPK_SIGMOID_KERNEL_WARP_HPP
