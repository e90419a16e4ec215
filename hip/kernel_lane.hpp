// kernel_lane.hpp: rows of at most 8 experts (the warp backend's shape for E <= 8 on NVIDIA).
// The whole row fits one lane's registers (one 16-byte load of 16-bit logits), so no round of
// selection is needed: each of a token's L lanes loads the row and sorts all of it with the
// 19-exchange network, and lane l keeps ranks l * R .. l * R + R - 1 (R = KP / L, KP = k rounded
// up to a power of two): their weights, the rank-order sum (read across the L lanes) and their
// outputs. Small batches take L = KP, one rank per lane, so a lane's chain holds one weight and
// one division (with a bias, 8 / L of the row's sigmoids, shared across the L lanes); large ones
// fewer lanes per token, down to one, so the sort is not repeated in every lane
// (device_backend.hip, launch_lane). The warp kernel it replaces there spread the
// row over W >= k lanes, of which one held it all, and ran k rounds of cross-lane maxima.
// Same keys, sigmoid and summation order as every other backend (semantics.h, keys.hpp).
#ifndef TOPK_SIGMOID_KERNEL_LANE_HPP
#define TOPK_SIGMOID_KERNEL_LANE_HPP

#include "crosslane_shfl.hpp"
#include "dependent_launch.hpp"
#include "gpu_compat.h"
#include "kernel_warp.hpp"

constexpr int kLaneBlock = 256;
constexpr int kLaneExperts = 8;  // the most experts a row may have here

// Compare-exchange of (key, weight) pairs on the key, so that key[i] >= key[j]: with a bias the
// weight (the logit's sigmoid) cannot be recovered from the key (it ranks sigmoid + bias) and
// travels with it through the network.
template <class Key>
__device__ __forceinline__ void ts_cx_pair(Key (&key)[kLaneExperts], float (&weight)[kLaneExperts], int i, int j) {
  const bool swap = key[i] < key[j];
  const Key ki = key[i];
  const float wi = weight[i];
  key[i] = swap ? key[j] : ki;
  key[j] = swap ? ki : key[j];
  weight[i] = swap ? weight[j] : wi;
  weight[j] = swap ? wi : weight[j];
}

// The row of one token as raw elements, positions >= E zero (their keys are made empty). Rows of
// whole 16-byte vectors (vector_loads) load with one or two vector loads; the lanes of a token
// load the same addresses, which the memory system serves once.
template <int Dtype>
__device__ __forceinline__ void ts_lane_load(const ts_kernel_args& a, int64_t token,
                                             typename ts_input<Dtype>::Raw (&raw)[kLaneExperts]) {
  using Raw = typename ts_input<Dtype>::Raw;
  const Raw* row = static_cast<const Raw*>(a.logits) + token * a.row_stride;
  constexpr int kPerVector = 16 / static_cast<int>(sizeof(Raw));
  if (a.vector_loads) {  // uniform; E * sizeof(Raw) is a multiple of 16: E = 8 (16-bit) or 4, 8 (fp32)
#pragma unroll
    for (int v = 0; v < kLaneExperts / kPerVector; ++v) {
      uint4 word = make_uint4(0u, 0u, 0u, 0u);
      if (v * kPerVector < a.experts) word = reinterpret_cast<const uint4*>(row)[v];
      const uint32_t parts[4] = {word.x, word.y, word.z, word.w};
#pragma unroll
      for (int p = 0; p < 4; ++p) {
        if constexpr (sizeof(Raw) == 2) {
          raw[v * 8 + 2 * p] = static_cast<Raw>(parts[p] & 0xffffu);
          raw[v * 8 + 2 * p + 1] = static_cast<Raw>(parts[p] >> 16);
        } else {
          raw[v * 4 + p] = ts_bits_float(parts[p]);
        }
      }
    }
    return;
  }
#pragma unroll
  for (int e = 0; e < kLaneExperts; ++e) raw[e] = e < a.experts ? row[e] : Raw(0);
}

// KP: k rounded up to a power of two (1, 2, 4 or 8); L lanes per token (a power of two <= KP),
// each holding KP / L consecutive ranks.
template <int Dtype, bool HasBias, int KP, int L>
__global__ void __launch_bounds__(kLaneBlock) ts_lane_kernel(const ts_kernel_args a) {
  ts_prefetch_first_row<typename ts_input<Dtype>::Raw, L>(a);
  ts_await_prior_grid(a.early_dependents);
  static_assert(KP >= 1 && KP <= kLaneExperts && (KP & (KP - 1)) == 0, "k rounded up to a power of two");
  static_assert(L >= 1 && L <= KP && (L & (L - 1)) == 0, "a power of two of lanes per token, at most KP");
  constexpr int R = KP / L;  // ranks per lane
  using Raw = typename ts_input<Dtype>::Raw;
  using K = ts_keys<Dtype, HasBias>;
  using Key = typename K::Key;
  const int k = a.k;
  const int lane = static_cast<int>(threadIdx.x) & (L - 1);
  const typename ShflPolicy::template Group<L> group(static_cast<int>(threadIdx.x % TS_WAVE));
  // Four outputs per 16-byte store where a lane's ranks and both output rows allow it (uniform).
  const bool vector_stores = R >= 4 && (k & 3) == 0 && reinterpret_cast<uintptr_t>(a.weights) % 16 == 0 &&
                             reinterpret_cast<uintptr_t>(a.indices) % 16 == 0;
  const int64_t tokens_per_block = static_cast<int64_t>(blockDim.x) / L;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * tokens_per_block;
  // token is the same in all L lanes of a group, so a group enters and leaves the loop together.
  for (int64_t token = static_cast<int64_t>(blockIdx.x) * tokens_per_block + threadIdx.x / L; token < a.tokens;
       token += stride) {
    Raw raw[kLaneExperts];
    ts_lane_load<Dtype>(a, token, raw);

    Key key[kLaneExperts];
    [[maybe_unused]] float score[kLaneExperts];  // with a bias: each logit's weight, sorted with its key
    if constexpr (HasBias) {
      // The sigmoids of the row, each computed by one lane of the group (expert j * L + l in lane
      // l) and read by the others: every key needs its score (sigmoid + bias), and the score of a
      // winner is its weight.
      constexpr int kPerLane = kLaneExperts / L;
      float mine[kPerLane];
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        Raw own = raw[j * L];
#pragma unroll
        for (int l = 1; l < L; ++l) own = lane == l ? raw[j * L + l] : own;
        mine[j] = ts_sigmoid_branchless(ts_input<Dtype>::to_float(own));
      }
#pragma unroll
      for (int e = 0; e < kLaneExperts; ++e) {
        const float s = group.read(mine[e / L], e % L);
        const float b = e < a.experts ? a.bias[e] : 0.0f;
        key[e] =
            e < a.experts ? ts_key64(ts_ord32(ts_biased_value_of_score(s, b)), static_cast<uint32_t>(e)) : Key(0);
        score[e] = ts_weight_of_score(ts_input<Dtype>::to_float(raw[e]), s);
      }
#pragma unroll
      for (int n = 0; n < 19; ++n) ts_cx_pair(key, score, ts_sort8_net(n, 0), ts_sort8_net(n, 1));
    } else {
#pragma unroll
      for (int e = 0; e < kLaneExperts; ++e) {
        key[e] = e < a.experts ? K::make(raw[e], 0.0f, static_cast<uint32_t>(e)) : Key(0);
      }
      ts_sort_desc<kLaneExperts>(key);
    }

    // This lane's ranks lane * R + j: keys picked from the sorted row, weights (without bias the
    // key holds the logit itself: value_of gives NaN for a NaN logit), 0 past k.
    Key own_key[R];
    float w[R];
#pragma unroll
    for (int j = 0; j < R; ++j) {
      own_key[j] = key[j];
#pragma unroll
      for (int l = 1; l < L; ++l) own_key[j] = lane == l ? key[l * R + j] : own_key[j];
      float own_score;
      if constexpr (HasBias) {
        own_score = score[j];
#pragma unroll
        for (int l = 1; l < L; ++l) own_score = lane == l ? score[l * R + j] : own_score;
      } else {
        own_score = ts_weight_of_logit_branchless(K::value_of(own_key[j]));
      }
      w[j] = lane * R + j < k ? own_score : 0.0f;
    }

    float sum = 0.0f;
    if (a.renormalize) {
      // All reads first, then the adds in rank order (reads do not wait for each other).
      float part[KP];
#pragma unroll
      for (int r = 0; r < KP; ++r) part[r] = group.read(w[r % R], r / R);
#pragma unroll
      for (int r = 0; r < KP; ++r) sum = r < k ? TS_ADD(sum, part[r]) : sum;
    }
    const int first = lane * R;
    float* weights = a.weights + token * k + first;
    int32_t* indices = a.indices + token * k + first;
    const auto index_of = [&](int j) { return static_cast<int32_t>(ts_key_index(static_cast<uint32_t>(own_key[j]))); };
    const auto weight_of = [&](int j) { return ts_final_weight(w[j], sum, a.renormalize != 0, a.scale); };
    bool stored = false;
    if constexpr (R >= 4) {
      if (vector_stores) {
#pragma unroll
        for (int j = 0; j < R; j += 4) {
          if (first + j < k) {
            reinterpret_cast<float4*>(weights)[j / 4] = make_float4(weight_of(j), weight_of(j + 1), weight_of(j + 2),
                                                                    weight_of(j + 3));
            reinterpret_cast<int4*>(indices)[j / 4] = make_int4(index_of(j), index_of(j + 1), index_of(j + 2),
                                                                index_of(j + 3));
          }
        }
        stored = true;
      }
    }
    if (!stored) {
#pragma unroll
      for (int j = 0; j < R; ++j) {
        if (first + j < k) {
          weights[j] = weight_of(j);
          indices[j] = index_of(j);
        }
      }
    }
  }
}

#endif  // TOPK_SIGMOID_KERNEL_LANE_HPP
