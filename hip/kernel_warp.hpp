// kernel_warp.hpp: the register-resident top-k kernel, one template for every vendor.
// A group of W lanes routes one token (W divides the wavefront; several tokens per wavefront
// for small E). Lane l holds experts [l*V, l*V + V) in registers as packed (value, index) keys
// (keys.hpp), sorted descending, so each of the k rounds is: group max of the lanes' heads (the
// Policy's one cross-lane step) and a predicated pop in the owner. Lane r keeps round r's
// winner; without bias its weight is the sigmoid of the value inside the key (sigmoid only k
// times per token, no reload), with bias the winner's logit is read again (a cache hit). The rank-order sum
// for renormalisation is read lane by lane so every backend adds in the same order. Only Policy
// differs between NVIDIA (shuffles / redux.sync) and AMD gfx9 (DPP).
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
  int32_t vector_loads;      // rows are 16-byte aligned and E * elem is a multiple of 16
  int32_t tokens_per_group;  // warp kernel: tokens a group routes before one shared epilogue
};

template <class Key>
__device__ __forceinline__ Key ts_umax(Key a, Key b) {
  return a > b ? a : b;
}

// Compare-exchange so that c[i] >= c[j].
template <int V, class Key>
__device__ __forceinline__ void ts_cx(Key (&c)[V], int i, int j) {
  const Key hi = ts_umax(c[i], c[j]);
  c[j] = c[i] < c[j] ? c[i] : c[j];
  c[i] = hi;
}

// Sorts a lane's keys descending with compile-time indices only, so everything stays in
// registers: the optimal 19-exchange network for 8 keys, a bitonic network for 16 and 32.
template <int V, class Key>
__device__ __forceinline__ void ts_sort_desc(Key (&c)[V]) {
  if constexpr (V == 8) {
    constexpr int kNet[19][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}, {0, 4}, {1, 5}, {2, 6}, {3, 7}, {0, 1}, {2, 3},
                                 {4, 5}, {6, 7}, {2, 4}, {3, 5}, {1, 4}, {3, 6}, {1, 2}, {3, 4}, {5, 6}};
#pragma unroll
    for (int n = 0; n < 19; ++n) ts_cx(c, kNet[n][0], kNet[n][1]);
  } else {
#pragma unroll
    for (int size = 2; size <= V; size <<= 1) {
#pragma unroll
      for (int stride = size / 2; stride > 0; stride >>= 1) {
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const int j = i ^ stride;
          if (j > i) {
            if ((i & size) == 0 || size == V) ts_cx(c, i, j);
            else ts_cx(c, j, i);
          }
        }
      }
    }
  }
}

// The best 8 of a lane's V keys (V a multiple of 8), sorted descending: each block of 8 is
// sorted with the 19-exchange network, then blocks fold pairwise: the elementwise max of one
// block and the other reversed is a bitonic sequence holding the best 8 of both, which three
// half-cleaner stages sort. For V = 16 that is 58 exchanges instead of 80, and the rounds then
// shift 8 keys instead of 16. Enough whenever k <= 8: no lane can own more than k winners.
template <int V, class Key>
__device__ __forceinline__ void ts_best8_desc(const Key (&c)[V], Key (&top)[8]) {
  constexpr int kBlocks = V / 8;
  Key block[kBlocks][8];
#pragma unroll
  for (int b = 0; b < kBlocks; ++b) {
#pragma unroll
    for (int j = 0; j < 8; ++j) block[b][j] = c[b * 8 + j];
    ts_sort_desc<8>(block[b]);
  }
#pragma unroll
  for (int width = 1; width < kBlocks; width *= 2) {
#pragma unroll
    for (int b = 0; b + width < kBlocks; b += 2 * width) {
#pragma unroll
      for (int j = 0; j < 8; ++j) block[b][j] = ts_umax(block[b][j], block[b + width][7 - j]);
#pragma unroll
      for (int stride = 4; stride > 0; stride >>= 1) {
#pragma unroll
        for (int i = 0; i < 8; ++i)
          if ((i & stride) == 0) ts_cx(block[b], i, i + stride);
      }
    }
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) top[j] = block[0][j];
}

// k rounds of group arg-max over the lanes' list heads. Keys are distinct, so exactly one lane
// owns each winner; it pops its head (a predicated shift, no branch). Lane slot + r keeps round
// r's winner.
template <int L, class Group, class Key>
__device__ __forceinline__ void ts_rounds(const Group& group, Key (&list)[L], int k, int lane, int slot, Key& mine) {
  for (int r = 0; r < k; ++r) {
    const Key winner = group.max(list[0]);
    if (lane == slot + r) mine = winner;
    const bool pop = list[0] == winner;
#pragma unroll
    for (int j = 0; j < L - 1; ++j) list[j] = pop ? list[j + 1] : list[j];
    list[L - 1] = pop ? Key(0) : list[L - 1];
  }
}

template <class Policy, int Dtype, int W, int V, bool HasBias>
__global__ void __launch_bounds__(kWarpBlock) ts_warp_kernel(const ts_kernel_args a) {
  using Raw = typename ts_input<Dtype>::Raw;
  using K = ts_keys<Dtype, HasBias>;
  using Key = typename K::Key;
  constexpr int kGroups = kWarpBlock / W;
  constexpr int kPerVector = 16 / sizeof(Raw);
  constexpr bool kPairs = sizeof(Raw) == 2 && !HasBias;  // 16-bit keys built two at a time
  static_assert(V % kPerVector == 0, "a lane's slice is whole 16-byte vectors");
  static_assert(W <= TS_WAVE_SIZE_MAX, "a group fits in one wavefront");

  const int lane = threadIdx.x & (W - 1);
  const int k = a.k;
  const int base = lane * V;
  const int lane_limit = a.experts - base;  // this lane's slots j < limit hold experts
  const typename Policy::template Group<W> group(static_cast<int>(threadIdx.x % TS_WAVE));
  // A group routes G = tokens_per_group tokens before one shared epilogue: lane g*kp + r keeps
  // rank r of the group's g-th token (kp = k rounded up to a power of two, G = W / kp).
  const int G = a.tokens_per_group;
  const int kp = W / G;

  for (int64_t first = (static_cast<int64_t>(blockIdx.x) * kGroups + threadIdx.x / W) * G; first < a.tokens;
       first += static_cast<int64_t>(gridDim.x) * kGroups * G) {
    Key mine = 0;
    for (int g = 0; g < G; ++g) {
      const int64_t token = first + g;
      if (token >= a.tokens) break;  // uniform across the group
      const Raw* row = static_cast<const Raw*>(a.logits) + token * a.row_stride;
      int limit = lane_limit;
#if defined(__HIP_DEVICE_COMPILE__)
      // Opaque per token, so the per-slot `j < limit` tests stay in the loop: hoisted, they are
      // V+ live lane masks, two SGPRs each on wave64, and the V = 16 kernels spill SGPRs.
      asm volatile("" : "+v"(limit));
#endif

      // Load: 16-byte vectors when rows allow (each vector then lies wholly inside or outside),
      // as 32-bit words (two 16-bit logits or one fp32 each): hipcc leaves a Raw[] array that is
      // type-punned with memcpy in LDS / scratch, whole words stay in registers.
      constexpr int kWords = V * static_cast<int>(sizeof(Raw)) / 4;
      uint32_t words[kWords];
      if (a.vector_loads) {
#pragma unroll
        for (int c = 0; c < V / kPerVector; ++c) {
          uint4 v = make_uint4(0u, 0u, 0u, 0u);
          if (c * kPerVector < limit) v = *reinterpret_cast<const uint4*>(row + base + c * kPerVector);
          words[4 * c] = v.x;
          words[4 * c + 1] = v.y;
          words[4 * c + 2] = v.z;
          words[4 * c + 3] = v.w;
        }
      } else {
#pragma unroll
        for (int i = 0; i < kWords; ++i) {
          if constexpr (sizeof(Raw) == 2) {
            const uint32_t lo = 2 * i < limit ? static_cast<uint32_t>(row[base + 2 * i]) : 0u;
            const uint32_t hi = 2 * i + 1 < limit ? static_cast<uint32_t>(row[base + 2 * i + 1]) : 0u;
            words[i] = lo | (hi << 16);  // element 2i in the low half, as in memory
          } else {
            words[i] = i < limit ? ts_float_bits(static_cast<float>(row[base + i])) : 0u;
          }
        }
      }
      Raw raw[V];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        if constexpr (sizeof(Raw) == 2) raw[j] = static_cast<Raw>(words[j >> 1] >> (16 * (j & 1)));
        else raw[j] = ts_bits_float(words[j]);
      }

      // Keys. Slots past the row get key 0 (below every real key); lanes wholly inside the row
      // skip that masking.
      Key keys[V];
      if constexpr (kPairs) {
#pragma unroll
        for (int j = 0; j < V; j += 2) {
          const uint32_t pair = words[j >> 1];
          const uint32_t ord = ts_ord16x2(pair, ts_keys16<Dtype>::kInfBits);
          const uint32_t e = static_cast<uint32_t>(base + j);
          keys[j] = static_cast<Key>((ord << 16) | ts_index_field(e));
          keys[j + 1] = static_cast<Key>((ord & 0xffff0000u) | ts_index_field(e + 1));
        }
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) {
          const int e = base + j;
          const float x = ts_input<Dtype>::to_float(raw[j]);
          if (HasBias) {
            const float b = j < limit ? a.bias[e] : 0.0f;
            keys[j] = static_cast<Key>(ts_key64(ts_ord32(ts_biased_value(x, b)), static_cast<uint32_t>(e)));
          } else {
            keys[j] = static_cast<Key>(ts_key64(ts_ord32(x), static_cast<uint32_t>(e)));
          }
        }
      }
      if (limit < V) {
#pragma unroll
        for (int j = 0; j < V; ++j) keys[j] = j < limit ? keys[j] : Key(0);
      }
      const int slot = g * kp;
      if constexpr (Policy::kGroupSum && W == 32) {
        // Only for whole warps (narrower groups fall back too often: few lanes, many winners per
        // lane) and only when the batch fills the GPU several times over (G > 1): a fallback
        // runs both paths, which costs latency that small batches feel (H200: E=64 k=8 T=256
        // 2.55 -> 3.27 us with it on).
        if (k <= 8 && G > 1) {  // uniform
          // Fast path: each lane offers only its best two keys (a running top-2: three min/max
          // per key instead of a sorting network), and the rounds pop from that short list. It
          // is exact when the number of keys >= the k-th winner is exactly k (every key that
          // clears the last winner was taken); otherwise, when a lane held more winners than
          // its list (about 5% of random rows at E=256, k=8), the full path below redoes the
          // token. Winners are distinct and decreasing, so a verified set is also in order.
          Key first_key = 0, second_key = 0;
#pragma unroll
          for (int j = 0; j < V; ++j) {
            const Key x = keys[j];
            second_key = ts_umax(second_key, first_key < x ? first_key : x);
            first_key = ts_umax(first_key, x);
          }
          Key winner = 0;
          for (int r = 0; r < k; ++r) {
            winner = group.max(first_key);
            if (lane == slot + r) mine = winner;
            const bool pop = first_key == winner;
            first_key = pop ? second_key : first_key;
            second_key = pop ? Key(0) : second_key;
          }
          uint32_t at_least_winner = 0;
#pragma unroll
          for (int j = 0; j < V; ++j) at_least_winner += keys[j] >= winner ? 1u : 0u;
          if (winner != 0 && group.sum(at_least_winner) == static_cast<uint32_t>(k)) continue;
        }
      }
      if constexpr (V > 8) {
        if (k <= 8) {  // uniform: each lane needs only its best 8
          Key top[8];
          ts_best8_desc(keys, top);
          ts_rounds(group, top, k, lane, slot, mine);
          continue;
        }
      }
      ts_sort_desc<V>(keys);
      ts_rounds(group, keys, k, lane, slot, mine);
    }

    // Shared epilogue: lane g*kp + r < k holds rank r of token first + g. Without bias its
    // weight is the sigmoid of the value inside the key; with bias the key holds score + bias,
    // so that one logit is read again (just loaded: a cache hit). The rank-order sum is read
    // lane by lane within the token's segment so every backend adds in the same order.
    const int rank = lane & (kp - 1);
    const int64_t token = first + lane / kp;
    const bool holds = rank < k && token < a.tokens;
    const uint32_t index = ts_key_index(static_cast<uint32_t>(mine));
    float w = 0.0f;
    if (holds) {
      if (HasBias) {
        const Raw* row = static_cast<const Raw*>(a.logits) + token * a.row_stride;
        w = ts_weight_of_logit(ts_input<Dtype>::to_float(row[index]));
      } else {
        w = ts_weight_of_logit(K::value_of(mine));
      }
    }
    float sum = 0.0f;
    if (a.renormalize) {
      if constexpr (Policy::kSubgroupRead) {
        for (int r = 0; r < k; ++r) sum = TS_ADD(sum, group.read_sub(w, r, kp));
      } else {
        for (int r = 0; r < k; ++r) sum = TS_ADD(sum, group.read(w, r));
      }
    }
    if (holds) {
      const int64_t o = token * k + rank;
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
// Tokens per group pass: W / (k rounded up to a power of two) when the policy can read within
// sub-segments, else 1.
inline int ts_tokens_per_group(int w, int k, bool subgroup_read) {
  if (!subgroup_read) return 1;
  int kp = 1;
  while (kp < k) kp <<= 1;
  return w / kp;
}
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
