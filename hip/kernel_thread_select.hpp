// kernel_thread_select.hpp: the largest batches of 16-bit logits without bias, k <= 8, E = 72..120
// (it can take E <= 128; device_backend.hip says why E128 does not) on rows of whole 16-byte
// vectors (NVIDIA): one thread per token, the vector selection of kernel_vector_select.hpp
// without a group to share it.
//
// A row is E / 8 <= 16 vectors of 8 logits. Pass 1 keeps each vector's maximum as a vector key
// (ts_vector_keys' words: the maximum's orderable value, 0xffff - c) and sorts the best 8 of
// them: the vectors that hold the row's best 8 logits (kernel_vector_select.hpp says why). Pass
// 2 uses their order too. The vector of rank r holds at most 8 - r of the best 8: the maxima of
// the r vectors above it beat each of its logits (a larger value, or the same value at a lower
// index, since a lower-ranked vector with an equal maximum has a higher vector index). So pass 2
// re-reads the chosen vectors (L1), sorts each one's exact keys but keeps only its best 8 - r
// (the dead outputs of the sorting network fold away), and merges them in rank order into the
// token's list; after vector r is merged the list's first r + 1 places are final, so each merge
// sorts only the places after them. Every row costs the same (ties, NaNs, all equal).
//
// Why: the group kernels spend most of their instructions on work every lane of a group
// repeats (the merges over shuffles) and on sorting all 64 keys of the chosen vectors. Here a
// token's networks see 36 keys once, in one thread: 1768 SASS instructions per token against
// the 4 x 32 vector select shape's 4 x 1600 (sm_90). The time fell far less (H100, graph
// replay, bf16 k=8, rows and outputs rotating through HBM: T=65536 E128 12.6 -> 12.6-12.8 us,
// E120 13.0 -> 12.25, E72 10.4 -> 9.5): such a batch is one wave whose rows all arrive over the
// same few microseconds, and a thread's chain starts only once its whole row is in (Nsight Compute:
// long-scoreboard stalls first, 3.2 active warps per scheduler). With fewer tokens per SM the
// group kernels' parallelism wins (ts_thread_select_pays, device_backend.hip).
#ifndef TOPK_SIGMOID_KERNEL_THREAD_SELECT_HPP
#define TOPK_SIGMOID_KERNEL_THREAD_SELECT_HPP

#include "kernel_vector_select.hpp"

constexpr int kThreadSelectBlock = 128;
// The most vectors a row may have here (E <= 128): 64 registers of one row's loads in flight.
constexpr int kThreadSelectVectors = 16;
// Blocks per SM the kernel keeps registers for: 4 x 128 threads at up to 128 registers (it takes
// 78), 512 tokens in flight per SM, so a batch of 65536 tokens on 132 SMs is one wave.
constexpr int kThreadSelectBlocksPerSm = 4;

#if defined(TS_PLATFORM_CUDA)
// The exact keys (ts_split_ord16x2's kind) of vector c of a row, sorted descending: only the
// first few are used by the caller, and the exchanges that feed only the others fold away.
template <int Dtype>
__device__ __forceinline__ void ts_sorted_vector_keys(const uint4& v, uint32_t c, uint32_t (&keys)[8]) {
  const uint32_t o[4] = {ts_split_ord16x2<Dtype>(v.x), ts_split_ord16x2<Dtype>(v.y), ts_split_ord16x2<Dtype>(v.z),
                         ts_split_ord16x2<Dtype>(v.w)};
  ts_lane_pair_keys<8>(o, static_cast<int>(c) * 8, keys);
  ts_sort_desc<8>(keys);
}

// The fields of ts_kernel_args that ts_thread_epilogue reads, passed by value to a function that is
// not inlined (ts_staged_pair_tail), so the launch's parameters stay where they are.
struct ts_thread_outputs {
  float* weights;
  int32_t* indices;
  int32_t k;
  int32_t renormalize;
  float scale;
};

// One token's weights and indices from its best 8 keys, sorted: the weights looked up
// (weight_table.hpp), the renormalisation's sum in rank order (the same additions as every
// backend), the eight divisions without the IEEE division's branch where that gives its bits
// (ts_division_in_range, checked once: the eight checks and branches held 18% of a draft's stall
// samples, though removing them changed no time) and from one reciprocal of the sum, two 16-byte
// stores of each output where k = 8 and they allow it. The lookups and the one reciprocal took
// the benchmark's T=65536 E128 from 8.34 to 7.68 us (H200; BENCHMARKS.md, 53). K8: the launch
// promises k = 8 and 16-byte aligned outputs, so the tests of k and the scalar stores fold away.
// Args: ts_kernel_args, or ts_thread_outputs (its fields of the same names).
//
// ts_thread_weights: the weights of the 8 ranks, their sum (0 where the launch does not
// renormalize) and whether every division may go without the IEEE division's branch.
template <int Dtype, bool K8, class Args>
__device__ __forceinline__ bool ts_thread_weights(const Args& a, const uint32_t (&top)[8], float (&w)[8],
                                                  float& sum) {
  const int k = K8 ? 8 : a.k;
#pragma unroll
  for (int r = 0; r < 8; ++r) w[r] = ts_weight_of_ord<Dtype>(top[r] >> 16);
  sum = 0.0f;
  bool in_range = true;
  if (a.renormalize) {  // uniform
#pragma unroll
    for (int r = 0; r < 8; ++r) sum = r < k ? TS_ADD(sum, w[r]) : sum;
    // With k = 8 the weights' table is non-decreasing in the key (weight_table_gen.cpp checks it),
    // so w[7] is the least of the eight, all are at most 1 and the sum at most 8: where w[7] >=
    // 2^-60, ts_division_in_range holds for every rank without testing each.
    in_range = K8 && w[7] >= 0x1p-60f;
    if (!in_range) {
      in_range = true;
#pragma unroll
      for (int r = 0; r < 8; ++r) in_range = in_range && (r >= k || ts_division_in_range(w[r], sum));
    }
  }
  return in_range;
}

// ts_thread_store: R consecutive ranks from rank `first` (R = 8: all of them; 4: a pair's lane's
// half, ts_pair_route), their final weights and indices stored, the weights' first.
template <bool K8, int R, class Args>
__device__ __forceinline__ void ts_thread_store(const Args& a, const float (&w)[R], const uint32_t (&key)[R],
                                                float sum, bool in_range, int64_t token, int first,
                                                bool vector_stores) {
  const int k = K8 ? 8 : a.k;
  float out[R];
  if (in_range || sum == 0.0f) {
    const float reciprocal = ts_reciprocal_refined(sum);
#pragma unroll
    for (int r = 0; r < R; ++r)
      out[r] = ts_final_weight_of_reciprocal(w[r], sum, reciprocal, a.renormalize != 0, a.scale);
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r) out[r] = ts_final_weight(w[r], sum, true, a.scale);
  }
  int32_t index[R];
#pragma unroll
  for (int r = 0; r < R; ++r) index[r] = static_cast<int32_t>(ts_key_index(key[r]));
  const int64_t o = token * k + first;
  if (K8 || vector_stores) {  // uniform: k = 8, both outputs 16-byte aligned
    float4* const wv = reinterpret_cast<float4*>(a.weights + o);
    int4* const iv = reinterpret_cast<int4*>(a.indices + o);
#pragma unroll
    for (int q = 0; q < R / 4; ++q) wv[q] = make_float4(out[4 * q], out[4 * q + 1], out[4 * q + 2], out[4 * q + 3]);
#pragma unroll
    for (int q = 0; q < R / 4; ++q)
      iv[q] = make_int4(index[4 * q], index[4 * q + 1], index[4 * q + 2], index[4 * q + 3]);
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      if (first + r < k) {
        a.weights[o + r] = out[r];
        a.indices[o + r] = index[r];
      }
    }
  }
}

template <int Dtype, bool K8, class Args>
__device__ __forceinline__ void ts_thread_epilogue(const Args& a, const uint32_t (&top)[8], int64_t token,
                                                   bool vector_stores) {
  float w[8], sum;
  const bool in_range = ts_thread_weights<Dtype, K8>(a, top, w, sum);
  ts_thread_store<K8, 8>(a, w, top, sum, in_range, token, 0, vector_stores);
}

// Local vectors I .. N - 1 of a route merged into top in rank order: the thread route's chosen
// vectors (Step 1: local vector i is rank i) or a pair's lane's (Step 2: rank 2i + half), held in
// v. Local vector i adds at most its best 8 - Step * i keys (the rank-r vector holds at most 8 - r
// of the best 8), after the i places that are final (the maxima of the i vectors before it beat
// each of its keys); with Step 1, ts_fold_ranked<I> reads no more than those.
template <int Dtype, int Step, int I, int N>
__device__ __forceinline__ void ts_merge_ranked_vectors(const uint4 (&v)[N], const uint32_t (&chosen)[8], int half,
                                                        uint32_t (&top)[8]) {
  if constexpr (I < N) {
    uint32_t keys[8];
    const uint32_t rank_key = Step == 1 ? chosen[I] : half != 0 ? chosen[Step * I + 1] : chosen[Step * I];
    ts_sorted_vector_keys<Dtype>(v[I], ts_key_index(rank_key), keys);
    if constexpr (Step > 1) {
#pragma unroll
      for (int j = 8 - Step * I; j < 8; ++j) keys[j] = 0u;
    }
    ts_fold_ranked<I>(top, keys);
    ts_merge_ranked_vectors<Dtype, Step, I + 1>(v, chosen, half, top);
  }
}

// One token routed from its row, vector c of which (8 logits, 16 bytes) load(c) returns: the
// rows of ts_thread_select_kernel come from global memory, those of ts_thread_staged_kernel
// (kernel_thread_staged.hpp) from shared memory. A row has `vectors` <= MaxVectors (16, or 32
// for the staged kernel's E = 256).
template <int Dtype, bool K8, int MaxVectors, class LoadVector>
__device__ __forceinline__ void ts_thread_route(const ts_kernel_args& a, int vectors, int64_t token,
                                                bool vector_stores, const LoadVector& load) {
  static_assert(MaxVectors % 8 == 0 && MaxVectors <= 32, "blocks of 8 vector keys, indices below 2^16");
  // Pass 1: every vector's maximum as a vector key (0 past the row), the best 8 sorted.
  uint32_t all[MaxVectors];
#pragma unroll
  for (int c = 0; c < MaxVectors; c += 2) {
    uint4 va = make_uint4(0u, 0u, 0u, 0u), vb = va;
    if (c < vectors) va = load(c);
    if (c + 1 < vectors) vb = load(c + 1);
    const uint32_t ord = ts_split_ord16x2<Dtype>(ts_vector_max_pair<Dtype>(va, vb));
    all[c] = c < vectors ? (ord << 16) | ts_index_field(static_cast<uint32_t>(c)) : 0u;
    all[c + 1] = c + 1 < vectors ? (ord & 0xffff0000u) | ts_index_field(static_cast<uint32_t>(c + 1)) : 0u;
  }
  uint32_t chosen[8];
  ts_best8_desc(all, chosen);

  // Pass 2: the chosen vectors again, in rank order; rank r adds at most its best 8 - r.
  uint4 v[8];
#pragma unroll
  for (int r = 0; r < 8; ++r) v[r] = load(static_cast<int>(ts_key_index(chosen[r])));
  uint32_t top[8];
  ts_sorted_vector_keys<Dtype>(v[0], ts_key_index(chosen[0]), top);
  ts_merge_ranked_vectors<Dtype, 1, 1>(v, chosen, 0, top);

  ts_thread_epilogue<Dtype, K8>(a, top, token, vector_stores);
}

// One token routed by a pair of lanes, lanes 2j and 2j + 1 of a warp (half = lane & 1), on a
// row of 16 vectors (E = 128) that load(c) returns: the staged kernel's last tiles
// (kernel_thread_staged.hpp says why). Every lane of the warp takes part (the exchanges are
// whole-warp shuffles); `store` says whether the pair's token is one to write. Lane h reads
// vectors c + 4h + 8d (c < 4, d < 2), so that a quarter warp's 16-byte reads of the staged rows,
// swizzled by the row's low three bits, fall on eight different bank groups. Pass 1: each lane's
// 8 vector keys sorted, and one exchange folds the pair's two lists into the row's chosen 8, the
// same list in both lanes. Pass 2: lane h merges the chosen ranks h, h + 2, h + 4, h + 6 in rank
// order (its list's first i places are final once i vectors are in; the rank-2i vector adds at
// most its best 8 - 2i keys: ts_thread_route's argument), and one more exchange folds the two
// lists into the token's best 8. Then each lane stores four ranks (ts_thread_store).
template <int Dtype, bool K8, class Args, class LoadVector>
__device__ __forceinline__ void ts_pair_route(const Args& a, int64_t token, bool store, bool vector_stores,
                                              const LoadVector& load) {
  const int half = static_cast<int>(threadIdx.x) & 1;
  uint32_t chosen[8];
#pragma unroll
  for (int d = 0; d < 2; ++d) {
#pragma unroll
    for (int c = 0; c < 4; c += 2) {
      const int va = c + 4 * half + 8 * d;
      const uint32_t ord = ts_split_ord16x2<Dtype>(ts_vector_max_pair<Dtype>(load(va), load(va + 1)));
      chosen[4 * d + c] = (ord << 16) | ts_index_field(static_cast<uint32_t>(va));
      chosen[4 * d + c + 1] = (ord & 0xffff0000u) | ts_index_field(static_cast<uint32_t>(va + 1));
    }
  }
  ts_sort_desc<8>(chosen);
  uint32_t other[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) other[i] = __shfl_xor_sync(0xffffffffu, chosen[i], 1);
  ts_fold_best8(chosen, other);

  uint4 v[4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
    v[i] = load(static_cast<int>(ts_key_index(half != 0 ? chosen[2 * i + 1] : chosen[2 * i])));
  uint32_t top[8];
  ts_sorted_vector_keys<Dtype>(v[0], ts_key_index(half != 0 ? chosen[1] : chosen[0]), top);
  ts_merge_ranked_vectors<Dtype, 2, 1>(v, chosen, half, top);
#pragma unroll
  for (int i = 0; i < 8; ++i) other[i] = __shfl_xor_sync(0xffffffffu, top[i], 1);
  ts_fold_best8(top, other);

  if (store) {  // both lanes compute the whole sum, in rank order; lane h stores ranks 4h .. 4h + 3
    float w[8], sum;
    const bool in_range = ts_thread_weights<Dtype, K8>(a, top, w, sum);
    float mine[4];
    uint32_t key[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      mine[i] = half != 0 ? w[4 + i] : w[i];
      key[i] = half != 0 ? top[4 + i] : top[i];
    }
    ts_thread_store<K8, 4>(a, mine, key, sum, in_range, token, 4 * half, vector_stores);
  }
}

// Whether the k = 8 outputs may be stored as 16-byte vectors (both 16-byte aligned).
__host__ __device__ __forceinline__ bool ts_thread_vector_stores(const ts_kernel_args& a) {
  return a.k == 8 && ((reinterpret_cast<uintptr_t>(a.weights) | reinterpret_cast<uintptr_t>(a.indices)) & 15u) == 0;
}

// Thread t of the grid routes token t (and every gridDim.x * blockDim.x-th after it), its row
// read whole by its own 16-byte loads (pass 2's re-read from the L1). Staging a warp's 32 rows in
// shared memory by coalesced copies (cp.async, 512 contiguous bytes per copy instruction), every
// warp waiting for its own, cut the 32 cache lines each of these loads touches per warp
// instruction to 4, and the time with every row in the L2 (H100, T=65536 E128: 8.90 -> 8.38 us),
// but not with the rows rotating through HBM as the benchmark's are: 11.35 -> 11.6 us at E128,
// 10.66 -> 11.6 at E120, 8.39 -> 9.75 at E72 (kernel_thread_staged.hpp says what differs there).
// Half the threads with each one's next row in flight while it routes the current one gained
// only near 2 x 256 tokens per SM and lost elsewhere (BENCHMARKS.md, Not kept after 39).
template <int Dtype>
__global__ void __launch_bounds__(kThreadSelectBlock, kThreadSelectBlocksPerSm)
    ts_thread_select_kernel(const ts_kernel_args a) {
  ts_await_prior_grid(a.early_dependents);
  static_assert(Dtype != TS_DTYPE_F32, "16-bit logits: 32-bit keys");
  const int vectors = a.experts / 8;  // 9..16: vector_loads, E = 72..128
  const bool vector_stores = ts_thread_vector_stores(a);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const uint16_t* const logits = static_cast<const uint16_t*>(a.logits);
  for (int64_t token = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; token < a.tokens;
       token += stride) {
    const uint16_t* const row = logits + token * a.row_stride;
    ts_thread_route<Dtype, false, kThreadSelectVectors>(a, vectors, token, vector_stores,
                           [row](int c) { return *reinterpret_cast<const uint4*>(row + c * 8); });
  }
}
#endif  // TS_PLATFORM_CUDA

#endif  // TOPK_SIGMOID_KERNEL_THREAD_SELECT_HPP
