// kernel_split.hpp: mid-size batches of 16-bit logits without bias, k <= 8, E = 65..256 (the
// largest take the vector select kernel, kernel_vector_select.hpp, which shares this file's
// layout and epilogue): a token's row split over a few lanes. Each of the W lanes of a group takes V logits (V / 8 16-byte vectors,
// interleaved so that each load instruction reads W * 16 contiguous bytes of the row), builds
// keys that rank exactly as the semantics' keys (ts_split_ord16x2), keeps its best 8 (sorting
// networks: ts_best8_desc) and the group merges the lanes' lists by butterfly in log2(W) steps
// (ts_butterfly_topk). Every key takes part and no result is checked afterwards: the cost per
// token is the same on every row (ties, NaNs, all equal), with no fallback to a second path.
//
// Why it exists: the whole-warp kernel (kernel_warp.hpp) spends a fixed amount per token on its
// k rounds of redux.sync, on verifying the short lists and on redoing the rows that fail, which
// at E <= 256 is most of its work (212 warp instructions per token at E=128, BENCHMARKS.md).
// Here a token costs its sorting networks and a few shuffles spread over W lanes, so a warp
// routes 32 / W tokens at once.
//
// The epilogue: lane l of a group holds ranks l * R .. l * R + R - 1 (R = 8 / W ranks, at least
// one); it computes their weights, reads the others' over the group in rank order for the
// renormalisation's sum (the same additions in the same order as every backend) and stores its
// ranks.
#ifndef TOPK_SIGMOID_KERNEL_SPLIT_HPP
#define TOPK_SIGMOID_KERNEL_SPLIT_HPP

#include "kernel_warp.hpp"
#include "weight_table.hpp"

constexpr int kSplitBlock = 256;
// The smallest block the split family launches (launch_split_shape halves kSplitBlock down to it
// for batches that would leave SMs without two blocks); the split bias kernel's setup loops rely
// on it.
constexpr int kSplitMinBlock = 64;

// Lanes per token and logits per lane for E experts, or {0, 0} where the split kernel does not
// pay: E <= 64 (narrow groups of the warp kernel already split the row there) and E > 256. At
// E = 384 and 512 sixteen lanes of 24 or 32 logits sort and merge more than the whole-warp
// kernel's short lists cost (H200, T=65536 k=8 bf16: 31.0 -> 38.1 us and 36.3 -> 46.0).
// Without bias it runs below the vector select kernel's batch sizes (device_backend.hip).
inline ts_warp_shape ts_pick_split_shape(int experts) {
  if (experts <= 64 || experts > 256) return {0, 0};
  return experts <= 128 ? ts_warp_shape{4, 32} : ts_warp_shape{8, 32};
}

// Blocks per SM the kernel keeps registers for (40 registers at 32 logits per lane). The grid is
// that many blocks per SM and each group loops over tokens (H200, T=65536 k=8 bf16: eight blocks
// of 32 registers measured the same as six at T=65536 and lost at T <= 16384). The largest
// batches, where a prefetching form (64 registers) and 4 lanes of 64 logits for E > 128 paid,
// now take the vector select kernel.
constexpr int kSplitBlocksPerSm = 6;

// Lane l's slice of a row: vector c is the row's vector c * W + l, so the group reads W * 16
// contiguous bytes per instruction. E is a multiple of 8 here (vector_loads), so vectors lie
// wholly inside or outside the row.
template <int W, int V>
__device__ __forceinline__ void ts_split_load(const uint16_t* row, int lane, int experts, uint32_t (&words)[V / 2]) {
#pragma unroll
  for (int c = 0; c < V / 8; ++c) {
    const int vec = c * W + lane;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (vec * 8 < experts) v = *reinterpret_cast<const uint4*>(row + vec * 8);
    words[4 * c] = v.x;
    words[4 * c + 1] = v.y;
    words[4 * c + 2] = v.z;
    words[4 * c + 3] = v.w;
  }
}

// The keys of a lane's slice (ts_split_load's layout), ranked as the exact keys are; with
// Masked, vectors past the row get key 0.
template <int Dtype, int W, int V, bool Masked, class Key>
__device__ __forceinline__ void ts_split_keys(const uint32_t (&words)[V / 2], int lane, int experts, Key (&keys)[V]) {
#pragma unroll
  for (int c = 0; c < V / 8; ++c) {
    const int vec = c * W + lane;
    uint32_t ords[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) ords[i] = ts_split_ord16x2<Dtype>(words[4 * c + i]);
    Key vkeys[8];
    ts_lane_pair_keys<8>(ords, vec * 8, vkeys);
    const bool inside = !Masked || vec * 8 < experts;
#pragma unroll
    for (int j = 0; j < 8; ++j) keys[8 * c + j] = inside ? vkeys[j] : Key(0);
  }
}

// Lane l's rank l * R + i (R ranks per lane) of a list the group holds in every lane: entry
// i + m * R for m = l, picked by a tree of selects on the lane's bits (8 / R - 1 selects instead
// of 7 compares and selects; lanes past 8 / R pick with their low bits and hold no rank).
template <int R, class Key>
__device__ __forceinline__ Key ts_split_pick(const Key (&top)[8], int lane, int i) {
  constexpr int kCand = 8 / R;
  Key cand[kCand];
#pragma unroll
  for (int m = 0; m < kCand; ++m) cand[m] = top[m * R + i];
#pragma unroll
  for (int b = 1; b < kCand; b <<= 1) {
#pragma unroll
    for (int m = 0; m < kCand; m += 2 * b) cand[m] = (lane & b) ? cand[m + b] : cand[m];
  }
  return cand[0];
}

// The rank-order sum of a group's 8 weights, lane l holding ranks l * R .. l * R + R - 1 in w:
// each rank's weight read from its lane in turn, the first k added in rank order (the same
// additions in the same order as every backend).
template <int W, int R, class Group>
__device__ __forceinline__ float ts_split_rank_order_sum(const Group& group, const float (&w)[R], int k) {
  float sum = 0.0f;
#pragma unroll
  for (int r = 0; r < 8; ++r) {
    const float part = group.read(w[r % R], (r / R) & (W - 1));
    sum = r < k ? TS_ADD(sum, part) : sum;
  }
  return sum;
}

// The split family's epilogue, for a token whose best 8 keys (sorted, ts_split_ord16x2's kind)
// every lane of the group holds: lane l takes ranks l * R .. l * R + R - 1 (R = 8 / W, at least
// one), looks their weights up (weight_table.hpp), reads the others' over the group in rank order
// for the renormalisation's sum (the same additions in the same order as every backend) and
// stores its ranks.
template <int W, int Dtype, class Group>
__device__ __forceinline__ void ts_split_epilogue(const ts_kernel_args& a, const Group& group,
                                                  const uint32_t (&top)[8], int lane, int64_t token) {
  constexpr int kRanks = 8 / W > 0 ? 8 / W : 1;
  const int k = a.k;
  uint32_t mine[kRanks];
  float w[kRanks];
#pragma unroll
  for (int i = 0; i < kRanks; ++i) {
    mine[i] = ts_split_pick<kRanks>(top, lane, i);
    w[i] = ts_weight_of_ord<Dtype>(mine[i] >> 16);
  }
  float sum = 0.0f;
  if (a.renormalize) sum = ts_split_rank_order_sum<W, kRanks>(group, w, k);  // uniform
#pragma unroll
  for (int i = 0; i < kRanks; ++i) {
    const int rank = lane * kRanks + i;
    if (rank < k) {
      const int64_t o = token * k + rank;
      a.weights[o] = ts_final_weight(w[i], sum, a.renormalize != 0, a.scale);
      a.indices[o] = static_cast<int32_t>(ts_key_index(mine[i]));
    }
  }
}

// Hint: the form for grids that hint the L2 at their first row (ts_kernel_args::l2_hint); the
// others are compiled without the hint's code (launch_split_shape).
template <class Policy, int Dtype, int W, int V, bool Hint>
__global__ void __launch_bounds__(kSplitBlock, kSplitBlocksPerSm) ts_split_kernel(const ts_kernel_args a) {
  ts_prefetch_first_row<uint16_t, W, Hint>(a);
  ts_await_prior_grid(a.early_dependents);
  static_assert(Dtype != TS_DTYPE_F32, "16-bit logits: 32-bit keys");
  static_assert(V % 8 == 0 && W >= 2 && W <= 16, "whole 16-byte vectors, a group inside one warp");
  using K = ts_keys<Dtype, false>;
  using Key = typename K::Key;
  const int tokens_per_block = static_cast<int>(blockDim.x) / W;

  const int lane = static_cast<int>(threadIdx.x) & (W - 1);
  const typename Policy::template Group<W> group(static_cast<int>(threadIdx.x % TS_WAVE));
  const int64_t stride = static_cast<int64_t>(gridDim.x) * tokens_per_block;
  const uint16_t* const logits = static_cast<const uint16_t*>(a.logits);
  int64_t token = static_cast<int64_t>(blockIdx.x) * tokens_per_block + static_cast<int>(threadIdx.x) / W;
  for (; token < a.tokens; token += stride) {  // uniform within a group
    uint32_t words[V / 2];
    ts_split_load<W, V>(logits + token * a.row_stride, lane, a.experts, words);
    // Keys ranked as the exact ones (NaN at the bottom, -0 == +0), eight per vector; vectors
    // past the row get key 0, below every real key. Rows that fill every lane (E = W * V) skip
    // that masking, a select per key.
    Key keys[V];
    if (a.experts >= W * V) {  // uniform
      ts_split_keys<Dtype, W, V, false>(words, lane, a.experts, keys);
    } else {
      ts_split_keys<Dtype, W, V, true>(words, lane, a.experts, keys);
    }

    Key top[8];
    ts_best8_desc(keys, top);
    ts_butterfly_topk<W>(group, top);  // every lane of the group: the token's best 8, sorted

    ts_split_epilogue<W, Dtype>(a, group, top, lane, token);
  }
}

#endif  // TOPK_SIGMOID_KERNEL_SPLIT_HPP
