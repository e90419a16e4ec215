// kernel_vector_select.hpp: large batches of 16-bit logits without bias, k <= 8, E = 65..512 on
// rows of whole 16-byte vectors (NVIDIA): a token's row split over a few lanes, as in the split
// kernel, but most logits are never sorted.
//
// A row is E / 8 vectors of 8 logits (experts 8c .. 8c + 7 in vector c). Pass 1 keeps only each
// vector's maximum (three NaN-ignoring bf16x2 / f16x2 max instructions and half of a fourth per
// vector, a NaN only where all eight are) as a vector key: (the maximum's orderable value,
// 0xffff - c), the word a logit's key is with c for the index. The best 8 vector keys of the row
// hold its best 8 logits: a logit x in any other vector u is beaten by each chosen vector v's
// maximum (above x, or equal to x with v < u, so a lower index), 8 distinct logits. Pass 2 reads
// the 8 chosen vectors again (the group has just read them: L1), builds their 64 exact keys and
// keeps the best 8 with the split kernel's networks and butterfly merge. Every row costs the
// same (ties, NaNs, all equal): no check, no fallback.
//
// Why: the split kernel (kernel_split.hpp) and the whole-warp kernel sort or rank every logit,
// about 16 ALU operations per logit on sm_90, where compares, min/max, PRMT and logic run at half
// the FP32 rate (BENCHMARKS.md, "What limits"). Here a logit outside the chosen vectors costs
// about one ALU operation, and the networks run on 64 keys per token whatever E is.
//
// Shapes: 4 lanes of 4, 8, 12 or 16 vectors (E <= 128, 256, 384, 512), each lane then re-reading
// two chosen vectors; for E > 256 below ts_vector_select_four_lanes_pay's batch sizes, 8 lanes of
// 6 or 8 vectors, each re-reading one. The epilogue is the split kernel's: lane l holds ranks
// l * R .. l * R + R - 1 (R = 8 / W).
#ifndef TOPK_SIGMOID_KERNEL_VECTOR_SELECT_HPP
#define TOPK_SIGMOID_KERNEL_VECTOR_SELECT_HPP

#include "kernel_split.hpp"

// Per 16-bit half, the larger of two 16-bit floats, ignoring a NaN (a NaN only where both are):
// max.bf16x2 / max.f16x2, one instruction. Only the order of the result matters here, and
// ts_split_ord16x2 of it is the order of the larger element (-0 and +0 have one order, any NaN
// the bottom one).
template <int Dtype>
__device__ __forceinline__ uint32_t ts_max16x2(uint32_t a, uint32_t b) {
#if defined(TS_PLATFORM_CUDA) && defined(__CUDA_ARCH__)
  uint32_t m;
  if constexpr (Dtype == TS_DTYPE_BF16) asm("max.bf16x2 %0, %1, %2;" : "=r"(m) : "r"(a), "r"(b));
  else asm("max.f16x2 %0, %1, %2;" : "=r"(m) : "r"(a), "r"(b));
  return m;
#else
  uint32_t m = 0;
  for (int s = 0; s < 32; s += 16) {
    const uint16_t ha = static_cast<uint16_t>(a >> s), hb = static_cast<uint16_t>(b >> s);
    const float fa = ts_input<Dtype>::to_float(ha), fb = ts_input<Dtype>::to_float(hb);
    const uint16_t h = ts_isnan(fa) ? hb : ts_isnan(fb) ? ha : (fa >= fb ? ha : hb);
    m |= static_cast<uint32_t>(h) << s;
  }
  return m;
#endif
}

// The maxima of two vectors (words a[0..3] and b[0..3]) in one word, vector a's in the low half.
template <int Dtype>
__device__ __forceinline__ uint32_t ts_vector_max_pair(const uint4& a, const uint4& b) {
  const uint32_t ma = ts_max16x2<Dtype>(ts_max16x2<Dtype>(a.x, a.y), ts_max16x2<Dtype>(a.z, a.w));
  const uint32_t mb = ts_max16x2<Dtype>(ts_max16x2<Dtype>(b.x, b.y), ts_max16x2<Dtype>(b.z, b.w));
  // (ma.lo, mb.lo) against (ma.hi, mb.hi): both vectors' even and odd halves in one max.
  return ts_max16x2<Dtype>(__byte_perm(ma, mb, 0x5410), __byte_perm(ma, mb, 0x7632));
}

// Whether E > 256 takes 4 lanes per token rather than 8. Four lanes run two exchanges per
// butterfly instead of three (at 8 lanes the two butterflies were about 190 of 416 ALU operations
// per lane), for a best 8 of 16 where 8 lanes sort 8, about 25% fewer ALU operations per token;
// but each lane holds twice the row, the kernel keeps 4 blocks per SM at 62-64 registers, and a
// group of 8 tokens per warp waits on twice the loads. H200, graph replay, bf16 k=8, interleaved:
// T=65536 E384 21.9 -> 20.0 us, E512 27.1 -> 24.7; T=16384 E384 7.2 -> 7.1, E512 8.8 -> 8.5; but
// T=4096 (31 per SM) E384 3.47 -> 3.75, E512 4.11 -> 4.30 and T=6336 (48) 4.32 -> 4.57, 4.91 ->
// 5.08; even at T=8448 (64 per SM) for E384 (5.00 -> 4.96), E512 5.72 -> 5.58, T=12672 E512
// 7.45 -> 6.99.
inline bool ts_vector_select_four_lanes_pay(int64_t tokens, int sms) { return tokens / sms >= 64; }

// Lanes per token and logits per lane (W, V) for E experts, or {0, 0} outside E = 65..512.
inline ts_warp_shape ts_pick_vector_select_shape(int experts, int64_t tokens, int sms) {
  if (experts <= 64 || experts > 512) return {0, 0};
  if (experts <= 128) return {4, 32};
  if (experts <= 256) return {4, 64};
  const bool four_lanes = ts_vector_select_four_lanes_pay(tokens, sms);
  if (experts <= 384) return four_lanes ? ts_warp_shape{4, 96} : ts_warp_shape{8, 48};
  return four_lanes ? ts_warp_shape{4, 128} : ts_warp_shape{8, 64};
}

// Blocks of kSplitBlock threads per SM the kernel keeps registers for: 32 registers at V = 32,
// 47-64 above (H200, T=65536 E128: 6 blocks 11.8 us, 8 blocks 11.4). The 8 x 8-vector shape
// (E > 256 below 64 tokens per SM) fits 5 at 48 registers (H200, graph replay, bf16 k=8,
// interleaved: E512 T=4096 4.08 -> 3.79 us, T=6336 4.87 -> 4.77); the 4 x 8 shape did not gain
// from 5 where it matters (E256 T=65536 16.2 -> 16.6 us, though T=16384 6.20 -> 6.04), and 6
// lost (17.6). On sm_80 the 4 x 16 shape would spill at 64 registers, so its device code is
// built for 3 blocks per SM there (the host sizes the grid for 4: the extra blocks wait for a
// slot, the loop is a grid stride).
template <int W, int V>
__host__ __device__ constexpr int ts_vector_select_blocks_per_sm() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if (V > 96) return 3;
#endif
  if (W == 8 && V == 64) return 5;
  return V > 32 ? 4 : 8;
}

// A lane's vector keys all[0 .. kVectors - 1] sorted descending into keys, padded with zero keys
// to S (4 or 8); a lane of more than 8 vectors keeps its best 8 (of 16 slots, as ts_best8_desc
// takes them). Shared by the vector select kernels with and without bias.
template <int kVectors, int S>
__device__ __forceinline__ void ts_keep_vector_keys(uint32_t (&all)[kVectors <= S ? S : 16], uint32_t (&keys)[S]) {
  constexpr int kAll = kVectors <= S ? S : 16;
  static_assert(kVectors <= kAll && (S == 4 || S == 8), "4 or 8 keys, at most 16 vectors");
#pragma unroll
  for (int c = kVectors; c < kAll; ++c) all[c] = 0u;
  if constexpr (kAll == S) {
    ts_sort_desc<S>(all);
#pragma unroll
    for (int c = 0; c < S; ++c) keys[c] = all[c];
  } else {
    ts_best8_desc(all, keys);
  }
}

// The keys of a lane's vectors' maxima (ts_split_load's layout: local vector c is the row's
// vector c * W + lane), kept by ts_keep_vector_keys. Vectors past the row get key 0, below every
// real key.
template <int Dtype, int W, int V, int S>
__device__ __forceinline__ void ts_vector_keys(const uint32_t (&words)[V / 2], int lane, int vectors,
                                               uint32_t (&keys)[S]) {
  constexpr int kVectors = V / 8;
  static_assert(kVectors % 2 == 0, "pairs of vectors");
  uint32_t all[kVectors <= S ? S : 16];
#pragma unroll
  for (int c = 0; c < kVectors; c += 2) {
    const uint4 a = make_uint4(words[4 * c], words[4 * c + 1], words[4 * c + 2], words[4 * c + 3]);
    const uint4 b = make_uint4(words[4 * c + 4], words[4 * c + 5], words[4 * c + 6], words[4 * c + 7]);
    const uint32_t ord = ts_split_ord16x2<Dtype>(ts_vector_max_pair<Dtype>(a, b));
    const int va = c * W + lane, vb = va + W;
    all[c] = va < vectors ? (ord << 16) | ts_index_field(static_cast<uint32_t>(va)) : 0u;
    all[c + 1] = vb < vectors ? (ord & 0xffff0000u) | ts_index_field(static_cast<uint32_t>(vb)) : 0u;
  }
  ts_keep_vector_keys<kVectors, S>(all, keys);
}

// Lane l's chosen vectors (8 / W of them) among the group's best 8 vector keys.
// - 4 lanes of 8 keys: step 1 (lanes l, l ^ 1) folds the two sorted lists into the sorted best 8
//   of both, the same list in both lanes; step 2 (l, l ^ 2) needs only the set, the elementwise
//   maximum of the list and the partner's reversed: S in lanes 0 and 1, S reversed in lanes 2
//   and 3, so lane l takes entries 2 (l & 1) and 2 (l & 1) + 1 of its own (lane 0 S0 S1, lane 1
//   S2 S3, lane 2 S7 S6, lane 3 S5 S4). No sort after the last exchange.
// - Otherwise the butterfly merge of sorted 8-lists (ts_butterfly_topk) and a pick by rank: at
//   4 lanes of 4 keys the form above measured slower (H200, E128 T=16384 4.70 -> 4.93 us, T=4096
//   2.75 -> 3.01), though it has fewer ALU operations.
// With eighth (the bias kernel's check), it also gets the group's 8th best vector key, the least
// chosen one.
template <int W, int S, class Group>
__device__ __forceinline__ void ts_choose_vectors(const Group& group, const uint32_t (&keys)[S], int lane,
                                                  uint32_t (&pick)[8 / W], uint32_t* eighth = nullptr) {
  if constexpr (W == 4 && S == 8) {
    uint32_t m[8], other[8], far[8], set[4];
#pragma unroll
    for (int i = 0; i < 8; ++i) m[i] = keys[i];
#pragma unroll
    for (int i = 0; i < 8; ++i) other[i] = group.xor_read(keys[i], 1);
    ts_fold_best8(m, other);
#pragma unroll
    for (int i = 0; i < 8; ++i) far[i] = group.xor_read(m[i], 2);
#pragma unroll
    for (int i = 0; i < 4; ++i) set[i] = ts_umax(m[i], far[7 - i]);
    const bool odd = (lane & 1) != 0;
    pick[0] = odd ? set[2] : set[0];
    pick[1] = odd ? set[3] : set[1];
    if (eighth != nullptr) {  // lanes l and l ^ 2 hold the two halves of the set
      const uint32_t least = ts_umin(ts_umin(set[0], set[1]), ts_umin(set[2], set[3]));
      *eighth = ts_umin(least, group.xor_read(least, 2));
    }
  } else {
    uint32_t all[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) all[j] = j < S ? keys[j % S] : 0u;
    ts_butterfly_topk<W>(group, all);
#pragma unroll
    for (int i = 0; i < 8 / W; ++i) pick[i] = ts_split_pick<8 / W>(all, lane, i);
    if (eighth != nullptr) *eighth = all[7];
  }
}

// Hint: as the split kernel's (ts_kernel_args::l2_hint; launch_split_shape). Full: for launches
// whose rows fill the shape (E = W * V), where the tests of each vector against the row's end fold
// away: two to three ALU instructions a vector in pass 1 and in the loads. launch_split_shape
// takes it for the 4 x 64 and 4 x 96 shapes (E = 256, 384), where it measured faster.
template <class Policy, int Dtype, int W, int V, bool Hint, bool Full = false>
__global__ void __launch_bounds__(kSplitBlock, (ts_vector_select_blocks_per_sm<W, V>()))
    ts_vector_select_kernel(const ts_kernel_args a) {
  ts_prefetch_first_row<uint16_t, W, Hint>(a);
  ts_await_prior_grid(a.early_dependents);
  static_assert(Dtype != TS_DTYPE_F32, "16-bit logits: 32-bit keys");
  static_assert((W == 4 || W == 8) && W * V >= 128 && V % 16 == 0 && V <= 128, "4 or 8 lanes, pairs of vectors");
  using Key = uint32_t;
  constexpr int kRanks = 8 / W;                // ranks per lane, and chosen vectors per lane
  constexpr int kSortKeys = V / 8 <= 4 ? 4 : 8;  // a lane's vector keys (its best 8 above 8), padded
  const int tokens_per_block = static_cast<int>(blockDim.x) / W;
  const int lane = static_cast<int>(threadIdx.x) & (W - 1);
  const typename Policy::template Group<W> group(static_cast<int>(threadIdx.x % TS_WAVE));
  const int experts = Full ? W * V : a.experts;
  const int vectors = experts / 8;  // vector_loads: E is a multiple of 8
  const int64_t stride = static_cast<int64_t>(gridDim.x) * tokens_per_block;
  const uint16_t* const logits = static_cast<const uint16_t*>(a.logits);
  for (int64_t token = static_cast<int64_t>(blockIdx.x) * tokens_per_block + static_cast<int>(threadIdx.x) / W;
       token < a.tokens; token += stride) {  // uniform within a group
    const uint16_t* const row = logits + token * a.row_stride;
    uint32_t words[V / 2];
    ts_split_load<W, V>(row, lane, experts, words);

    // Pass 1: the vectors this lane re-reads, from the group's best 8 vector keys.
    Key vkeys[kSortKeys];
    ts_vector_keys<Dtype, W, V>(words, lane, vectors, vkeys);
    Key chosen[kRanks];
    ts_choose_vectors<W>(group, vkeys, lane, chosen);

    // Pass 2: the chosen vectors' exact keys, the lane's best 8 of them, merged over the group.
    uint4 v[kRanks];
#pragma unroll
    for (int i = 0; i < kRanks; ++i) {
      chosen[i] = ts_key_index(chosen[i]);  // the vector's index
      v[i] = *reinterpret_cast<const uint4*>(row + chosen[i] * 8);
    }
    Key keys[8 * kRanks];
#pragma unroll
    for (int i = 0; i < kRanks; ++i) {
      const uint32_t o[4] = {ts_split_ord16x2<Dtype>(v[i].x), ts_split_ord16x2<Dtype>(v[i].y),
                             ts_split_ord16x2<Dtype>(v[i].z), ts_split_ord16x2<Dtype>(v[i].w)};
      Key vk[8];
      ts_lane_pair_keys<8>(o, static_cast<int>(chosen[i]) * 8, vk);
#pragma unroll
      for (int j = 0; j < 8; ++j) keys[8 * i + j] = vk[j];
    }
    Key top[8];
    ts_best8_desc(keys, top);
    ts_butterfly_topk<W>(group, top);  // every lane of the group: the token's best 8, sorted

    ts_split_epilogue<W, Dtype>(a, group, top, lane, token);
  }
}

#endif  // TOPK_SIGMOID_KERNEL_VECTOR_SELECT_HPP
