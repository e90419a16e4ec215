// kernel_split_bias.hpp: large batches of 16-bit logits with a correction bias, k <= 8,
// E = 65..256 (NVIDIA): the split kernel's layout (kernel_split.hpp: W lanes per token, V logits
// per lane) ranking cheap 32-bit keys, with exact values for the winners only.
//
// With a bias the ranking value is v = sigmoid(x) + b, whose exact form (semantics.h) costs a
// polynomial and an IEEE division per logit. The whole-warp bias path (bias_prefilter.hpp)
// spends a fixed ~450 warp instructions per token on its candidates, which is most of its time
// at E <= 256. Here each logit gets the prefilter's cheap score s' (two MUFU instructions,
// within kTsPrefilterSigmoidBound of the exact sigmoid) turned into a fixed-point value
//
//   y = s' * scale + (b * scale + M)    (one FMA; M = 1.5 * 2^23, so y's low 23 bits are q),
//
// where the block picks scale = 2^(21 - ex) from the largest |b| (|b| + 1 < 2^ex), so every
// non-NaN y lies in (2^23 + 2^21, 2^24) and q >= 2^21; a NaN y is clamped to 2^23, q = 0, below
// every number. The key is (q << 9) | (511 - expert): distinct, and ordered as (y, lower index
// first). The sorting networks and butterfly merge of the split kernel give every lane the
// group's best 8 keys. |y - (v * scale + M)| <= bound * scale + 1.125 (the two roundings of y
// and the half-ulp of v's own fp32 addition, at most 2^-24 * 2^21), so the cheap k best are
// the exact k best as a set when no other key comes within D = floor(2 (bound * scale + 1.125))
// + 1 of the k-th one's q (keys tied in q are then impossible across the boundary). Checked by
// counting, in each lane's own sorted list, the keys with q >= q_k - D + 1: the group total
// must be k, and a lane whose whole list counts may hide more, so it fails the check. When the
// k-th key is a NaN (q = 0) the set is exact too: every number ranks above, and NaNs rank by
// index, as the keys do.
//
// The winners then get their exact values (sigmoid, v, the semantics' 64-bit key, weight) and
// are ranked by counting larger exact keys in shared memory. A warp in which any token fails
// the check recomputes its tokens exactly (64-bit keys of every logit, 8 at a time); so does
// every token when the bias holds a NaN or an infinity (the fixed point needs finite biases).
// With the earlier bound of 2^-16 (D = 35 at |b| < 1) the benchmark's rows failed for 0.17% of
// tokens at E = 128 and 0.37% at E = 256 (H200, counted), about one warp in 70; each such warp
// pays the exact path's latency, which at a few tokens per group is the batch's time
// (launch_split's thresholds). With 2^-20, D = 5.
#ifndef TOPK_SIGMOID_KERNEL_SPLIT_BIAS_HPP
#define TOPK_SIGMOID_KERNEL_SPLIT_BIAS_HPP

#include "bias_prefilter.hpp"
#include "kernel_split.hpp"

#if defined(TS_PLATFORM_CUDA)
constexpr int kSplitBiasMaxExperts = 256;  // W * V of every shape (ts_pick_split_shape)

// Blocks per SM the kernel keeps registers for: 64 registers, no spills (sm_90, sm_80). A form that
// prefetched the next row, as the split kernel's did before 8d63da7, needed 80 at 3 blocks, spilled a few bytes
// in its exact path and measured the same (H200, T=65536 with bias: E128 20.4-20.8 us vs 20.6,
// E256 32.7-33.0 vs 33.2), so there is none.
constexpr int kSplitBiasBlocksPerSm = 4;

// Element `high` of a word of two 16-bit logits as fp32 (exact): bf16 by a mask or a shift,
// fp16 by the hardware conversion.
template <int Dtype>
__device__ __forceinline__ float ts_split_bias_logit(uint32_t word, int high) {
  if constexpr (Dtype == TS_DTYPE_BF16) {
    return ts_bits_float(high ? (word & 0xffff0000u) : (word << 16));
  } else {
    const unsigned short h = static_cast<unsigned short>(high ? word >> 16 : word);
    float x;
    asm("cvt.f32.f16 %0, %1;" : "=f"(x) : "h"(h));
    return x;
  }
}

// The cheap key of one logit (x as fp32) of expert field `field` (511 - expert), with
// ybias = b * scale + M rounded: see the top of the file.
__device__ __forceinline__ uint32_t ts_split_bias_key(float x, float ybias, float scale, uint32_t field) {
  const float y = fmaxf(__fmaf_rn(ts_sigmoid_prefilter(x), scale, ybias), 8388608.0f);  // NaN -> 2^23
  return (ts_float_bits(y) << 9) | field;
}

// The cheap keys of vector c of a lane's slice (its four words), 0 for a vector past the row
// (below NaN's q = 0 keys). Expert e = 8 * (c * W + lane) + i has field 511 - e = lane_field ^
// (8 * c * W + i): the lane's bits and the vector's never overlap, and 511 - X == 511 ^ X for
// X < 512.
template <int Dtype, int W>
__device__ __forceinline__ void ts_split_bias_vector_keys(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, int c,
                                                          int lane, int experts, const float* bias_fixed, float scale,
                                                          uint32_t lane_field, uint32_t (&keys)[8]) {
  const int vec = c * W + lane;
  const bool inside = vec * 8 < experts;
  const float4 yb0 = reinterpret_cast<const float4*>(bias_fixed)[2 * vec];
  const float4 yb1 = reinterpret_cast<const float4*>(bias_fixed)[2 * vec + 1];
  const float yb[8] = {yb0.x, yb0.y, yb0.z, yb0.w, yb1.x, yb1.y, yb1.z, yb1.w};
  const uint32_t words[4] = {w0, w1, w2, w3};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float x = ts_split_bias_logit<Dtype>(words[i >> 1], i & 1);
    const uint32_t key = ts_split_bias_key(x, yb[i], scale, lane_field ^ static_cast<uint32_t>(8 * c * W + i));
    keys[i] = inside ? key : 0u;
  }
}

// The exact (semantics) key and weight of expert e's logit (ts_sigmoid_branchless: the same bits
// as ts_sigmoid without the division's branch, so several interleave; tests/sigmoid_branchless.cu
// checks it on every fp32 input).
template <int Dtype>
__device__ __forceinline__ void ts_split_bias_exact(const uint16_t* row, uint32_t e, const float* bias, uint64_t& key,
                                                    float& weight) {
  const float x = ts_input<Dtype>::to_float(row[e]);
  const float score = ts_sigmoid_branchless(x);
  key = ts_key64(ts_ord32(ts_biased_value_of_score(score, bias[e])), e);
  weight = ts_weight_of_score(x, score);
}

// The exact best 8 of a lane's slice (64-bit keys of every logit, one 16-byte vector at a time
// so that only 16 keys are live), merged over the group: the path of warps in which a token's
// cheap check fails. Its latency is what such a warp adds to the batch (BENCHMARKS.md 31: about
// 4 us at T=65536), so the loop is unrolled (the vectors' loads need not wait for each other)
// and the eight sigmoids of a vector are independent, with no division branch. Vectors past the
// row get key 0.
template <int Dtype, int W, int V, class Group>
__device__ __forceinline__ void ts_split_bias_exact_best8(const Group& group, const uint16_t* row, int lane,
                                                          int experts, const float* bias, uint64_t (&best)[8]) {
#pragma unroll
  for (int j = 0; j < 8; ++j) best[j] = 0;
#pragma unroll
  for (int c = 0; c < V / 8; ++c) {
    const int vec = c * W + lane;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (vec * 8 < experts) v = *reinterpret_cast<const uint4*>(row + vec * 8);
    const uint32_t words[4] = {v.x, v.y, v.z, v.w};
    uint64_t block[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t e = static_cast<uint32_t>(vec * 8 + i);
      const float x = ts_input<Dtype>::to_float(static_cast<uint16_t>(words[i >> 1] >> (16 * (i & 1))));
      const float b = vec * 8 < experts ? bias[e] : 0.0f;
      const uint64_t key = ts_key64(ts_ord32(ts_biased_value_of_score(ts_sigmoid_branchless(x), b)), e);
      block[i] = vec * 8 < experts ? key : 0u;
    }
    ts_sort_desc<8>(block);
    if (c == 0) {
#pragma unroll
      for (int j = 0; j < 8; ++j) best[j] = block[j];
    } else {
      ts_fold_best8(best, block);
    }
  }
  ts_butterfly_topk<W>(group, best);
}

template <class Policy, int Dtype, int W, int V>
__global__ void __launch_bounds__(kSplitBlock, kSplitBiasBlocksPerSm) ts_split_bias_kernel(const ts_kernel_args a) {
  static_assert(Dtype != TS_DTYPE_F32, "16-bit logits");
  static_assert(V % 8 == 0 && W >= 2 && W <= 16 && W * V <= kSplitBiasMaxExperts, "split shapes");
  constexpr int kRanks = 8 / W > 0 ? 8 / W : 1;  // ranks per lane (k <= 8)
  constexpr int kGroups = kSplitBlock / W;
  __shared__ float bias_exact[kSplitBiasMaxExperts];  // b, 0 past E
  __shared__ float bias_fixed[kSplitBiasMaxExperts];  // b * scale + M
  __shared__ uint64_t rank_key[kGroups * 8];          // per group: the winners' exact keys
  __shared__ float rank_weight[kGroups * 8];          // per group: weights by exact rank
  __shared__ uint32_t largest_abs_bits, non_finite;

  // The bias, its largest magnitude and whether it is all finite (the fixed point's scale).
  if (threadIdx.x == 0) {
    largest_abs_bits = 0;
    non_finite = 0;
  }
  __syncthreads();
  {
    uint32_t largest = 0, bad = 0;
    for (int e = static_cast<int>(threadIdx.x); e < W * V; e += static_cast<int>(blockDim.x)) {
      const float b = e < a.experts ? a.bias[e] : 0.0f;
      bias_exact[e] = b;
      const uint32_t abs_bits = ts_float_bits(b) & 0x7fffffffu;
      if (abs_bits >= 0x7f800000u) bad = 1;
      else largest = abs_bits > largest ? abs_bits : largest;
    }
    if (largest != 0u) atomicMax(&largest_abs_bits, largest);
    if (bad != 0u) atomicOr(&non_finite, 1u);
  }
  __syncthreads();
  // |b| + 1 < 2^ex (ex = the exponent of |b| + 1 rounded up, plus one; 1..129), scale = 2^(21 - ex).
  const int ex = static_cast<int>(ts_float_bits(__fadd_ru(ts_bits_float(largest_abs_bits), 1.0f)) >> 23) - 126;
  const float scale = ts_bits_float(static_cast<uint32_t>(21 - ex + 127) << 23);
  const bool exact_only = non_finite != 0u;  // uniform
  for (int e = static_cast<int>(threadIdx.x); e < W * V; e += static_cast<int>(blockDim.x))
    bias_fixed[e] = __fmaf_rn(bias_exact[e], scale, 12582912.0f);
  // Keys closer than D in q may be misordered by the cheap values (top of the file).
  const uint32_t gap = static_cast<uint32_t>(2.0f * __fmaf_ru(kTsPrefilterSigmoidBound, scale, 1.125f)) + 1u;
  __syncthreads();

  const int lane = static_cast<int>(threadIdx.x) & (W - 1);
  const int group_in_block = static_cast<int>(threadIdx.x) / W;
  const typename Policy::template Group<W> group(static_cast<int>(threadIdx.x % TS_WAVE));
  const int k = a.k;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * (static_cast<int>(blockDim.x) / W);
  const uint16_t* const logits = static_cast<const uint16_t*>(a.logits);
  const uint32_t lane_field = 511u ^ (8u * static_cast<uint32_t>(lane));
  uint64_t* const my_keys = rank_key + group_in_block * 8;
  float* const my_weights = rank_weight + group_in_block * 8;

  int64_t token = static_cast<int64_t>(blockIdx.x) * (static_cast<int>(blockDim.x) / W) + group_in_block;
  // The loop runs on the warp's first token, so every lane of a warp takes the same passes (the
  // warp-wide votes and __syncwarp below need the whole warp); in the last pass, groups past T
  // take part with no token (live = false).
  const int64_t warp_first = token - (static_cast<int>(threadIdx.x % TS_WAVE) / W);
  for (int64_t base_token = warp_first; base_token < a.tokens; base_token += stride) {
    const bool live = token < a.tokens;  // uniform within the group
    const uint16_t* const row = logits + (live ? token : 0) * a.row_stride;
    uint32_t words[V / 2];
    ts_split_load<W, V>(row, lane, a.experts, words);

    uint32_t keys[V];
#pragma unroll
    for (int c = 0; c < V / 8; ++c) {
      uint32_t vkeys[8];
      ts_split_bias_vector_keys<Dtype, W>(words[4 * c], words[4 * c + 1], words[4 * c + 2], words[4 * c + 3], c, lane,
                                          a.experts, bias_fixed, scale, lane_field, vkeys);
#pragma unroll
      for (int i = 0; i < 8; ++i) keys[8 * c + i] = vkeys[i];
    }

    uint32_t top[8];
    ts_best8_desc(keys, top);
    uint32_t own[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) own[j] = top[j];
    ts_butterfly_topk<W>(group, top);  // every lane of the group: the token's cheap best 8

    // The check: q of the k-th key, and the keys of the lane's own list at or above q_k - D + 1.
    // (The list is sorted: the k-th is the least of the first k, which also keeps the
    // compiler from indexing it through local memory.)
    uint32_t kth = top[7];
    if (k < 8) {  // uniform
      kth = top[0];
#pragma unroll
      for (int r = 1; r < 7; ++r) kth = r < k && top[r] < kth ? top[r] : kth;
    }
    const uint32_t q_k = kth >> 9;
    const uint32_t floor_q = q_k > gap ? q_k - gap + 1u : 1u;
    uint32_t count = 0;
#pragma unroll
    for (int j = 0; j < 8; ++j) count += (own[j] >> 9) >= floor_q ? 1u : 0u;
    const uint32_t total = group.sum(count == 8u ? 16u : count);
    const bool exact_set = q_k == 0u || total == static_cast<uint32_t>(k);
    const bool fast = !exact_only && __all_sync(0xffffffffu, exact_set || !live);

    // Lane l's ranks l * kRanks + i: exact key and weight.
    uint64_t mine[kRanks];
    float w[kRanks];
    if (fast) {  // uniform across the warp
#pragma unroll
      for (int i = 0; i < kRanks; ++i) {
        const int r = lane * kRanks + i;
        const uint32_t pick = ts_split_pick<kRanks>(top, lane, i);
        mine[i] = 0;
        w[i] = 0.0f;
        if (live && r < k) ts_split_bias_exact<Dtype>(row, 511u - (pick & 511u), bias_exact, mine[i], w[i]);
      }
    } else {
      uint64_t best[8];
      ts_split_bias_exact_best8<Dtype, W, V>(group, row, lane, a.experts, bias_exact, best);
#pragma unroll
      for (int i = 0; i < kRanks; ++i) {
        const int r = lane * kRanks + i;
        const uint64_t pick = ts_split_pick<kRanks>(best, lane, i);
        mine[i] = live && r < k ? pick : 0;
        w[i] = live && r < k ? ts_weight_of_logit(ts_input<Dtype>::to_float(row[ts_key_index(static_cast<uint32_t>(pick))]))
                             : 0.0f;
      }
    }

    // Exact ranks by counting (keys are distinct; empty slots are 0 and rank last), weights by
    // rank, the rank-order sum (every backend's additions in the same order), the outputs.
#pragma unroll
    for (int i = 0; i < kRanks; ++i) my_keys[lane * kRanks + i] = mine[i];
    __syncwarp();
    int rank[kRanks];
#pragma unroll
    for (int i = 0; i < kRanks; ++i) {
      int larger = 0;
#pragma unroll
      for (int m = 0; m < 8; ++m) larger += my_keys[m] > mine[i] ? 1 : 0;
      rank[i] = larger;
      if (mine[i] != 0u) my_weights[larger] = w[i];
    }
    __syncwarp();
    float sum = 0.0f;
    if (a.renormalize && live) {  // uniform within the group
#pragma unroll
      for (int r = 0; r < 8; ++r) sum = r < k ? TS_ADD(sum, my_weights[r]) : sum;
    }
#pragma unroll
    for (int i = 0; i < kRanks; ++i) {
      if (live && mine[i] != 0u) {
        const int64_t o = token * k + rank[i];
        a.weights[o] = ts_final_weight(w[i], sum, a.renormalize != 0, a.scale);
        a.indices[o] = static_cast<int32_t>(ts_key_index(static_cast<uint32_t>(mine[i])));
      }
    }
    __syncwarp();  // the next token's stores into this group's slots come after these reads
    token += stride;
  }
}
#endif  // TS_PLATFORM_CUDA

#endif  // TOPK_SIGMOID_KERNEL_SPLIT_BIAS_HPP
