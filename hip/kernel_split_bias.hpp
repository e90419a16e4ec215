// kernel_split_bias.hpp: large batches of 16-bit logits with a correction bias, k <= 8,
// E = 65..512 (NVIDIA): the split kernel's layout (kernel_split.hpp: W lanes per token, V logits
// per lane) ranking cheap 32-bit keys, with exact values for the winners only.
//
// With a bias the ranking value is v = sigmoid(x) + b, whose exact form (semantics.h) costs a
// polynomial and an IEEE division per logit. The whole-warp bias path (bias_prefilter.hpp)
// spends a fixed ~450 warp instructions per token on its candidates, which is most of its time.
// Here each logit gets the prefilter's cheap score s' (two MUFU instructions, within
// kTsPrefilterSigmoidBound of the exact sigmoid) turned into a fixed-point value
//
//   y = s' * scale + (b * scale - C)    (one FMA; C = 13 * 2^20),
//
// where the block picks scale = 2^(21 - ex) from the largest |b| (|b| + 1 < 2^ex), so every
// non-NaN y lies in (-15 * 2^20, -11 * 2^20), inside (-2^24, -2^23) where the fp32 grid is the
// integers: y's bits are 0xcb000000 + m with |y| = 2^23 + m, and q = 2^23 - 1 - m (>= 2^20) grows
// with y. The key is (q << 9) | (511 - expert): distinct, and ordered as (y, lower index first),
// and it is one integer multiply-add of y's bits (ts_split_bias_key_of_y), no clamp and no test:
// a NaN y, which the hardware always returns as 0x7fffffff (tests/split_bias_key_check.cu checks
// it for every 16-bit logit), gives q = 0, below every number, and so do the experts past the
// row, whose b * scale - C is a NaN. (The form before, y + 1.5 * 2^23 in [2^23, 2^24) with a NaN
// clamped, cost a float maximum and a select per logit: H100, E128 with bias 16.1 -> 15.5 us,
// BENCHMARKS.md 44.) Up to E = 128 every lane sorts its slice's keys; above, as
// in the vector select kernel (kernel_vector_select.hpp), each vector of 8 logits first gets one
// key, its best pass-1 value's (q, 511 - vector), the group picks the 8 vectors with the best of
// these, and only their 64 keys are computed (as above) and sorted (Select). The pass-1 value
// takes one MUFU instruction a logit instead of two (ts_split_bias_vector_tanh_ys), so the chosen
// 8 hold the row's best 8 keys only where no other vector comes within its margin of the k-th
// key, which the check below asks too. The butterfly merge gives every lane the group's best 8 keys.
//
// |y - (v * scale - C)| <= bound * scale + 1.125 (the two roundings of y and the half-ulp of v's
// own fp32 addition, at most 2^-24 * 2^21), so the cheap k best are the exact k best as a set
// when no other key comes within D = floor(2 (bound * scale + 1.125)) + 1 of the k-th one's q
// (keys tied in q are then impossible across the boundary). Checked by counting, in each lane's
// own sorted list, the keys with q >= q_k - D + 1: the group total must be k, and a lane whose
// whole list counts may hide more, so it fails the check; with Select, no vector outside the chosen
// 8 may have its pass-1 key within the select margin of that floor either. When the k-th key is a
// NaN (q = 0) the set is exact too: every number ranks above, and NaNs rank by index, as the keys
// do.
// With 2^-20 for the bound, D = 5.
//
// The winners then get their exact weights. Their cheap order is their exact order where every
// two neighbours are D apart in q (the same argument), as for nearly every row, or where the
// second of two is a NaN (q = 0: numbers rank above NaNs, and NaNs by index, in both keys); a
// warp with a token where two are closer (ties in q: saturated scores with equal biases) gives
// its winners exact 64-bit keys and ranks them by counting larger keys in shared memory (H100:
// E128 with the benchmark's bias 16.6 -> 16.1 us, BENCHMARKS.md 43). A token that fails the
// check (a near-tie at the k-th place: 0.1-0.3% of random rows at E = 384-512) gets exact values
// for its band, the keys at or above the floor (ts_split_bias_band_size): k plus the near-ties,
// listed from the lanes' own sorted lists and, with Select, from the vectors outside the chosen 8
// whose pass-1 keys come within the select margin of the floor. (Up to E = 128 the whole warp
// takes such a token's row exactly instead: kWarpExact in the kernel.) Only where a band outgrows
// its list, or the bias holds a NaN or an infinity (the fixed point needs finite biases), does the
// warp recompute its tokens exactly (64-bit keys of every logit, 8 at a time). Each warp routes only two
// or three groups of tokens at T=65536 and the batch ends with its slowest warp, so what a failed
// token costs is its warp's latency: at E = 128, T=65536, one such row in 1024 (tiled) added about
// 8 us to the batch with the exact recomputation and about 3 us with the band (H200; BENCHMARKS.md
// 34).
#ifndef TOPK_SIGMOID_KERNEL_SPLIT_BIAS_HPP
#define TOPK_SIGMOID_KERNEL_SPLIT_BIAS_HPP

#include "bias_prefilter.hpp"
#include "kernel_split.hpp"
#include "kernel_vector_select.hpp"

#if defined(TS_PLATFORM_CUDA)
// Lanes per token and logits per lane: 4 x 32 for E = 65..128 (every logit's key sorted), 4 x 64,
// 96 or 128 with the vector selection (Select, V > 32) for E = 129..512; {0, 0} outside E = 65..512.
// The vector selection did not pay at E <= 128 (H200, graph replay, bf16 k=8, T=65536, rows of
// the benchmark's kinds / random normal rows: 23.4 vs 22.8 us / 17.6 vs 16.7), and 8 lanes of 48
// or 64 (three-step butterflies) lost to 4 lanes of 96 or 128 (E384 34.8 vs 29.8, E512 38.8 vs
// 35.1).
inline ts_warp_shape ts_pick_split_bias_shape(int experts) {
  if (experts <= 64 || experts > 512) return {0, 0};
  if (experts <= 128) return {4, 32};
  return {4, experts <= 256 ? 64 : experts <= 384 ? 96 : 128};
}

// Blocks per SM the kernel keeps registers for: 64 registers, no spills (sm_90, sm_80). A form that
// prefetched the next row, as the split kernel's did before 8d63da7, needed 80 at 3 blocks, spilled a few bytes
// in its exact path and measured the same (H200, T=65536 with bias: E128 20.4-20.8 us vs 20.6,
// E256 32.7-33.0 vs 33.2), so there is none. The vector selection at 3 blocks (80 registers):
// E256 27.0 -> 28.3 us, E384 31.3 -> 34.4, E512 35.8 -> 40.3 (benchmark's kinds of rows), though
// random normal rows gained at E384 (37.2 -> 36.0). On sm_80 the 4 x 64 shape spilled 4 bytes at
// 64 registers, so there its device code is built for 3 blocks per SM (not measured: no A100
// here; the host sizes the grid for 4, and the extra blocks wait for a slot; at 80 registers the
// 4 x 96 and 4 x 128 shapes spilled instead).
constexpr int kSplitBiasBlocksPerSm = 4;
template <bool Select, int V>
__host__ __device__ constexpr int ts_split_bias_device_blocks_per_sm() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if (Select && V == 64) return 3;
#endif
  return kSplitBiasBlocksPerSm;
}

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

// The fixed point's scale for a bias whose largest magnitude is `largest` (finite): 2^(21 - ex),
// |b| + 1 < 2^ex (ex = the exponent of |b| + 1 rounded up, plus one; 1..129).
__device__ __forceinline__ float ts_split_bias_scale(float largest) {
  const int ex = static_cast<int>(ts_float_bits(__fadd_ru(largest, 1.0f)) >> 23) - 126;
  return ts_bits_float(static_cast<uint32_t>(21 - ex + 127) << 23);
}

// b * scale - C rounded, the bias term of every y of expert e (top of the file; C = 13 * 2^20).
__device__ __forceinline__ float ts_split_bias_fixed(float b, float scale) {
  return __fmaf_rn(b, scale, -13631488.0f);
}

// The fixed-point value y of one logit (x as fp32), with ybias = ts_split_bias_fixed(b, scale)
// (see the top of the file); NaN for a NaN logit.
__device__ __forceinline__ float ts_split_bias_y(float x, float ybias, float scale) {
  return __fmaf_rn(ts_sigmoid_prefilter(x), scale, ybias);
}

// The key (q << 9) | field of a fixed-point value y, field = 511 - expert (or 511 - vector for a
// vector's key): y's bits times -512 keep -(m << 9) (the exponent's bits shift out), and adding
// field - 512 gives ((2^23 - 1 - m) << 9) + field. The canonical NaN 0x7fffffff gives q = 0
// (-(0x7fffff << 9) - 512 = 0 mod 2^32).
__device__ __forceinline__ uint32_t ts_split_bias_key_of_y(float y, uint32_t field) {
  return ts_float_bits(y) * 0xfffffe00u + (field - 512u);
}

// The fixed-point values of row vector vec's eight logits (its four words).
template <int Dtype>
__device__ __forceinline__ void ts_split_bias_vector_ys(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, int vec,
                                                        const float* bias_fixed, float scale, float (&y)[8]) {
  const float4 yb0 = reinterpret_cast<const float4*>(bias_fixed)[2 * vec];
  const float4 yb1 = reinterpret_cast<const float4*>(bias_fixed)[2 * vec + 1];
  const float yb[8] = {yb0.x, yb0.y, yb0.z, yb0.w, yb1.x, yb1.y, yb1.z, yb1.w};
  const uint32_t words[4] = {w0, w1, w2, w3};
#pragma unroll
  for (int i = 0; i < 8; ++i) y[i] = ts_split_bias_y(ts_split_bias_logit<Dtype>(words[i >> 1], i & 1), yb[i], scale);
}

// The cheap keys of row vector vec (its four words); past the row q = 0 (a NaN b * scale - C),
// ranked below every expert of the row (a larger index). Expert e = 8 * vec + i has field 511 - e
// = vec_field ^ i, vec_field = 511 - 8 * vec (511 - X == 511 ^ X for X < 512). The 4 x 32 shape
// passes lane 0's vector's field instead, a compile-time constant, and puts the lane's back on its
// best 8 (the kernel).
template <int Dtype>
__device__ __forceinline__ void ts_split_bias_vector_keys(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3, int vec,
                                                          const float* bias_fixed, float scale, uint32_t vec_field,
                                                          uint32_t (&keys)[8]) {
  float y[8];
  ts_split_bias_vector_ys<Dtype>(w0, w1, w2, w3, vec, bias_fixed, scale, y);
#pragma unroll
  for (int i = 0; i < 8; ++i) keys[i] = ts_split_bias_key_of_y(y[i], vec_field ^ static_cast<uint32_t>(i));
}

// The pass-1 values of row vector vec's eight logits (Select): y' = (t + 1) * scale / 2 + (b *
// scale - C) with t = ts_tanh_half_approx(x), one MUFU instruction a logit where y takes two. With
// Select the block's bias_fixed holds (b * scale - C) + scale / 2 (the kernel's setup), so y' is
// one FMA after the MUFU, t * scale / 2 + bias_fixed (the t + 1 of the form before cost an add a
// logit: 64-128 a lane and token). |y' - (v * scale - C)| <= kTsTanhScoreBound * scale + 1.625 (the
// roundings of the FMA, 0.5: y' < 2^24 in magnitude; of the bias term, 0.5, and of its sum with
// scale / 2, 0.5, none where scale / 2 is an integer, as wherever |b| + 1 < 2^20; and v's own
// 0.125). The same bias_fixed puts every cheap y of the vector selection scale / 2 above the form
// at the top of the file (an order-keeping shift, and those y stay inside (-2^24, -2^23)), so with
// y's 1.125, |y' - (y - scale / 2)| <= (kTsTanhScoreBound + kTsPrefilterSigmoidBound) * scale +
// 2.75: the kernel's select margin (below) in q, to which it adds scale / 2 and the half of its
// sum's rounding.
template <int Dtype>
__device__ __forceinline__ void ts_split_bias_vector_tanh_ys(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3,
                                                             int vec, const float* bias_fixed, float half_scale,
                                                             float (&y)[8]) {
  const float4 yb0 = reinterpret_cast<const float4*>(bias_fixed)[2 * vec];
  const float4 yb1 = reinterpret_cast<const float4*>(bias_fixed)[2 * vec + 1];
  const float yb[8] = {yb0.x, yb0.y, yb0.z, yb0.w, yb1.x, yb1.y, yb1.z, yb1.w};
  const uint32_t words[4] = {w0, w1, w2, w3};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const float t = ts_tanh_half_approx(ts_split_bias_logit<Dtype>(words[i >> 1], i & 1));
    y[i] = __fmaf_rn(t, half_scale, yb[i]);
  }
}

// Pass 1 of the vector selection (Select): the key of row vector vec's best pass-1 value, (q of the
// largest y', 511 - vec), 0 past the row. Since y' is within the select margin of y, the best 8 of
// these keys need not hold the row's best 8 cheap keys: the check (below) also asks that no vector
// outside them come within the margin of the k-th place, and the band takes such a vector's logits
// where one does (y' stays inside the fixed point's range: the margin is far below 2^20). fmaxf
// ignores a NaN, so the maximum is NaN (q = 0) only where all eight are. With ClampOnSm80, sm_80
// builds first turn a NaN maximum into -(2^24 - 1), whose key is the NaN's (q = 0): without it
// ptxas (CUDA 13.0) spilled 4 bytes in the shapes of 64 and 96 logits a lane, with it 8 in the
// shape of 128; since the k = 8 kernel (BENCHMARKS.md 45) the shape of 96 spills 20 bytes with it
// and none without, and since pass 1's add went into the bias term (BENCHMARKS.md 66) the shape of
// 128 spills 4 bytes without it (k != 8) and none with it: the shapes of 64 and 128 ask for it.
template <int Dtype, bool ClampOnSm80>
__device__ __forceinline__ uint32_t ts_split_bias_vector_best_key(uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3,
                                                                  int vec, int experts, const float* bias_fixed,
                                                                  float half_scale) {
  float y[8];
  ts_split_bias_vector_tanh_ys<Dtype>(w0, w1, w2, w3, vec, bias_fixed, half_scale, y);
  float best = fmaxf(fmaxf(fmaxf(y[0], y[1]), fmaxf(y[2], y[3])), fmaxf(fmaxf(y[4], y[5]), fmaxf(y[6], y[7])));
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  if constexpr (ClampOnSm80) best = fmaxf(best, -16777215.0f);
#endif
  return vec * 8 < experts ? ts_split_bias_key_of_y(best, 511u - static_cast<uint32_t>(vec)) : 0u;
}

// The exact (semantics) key and weight of expert e's logit (ts_sigmoid_branchless: the same bits
// as ts_sigmoid without the division's branch, so several interleave; tests/sigmoid_branchless.cu
// checks it on every fp32 input).
template <int Dtype>
__device__ __forceinline__ void ts_split_bias_exact_of_bits(uint32_t bits, uint32_t e, const float* bias,
                                                            uint64_t& key, float& weight) {
  const float x = ts_split_bias_logit<Dtype>(bits, 0);
  const float score = ts_sigmoid_branchless(x);
  key = ts_key64(ts_ord32(ts_biased_value_of_score(score, bias[e])), e);
  weight = ts_weight_of_score(x, score);
}
template <int Dtype>
__device__ __forceinline__ void ts_split_bias_exact(const uint16_t* row, uint32_t e, const float* bias, uint64_t& key,
                                                    float& weight) {
  ts_split_bias_exact_of_bits<Dtype>(row[e], e, bias, key, weight);
}

// The exact keys of row vector vec's eight logits (its 16 bytes v), sorted descending; 0 past the
// row.
template <int Dtype>
__device__ __forceinline__ void ts_split_bias_exact_vector(const uint4& v, int vec, int experts, const float* bias,
                                                           uint64_t (&block)[8]) {
  const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint32_t e = static_cast<uint32_t>(vec * 8 + i);
    const float x = ts_split_bias_logit<Dtype>(words[i >> 1], i & 1);
    const float b = vec * 8 < experts ? bias[e] : 0.0f;
    const uint64_t key = ts_key64(ts_ord32(ts_biased_value_of_score(ts_sigmoid_branchless(x), b)), e);
    block[i] = vec * 8 < experts ? key : 0u;
  }
  ts_sort_desc<8>(block);
}

// The exact best 8 of a lane's slice (64-bit keys of every logit, one 16-byte vector at a time
// so that only 16 keys are live), merged over the group: the path of warps in which a token's
// band outgrows its list or the bias is not finite (rare since the bands, BENCHMARKS.md 34). The
// loop stays rolled up: unrolled, its loads in flight took the registers that 4 blocks per SM
// leave (spills at 64); the eight sigmoids of a vector are independent, with no division branch.
// Vectors past the row get key 0.
template <int Dtype, int W, int V, class Group>
__device__ __forceinline__ void ts_split_bias_exact_best8(const Group& group, const uint16_t* row, int lane,
                                                          int experts, const float* bias, uint64_t (&best)[8]) {
#pragma unroll
  for (int j = 0; j < 8; ++j) best[j] = 0;
#pragma unroll 1
  for (int c = 0; c < V / 8; ++c) {
    const int vec = c * W + lane;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (vec * 8 < experts) v = *reinterpret_cast<const uint4*>(row + vec * 8);
    uint64_t block[8];
    ts_split_bias_exact_vector<Dtype>(v, vec, experts, bias, block);
    if (c == 0) {
#pragma unroll
      for (int j = 0; j < 8; ++j) best[j] = block[j];
    } else {
      ts_fold_best8(best, block);
    }
  }
  ts_butterfly_topk<W>(group, best);
}

// The exact best 8 of one token's row of up to 512 logits by the whole warp: lane l takes row
// vectors l and l + 32, both asked for at once, and the warp's butterfly merges the lanes' lists.
// The 4 x 32 shape's failed tokens take it instead of a band (the kernel's kWarpExact).
template <int Dtype, class Warp>
__device__ __forceinline__ void ts_split_bias_warp_exact_best8(const Warp& warp, const uint16_t* row, int lane,
                                                               int experts, const float* bias, uint64_t (&best)[8]) {
  uint4 v[2];
#pragma unroll
  for (int c = 0; c < 2; ++c) {
    const int vec = c * 32 + lane;
    v[c] = vec * 8 < experts ? *reinterpret_cast<const uint4*>(row + vec * 8) : make_uint4(0u, 0u, 0u, 0u);
  }
  ts_split_bias_exact_vector<Dtype>(v[0], lane, experts, bias, best);
  uint64_t block[8];
  ts_split_bias_exact_vector<Dtype>(v[1], 32 + lane, experts, bias, block);
  ts_fold_best8(best, block);
  ts_butterfly_topk<32>(warp, best);
}

// The band of a token whose cheap check failed: every expert whose cheap q is at or above the
// floor q_k - D + 1. Its exact best k are the token's (an expert below the floor is beaten by each
// of the k experts at or above q_k: top of the file), and it is small (k plus the near-ties), so
// only its experts get exact values, not the whole row. The group lists them in shared memory: each
// lane appends the band's keys of its own sorted list (the best 8 of its slice, or with Select of
// its chosen vectors: complete unless all 8 are in the band), and with Select the experts at or
// above the floor of its vectors outside the chosen 8 whose pass-1 key comes within the select
// margin of the floor (their cheap values computed from the row). The list's count counts every
// append, so a list past kSplitBiasBandCap reads as overflowing, as does an incomplete one
// (count + kSplitBiasBandCap + 1).
constexpr int kSplitBiasBandCap = 16;
__device__ __forceinline__ void ts_split_bias_band_append(uint32_t* count, uint16_t* band, uint32_t expert) {
  const uint32_t at = atomicAdd(count, 1u);
  if (at < kSplitBiasBandCap) band[at] = static_cast<uint16_t>(expert);
}
__device__ __forceinline__ void ts_split_bias_band_incomplete(uint32_t* count) {
  atomicAdd(count, kSplitBiasBandCap + 1u);
}

// The walk of a lane's vectors outside the chosen 8 (Select) whose pass-1 key comes within the
// select margin of the floor, best pass-1 key first (lane_vector_keys: the lane's sorted pass-1
// vector keys, entry j at j * kSplitBlock; unchosen: the best of them outside the 8): each one's
// cheap values computed from the row and handed to visit(vec, y), which returns whether the walk
// may stop there. False where it ended at a vector below the margin (or at the list's end, where
// the lane kept every vector); true where visit stopped it, or where the lane's list ran out while
// its vectors still came within the margin (it kept only its best S of more: the rest unknown).
// The walk starts at the list's entry `first`; with Keep each vector it reads is also left in the
// lane's stash, rows S + 1 .. S + 4 of its column after the list (ts_split_bias_outside_reaches).
template <int Dtype, int V, int S, bool Keep, class Visit>
__device__ __forceinline__ bool ts_split_bias_walk_outside(const uint16_t* row, const float* bias_fixed, float scale,
                                                           uint32_t floor_q, uint32_t unchosen, uint32_t margin,
                                                           uint32_t* lane_vector_keys, int first, Visit visit) {
#pragma unroll 1
  for (int j = first; j < S; ++j) {
    const uint32_t key = lane_vector_keys[j * kSplitBlock];
    if (key > unchosen) continue;                        // a chosen vector
    if ((key >> 9) + margin < floor_q) return false;     // this vector and the rest cannot reach it
    const int vec = 511 - static_cast<int>(key & 511u);  // in the row: its key is above 0
    const uint4 v = *reinterpret_cast<const uint4*>(row + vec * 8);
    if constexpr (Keep) {
      lane_vector_keys[(S + 1) * kSplitBlock] = v.x;
      lane_vector_keys[(S + 2) * kSplitBlock] = v.y;
      lane_vector_keys[(S + 3) * kSplitBlock] = v.z;
      lane_vector_keys[(S + 4) * kSplitBlock] = v.w;
    }
    float y[8];
    ts_split_bias_vector_ys<Dtype>(v.x, v.y, v.z, v.w, vec, bias_fixed, scale, y);
    if (visit(j, vec, y)) return true;
  }
  return V / 8 > S;
}

// Whether one of a lane's vectors outside the chosen 8 holds a cheap key at or above the floor
// (Select), for a lane whose best such pass-1 key comes within the select margin of it: the walk
// above until one reaches the floor or the next cannot. A lane whose list runs out on the way
// cannot tell (true). Without this, a vector whose pass-1 key only came within the margin sent
// its token to the band: a near-miss that the exact pass-1 keys had passed (H200, graph replay,
// bf16 k=8 T=65536 with bias, one such row among the benchmark's 1024 base rows added about 4 us
// at E = 256: 20.87 -> 24.97 us).
// With Keep the lane's column notes where the walk stopped (row S of it): the list's entry j of
// the first vector at the floor, which stays in the stash (rows S + 1 .. S + 4); S where no vector
// reaches it; S + 1 where the list ran out first. So the band (ts_split_bias_band_size) starts at
// that vector without reading it again, and skips the vectors before it, none of which reach it.
template <int Dtype, int V, int S, bool Keep>
__device__ __forceinline__ bool ts_split_bias_outside_reaches(const uint16_t* row, const float* bias_fixed,
                                                              float scale, uint32_t floor_q, uint32_t unchosen,
                                                              uint32_t margin, uint32_t* lane_vector_keys) {
  uint32_t* const reached_at = lane_vector_keys + S * kSplitBlock;
  if constexpr (Keep) *reached_at = S + 1;  // unless a vector reaches the floor or the walk ends below it
  const auto reaches = [floor_q, reached_at](int j, int, const float(&y)[8]) {
    const float best =
        fmaxf(fmaxf(fmaxf(y[0], y[1]), fmaxf(y[2], y[3])), fmaxf(fmaxf(y[4], y[5]), fmaxf(y[6], y[7])));
    const bool reached = (ts_split_bias_key_of_y(best, 0u) >> 9) >= floor_q;
    if (Keep && reached) *reached_at = static_cast<uint32_t>(j);
    return reached;
  };
  const bool any = ts_split_bias_walk_outside<Dtype, V, S, Keep>(row, bias_fixed, scale, floor_q, unchosen, margin,
                                                                 lane_vector_keys, 0, reaches);
  if (Keep && !any) *reached_at = S;
  return any;
}

// The band's experts in a lane's vectors outside the chosen 8 (Select: the walk above, every one
// of its vectors' experts at or above the floor appended; unchosen all ones: unknown, as is a list
// that runs out in the band), then the band's size once the group has appended. With Keep the walk
// starts at the check's stop (ts_split_bias_outside_reaches): at its stashed vector, or nowhere.
template <int Dtype, int V, bool Select, int S, bool Keep>
__device__ __forceinline__ uint32_t ts_split_bias_band_size(const uint16_t* row, const float* bias_fixed, float scale,
                                                            uint32_t floor_q, uint32_t unchosen, uint32_t margin,
                                                            uint32_t* lane_vector_keys, uint32_t* count,
                                                            uint16_t* band, unsigned group_mask) {
  if constexpr (Select) {
    if (unchosen == ~0u) {
      ts_split_bias_band_incomplete(count);
    } else if ((unchosen >> 9) + margin >= floor_q) {
      const auto append = [floor_q, count, band](int, int vec, const float(&y)[8]) {
#pragma unroll
        for (int i = 0; i < 8; ++i) {
          if ((ts_split_bias_key_of_y(y[i], 0u) >> 9) >= floor_q)  // q, as in the key
            ts_split_bias_band_append(count, band, static_cast<uint32_t>(vec * 8 + i));
        }
        return false;
      };
      int first = 0;
      bool walk = true;
      if constexpr (Keep) {
        // The check's walk ran for this token under the test above (the kernel's check), so the
        // column's stop is this token's.
        const uint32_t reached_at = lane_vector_keys[S * kSplitBlock];
        walk = reached_at < static_cast<uint32_t>(S);
        if (reached_at == S + 1u) ts_split_bias_band_incomplete(count);
        if (walk) {
          first = static_cast<int>(reached_at);
          const int vec = 511 - static_cast<int>(lane_vector_keys[first * kSplitBlock] & 511u);
          float y[8];
          ts_split_bias_vector_ys<Dtype>(lane_vector_keys[(S + 1) * kSplitBlock],
                                         lane_vector_keys[(S + 2) * kSplitBlock],
                                         lane_vector_keys[(S + 3) * kSplitBlock],
                                         lane_vector_keys[(S + 4) * kSplitBlock], vec, bias_fixed, scale, y);
          append(first, vec, y);
          ++first;
        }
      }
      // append never stops the walk, so true means the lane's list ran out in the band
      if (walk && ts_split_bias_walk_outside<Dtype, V, S, false>(row, bias_fixed, scale, floor_q, unchosen, margin,
                                                                 lane_vector_keys, first, append))
        ts_split_bias_band_incomplete(count);
    }
  }
  __syncwarp(group_mask);
  return *count;
}

// The exact best k of a band of n <= kSplitBiasBandCap experts: their exact keys and weights, ranks
// by counting, the winners into the group's rank slots (slots[r] for rank r < 8), from which lane l
// takes ranks l * R .. l * R + R - 1. Lean (the 4 x 128 shape): each lane asks for all of its
// logits before the first exact value, one trip to memory instead of one for each, and keeps its
// members' keys and weights in registers, so that its count reads each band key from shared memory
// once for all of its members, four keys a round. (Clock stamps of a band of 9, H200: the count
// took 2700-6400 cycles where lane 0 read its 27 keys one after the other, and mostly 1400-2400 in
// this form; BENCHMARKS.md 62.)
template <int Dtype, int W, int R, bool Lean>
__device__ __forceinline__ void ts_split_bias_band_winners(const uint16_t* row, int lane, int k, uint32_t n,
                                                           const uint16_t* band, const float* bias,
                                                           uint64_t* band_key, float* band_weight,
                                                           uint64_t* slot_key, float* slot_weight,
                                                           unsigned group_mask, uint64_t (&mine)[R], float (&w)[R]) {
  if constexpr (Lean) {
    constexpr int kPerLane = kSplitBiasBandCap / W;
    uint32_t bits[kPerLane];
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const uint32_t j = static_cast<uint32_t>(lane + t * W);
      bits[t] = j < n ? row[band[j]] : 0u;
    }
    uint64_t key[kPerLane];
    float weight[kPerLane];
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      const uint32_t j = static_cast<uint32_t>(lane + t * W);
      key[t] = 0;
      weight[t] = 0.0f;
      if (j < n) {
        ts_split_bias_exact_of_bits<Dtype>(bits[t], band[j], bias, key[t], weight[t]);
        band_key[j] = key[t];
      }
    }
    __syncwarp(group_mask);
    uint32_t larger[kPerLane] = {};
#pragma unroll 4
    for (uint32_t m = 0; m < n; ++m) {
      const uint64_t other = band_key[m];
#pragma unroll
      for (int t = 0; t < kPerLane; ++t) larger[t] += other > key[t] ? 1u : 0u;
    }
#pragma unroll
    for (int t = 0; t < kPerLane; ++t) {
      if (lane + t * W < static_cast<int>(n) && larger[t] < 8u) {
        slot_key[larger[t]] = key[t];
        slot_weight[larger[t]] = weight[t];
      }
    }
  } else {
    for (uint32_t j = static_cast<uint32_t>(lane); j < n; j += W)
      ts_split_bias_exact<Dtype>(row, band[j], bias, band_key[j], band_weight[j]);
    __syncwarp(group_mask);
    for (uint32_t j = static_cast<uint32_t>(lane); j < n; j += W) {
      const uint64_t key = band_key[j];
      uint32_t larger = 0;
      for (uint32_t m = 0; m < n; ++m) larger += band_key[m] > key ? 1u : 0u;
      if (larger < 8u) {
        slot_key[larger] = key;
        slot_weight[larger] = band_weight[j];
      }
    }
  }
  __syncwarp(group_mask);
#pragma unroll
  for (int i = 0; i < R; ++i) {
    const int r = lane * R + i;
    mine[i] = r < k ? slot_key[r] : 0;
    w[i] = r < k ? slot_weight[r] : 0.0f;
  }
  __syncwarp(group_mask);  // the epilogue rewrites the slots
}

// The ranks of a warp whose winners' order needs their exact keys (counted): each key's rank is
// the number of larger keys among the group's eight (keys are distinct; empty slots are 0 and rank
// last), counted from the group's shared key slots.
template <int R>
__device__ __forceinline__ void ts_split_bias_count_ranks(uint64_t* slot_key, int lane, const uint64_t (&mine)[R],
                                                          int (&rank)[R]) {
#pragma unroll
  for (int i = 0; i < R; ++i) slot_key[lane * R + i] = mine[i];
  __syncwarp();
#pragma unroll
  for (int i = 0; i < R; ++i) {
    int larger = 0;
#pragma unroll
    for (int m = 0; m < 8; ++m) larger += slot_key[m] > mine[i] ? 1 : 0;
    rank[i] = larger;
  }
}

// The rank-order sum of the group's k weights through its shared weight slots (each filled rank
// stores its weight at its rank), or 0 where the group does not renormalize (add: uniform within
// the group).
template <int R>
__device__ __forceinline__ float ts_split_bias_slot_sum(float* slot_weight, const uint64_t (&mine)[R],
                                                        const float (&w)[R], const int (&rank)[R], int k, bool add) {
#pragma unroll
  for (int i = 0; i < R; ++i)
    if (mine[i] != 0u) slot_weight[rank[i]] = w[i];
  __syncwarp();
  float sum = 0.0f;
  if (add) {
#pragma unroll
    for (int r = 0; r < 8; ++r) sum = r < k ? TS_ADD(sum, slot_weight[r]) : sum;
  }
  return sum;
}

// FixedK > 0: a kernel for launches with k = FixedK, whose tests of k (the k-th key, the order
// check, which ranks are filled, the rank-order sum) fold away; the launch takes it for k = 8, the
// common router setting (H100, the benchmark's bandwidth section, T=65536 bf16 k=8 with bias,
// together with this file's branch-free check and setup loops: E128 15.4-15.7 -> 14.5-14.7 us,
// E256-512 1.5-3% faster; BENCHMARKS.md 45). Every other k takes FixedK = 0. Hint: the form that
// hints the L2 at each group's first row before the wait, and at its next row during each token,
// for the launches that let the next kernel in at once (device_backend.hip,
// ts_split_bias_hint_pays); the others are compiled without it.
template <class Policy, int Dtype, int W, int V, bool Select, int FixedK, bool Hint = false>
__global__ void __launch_bounds__(kSplitBlock, ts_split_bias_device_blocks_per_sm<Select, V>())
    ts_split_bias_kernel(const ts_kernel_args a) {
  ts_prefetch_first_row<uint16_t, W, Hint>(a);
  ts_await_prior_grid(a.early_dependents);
  static_assert(Dtype != TS_DTYPE_F32, "16-bit logits");
  static_assert(V % 8 == 0 && W >= 2 && W <= 16 && W * V <= (Select ? 512 : 256), "split shapes");
  static_assert(!Select || W == 4 || W == 8, "vector selection: 4 or 8 lanes");
  static_assert(!Hint || W * V <= 128 || (Select && W == 4 && W * V <= 384), "Hint: the shapes it gained in");
  constexpr int kRanks = 8 / W > 0 ? 8 / W : 1;  // ranks per lane (k <= 8)
  constexpr int kGroups = kSplitBlock / W;
  constexpr int kSortKeys = V / 8 <= 4 ? 4 : 8;  // Select: a lane's vector keys (its best 8 above 8), padded
  __shared__ float bias_exact[W * V];            // b, 0 past E
  __shared__ float bias_fixed[W * V];            // b * scale - C (+ scale / 2 with Select), NaN past E
  __shared__ uint64_t rank_key[kGroups * 8];          // per group: the winners' exact keys
  __shared__ float rank_weight[kGroups * 8];          // per group: weights by exact rank
  __shared__ uint32_t largest_abs_bits, non_finite;                   // the three-barrier setup (4 x 96)
  __shared__ uint32_t warp_largest_abs_bits[kSplitBlock / TS_WAVE];  // the two-barrier one: each warp's largest |b|
  __shared__ uint32_t band_count[kGroups];                      // per group: the band's size
  __shared__ uint16_t band_expert[kGroups * kSplitBiasBandCap];  // per group: the band's experts
  __shared__ uint64_t band_key[kGroups * kSplitBiasBandCap];     // ... their exact keys
  __shared__ float band_weight[kGroups * kSplitBiasBandCap];     // ... and weights
  // The lean band of the 4 x 128 shape (E = 385..512): the check's walk keeps the vector it stopped
  // at for the band, the band's logits are asked for at once, and each lane counts the larger band
  // keys for all of its members in one pass (ts_split_bias_outside_reaches,
  // ts_split_bias_band_winners). The clock stamps had a band token of E512 spend 5000-12000 cycles
  // on its band's exact values and 5000-8000 on a second walk (BENCHMARKS.md 60); with both, the
  // benchmark's E512 with a bias on seeds 1 / 4 (one such base row each) 37.2 / 35.9 -> 34.8 / 34.4
  // us, seeds 2 and 3 unchanged (H200; BENCHMARKS.md 61). The forms tried on every shape changed
  // the others' code too and cost rows without a band E128 0.4 us and E384 0.7-1.5 us: only here.
  // The one-pass count: seeds 1 / 4 35.2 / 34.8 -> 34.6 / 34.3 us (BENCHMARKS.md 62).
  constexpr bool kLeanBand = Select && V == 128;
  // Where a failed token's work sits in the token loop moves ptxas's schedule of the rows without
  // one at the 64-register cap (BENCHMARKS.md 63; H200, T=65536 bf16 k=8 with a bias, four seeds,
  // in the same calls, rows without a band included):
  // - kWarpExact (4 x 32, E = 65..128): no band at all; a failed token's row goes to the whole
  //   warp (ts_split_bias_warp_exact_best8), so the check's state dies at the check. E128
  //   13.38-13.46 -> 13.01-13.08 us. (On the wider shapes the whole warp's row cost a band token
  //   about 2 us more than its band: E512 34.4 -> 36.3 on seed 1.)
  // - kEarlyBand (4 x 64, E = 129..256): the band before the winners' weights rather than after,
  //   with the cheap winners' experts taken first, so that the check's state and top die before
  //   the weights. E256 19.63-19.67 -> 18.89-18.99 us (seed 2, with a band row: 22.57 -> 22.04).
  //   The same order lost 0.6-1.2 us at E384 and 0.6 at E128, so only here.
  // - the 4 x 96 and 4 x 128 shapes keep the form before 63 (their PTX is unchanged).
  // On sm_80 kWarpExact spilled 8-12 bytes at 64 registers, so there the 4 x 32 shape keeps its
  // band (not measured: no A100 here).
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  constexpr bool kWarpExact = false;
#else
  constexpr bool kWarpExact = !Select;
#endif
  constexpr bool kEarlyBand = Select && V == 64;
  // Select: each lane's vector keys (a column of kSortKeys rows); with kLeanBand the walk's stop
  // and its stash after them
  __shared__ uint32_t vector_key_store[Select ? (kSortKeys + (kLeanBand ? 5 : 0)) * kSplitBlock : 1];

  // The bias, its largest magnitude and whether it is all finite (the fixed point's scale). Each
  // thread holds its values in registers; each warp reduces their magnitudes' bits into one slot,
  // and after a barrier one more reduction over the slots gives every thread the block's largest
  // (a largest magnitude of 0x7f800000 or more is exactly a non-finite bias): two barriers, no
  // shared-memory atomics, one read of each value. H200, T=65536 bf16 k=8, seeds 1-4 against the
  // three-barrier form below: E256 0.11-0.33 us faster, E128 the same; E512, with a loop over the
  // slots, 0.18-0.69 faster, and with the reduction 0.10 slower than with the loop on average of
  // eight pairs (BENCHMARKS.md, 68-69); the 4 x 96 shape (E384) lost up to 0.3 us with either,
  // so it keeps the three barriers.
  // Both forms' loops over the bias run a fixed count (blocks have kSplitMinBlock threads or more)
  // instead of a stride loop, whose trip count cost an integer division each.
  constexpr int kBiasSteps = (W * V + kSplitMinBlock - 1) / kSplitMinBlock;
  float scale;
  bool exact_only;
  if constexpr (W * V != 384) {
    if (threadIdx.x < kGroups) band_count[threadIdx.x] = 0;
    float held[kBiasSteps];
    uint32_t largest = 0;
#pragma unroll
    for (int j = 0; j < kBiasSteps; ++j) {
      const int e = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
      held[j] = e < a.experts ? a.bias[e] : 0.0f;
      largest = ts_umax(largest, ts_float_bits(held[j]) & 0x7fffffffu);
    }
    largest = __reduce_max_sync(0xffffffffu, largest);
    if (threadIdx.x % TS_WAVE == 0) warp_largest_abs_bits[threadIdx.x / TS_WAVE] = largest;
    __syncthreads();
    if constexpr (W * V > 384) {  // 4 x 128: a loop over the slots (the form measured there)
      for (int w = 0; w < static_cast<int>(blockDim.x) / TS_WAVE; ++w)
        largest = ts_umax(largest, warp_largest_abs_bits[w]);
    } else {
      const int slot = static_cast<int>(threadIdx.x % TS_WAVE);
      largest = slot < static_cast<int>(blockDim.x) / TS_WAVE ? warp_largest_abs_bits[slot] : 0u;
      largest = __reduce_max_sync(0xffffffffu, largest);
    }
    exact_only = largest >= 0x7f800000u;  // uniform
    scale = ts_split_bias_scale(ts_bits_float(exact_only ? 0u : largest));
#pragma unroll
    for (int j = 0; j < kBiasSteps; ++j)
      if (const int e = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x); e < W * V) {
        bias_exact[e] = held[j];
        const float fixed = e < a.experts ? ts_split_bias_fixed(held[j], scale) : ts_bits_float(0x7fffffffu);
        bias_fixed[e] = Select ? __fadd_rn(fixed, 0.5f * scale) : fixed;
      }
  } else {
    if (threadIdx.x == 0) {
      largest_abs_bits = 0;
      non_finite = 0;
    }
    if (threadIdx.x < kGroups) band_count[threadIdx.x] = 0;
    __syncthreads();
    {
      uint32_t largest = 0, bad = 0;
#pragma unroll
      for (int j = 0; j < kBiasSteps; ++j) {
        const int e = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
        if (e >= W * V) break;
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
    scale = ts_split_bias_scale(ts_bits_float(largest_abs_bits));
    exact_only = non_finite != 0u;  // uniform
#pragma unroll
    for (int j = 0; j < kBiasSteps; ++j)
      if (const int e = static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x); e < W * V) {
        const float fixed = e < a.experts ? ts_split_bias_fixed(bias_exact[e], scale) : ts_bits_float(0x7fffffffu);
        bias_fixed[e] = Select ? __fadd_rn(fixed, 0.5f * scale) : fixed;
      }
  }
  // Keys closer than D in q may be misordered by the cheap values (top of the file); with Select
  // the bias term's sum with scale / 2 rounds too (0.5) where scale / 2 is not an integer.
  const float rounding = Select && scale < 2.0f ? 1.625f : 1.125f;
  const uint32_t gap = static_cast<uint32_t>(2.0f * __fmaf_ru(kTsPrefilterSigmoidBound, scale, rounding)) + 1u;
  // Select: a vector whose pass-1 key is within this of a q may hold a cheap key at or above it
  // (ts_split_bias_vector_tanh_ys), plus the shift of scale / 2 between the two (0.5 more where
  // that rounds; 2.75 otherwise, as at the top of the file).
  const uint32_t select_margin =
      static_cast<uint32_t>(__fmaf_ru(kTsTanhScoreBound + kTsPrefilterSigmoidBound + 0.5f, scale, rounding + 1.625f)) +
      1u;
  __syncthreads();

  const int lane = static_cast<int>(threadIdx.x) & (W - 1);
  const int group_in_block = static_cast<int>(threadIdx.x) / W;
  const typename Policy::template Group<W> group(static_cast<int>(threadIdx.x % TS_WAVE));
  const int k = FixedK > 0 ? FixedK : a.k;  // uniform; FixedK: the launch's k at compile time
  const int64_t stride = static_cast<int64_t>(gridDim.x) * (static_cast<int>(blockDim.x) / W);
  const uint16_t* const logits = static_cast<const uint16_t*>(a.logits);
  const uint32_t lane_shift = 8u * static_cast<uint32_t>(lane);  // lane 0's field - the lane's
  uint64_t* const my_keys = rank_key + group_in_block * 8;
  float* const my_weights = rank_weight + group_in_block * 8;
  const int band_at = group_in_block * kSplitBiasBandCap;
  const unsigned group_mask =
      (W >= 32 ? 0xffffffffu : (1u << W) - 1u) << ((static_cast<int>(threadIdx.x) % TS_WAVE) & ~(W - 1));

  int64_t token = static_cast<int64_t>(blockIdx.x) * (static_cast<int>(blockDim.x) / W) + group_in_block;
  // The loop runs on the warp's first token, so every lane of a warp takes the same passes (the
  // warp-wide votes and __syncwarp below need the whole warp); in the last pass, groups past T
  // take part with no token (live = false).
  const int64_t warp_first = token - (static_cast<int>(threadIdx.x % TS_WAVE) / W);
  // Both outputs 8-byte aligned: the 4 x 32 shape's k = 8 kernels store a lane's two ranks at once
  // (the epilogue; the C API asks only for 4 bytes, so the test is the kernel's).
  const bool pair_stores =
      ((reinterpret_cast<uintptr_t>(a.weights) | reinterpret_cast<uintptr_t>(a.indices)) & 7u) == 0u;
  for (int64_t base_token = warp_first; base_token < a.tokens; base_token += stride) {
    const bool live = token < a.tokens;  // uniform within the group
    const uint16_t* const row = logits + (live ? token : 0) * a.row_stride;
    uint32_t words[V / 2];
    ts_split_load<W, V>(row, lane, a.experts, words);

    // The lane's cheap keys: of its whole slice, or (Select) of the vectors it re-reads among the
    // group's best 8 by their best pass-1 value.
    constexpr int kKeys = Select ? 8 * kRanks : V;
    uint32_t keys[kKeys];
    uint32_t unchosen = 0;  // Select: the lane's best vector key outside the chosen 8 (all ones: unknown)
    if constexpr (Select) {
      uint32_t all[V / 8 <= kSortKeys ? kSortKeys : 16];
#pragma unroll
      for (int c = 0; c < V / 8; ++c)
        all[c] = ts_split_bias_vector_best_key<Dtype, (V != 96)>(words[4 * c], words[4 * c + 1], words[4 * c + 2],
                                                                 words[4 * c + 3], c * W + lane, a.experts, bias_fixed,
                                                                 0.5f * scale);
      uint32_t vector_keys[kSortKeys];
      ts_keep_vector_keys<V / 8, kSortKeys>(all, vector_keys);
#pragma unroll
      for (int j = 0; j < kSortKeys; ++j) vector_key_store[j * kSplitBlock + threadIdx.x] = vector_keys[j];
      uint32_t chosen[kRanks], eighth;
      ts_choose_vectors<W>(group, vector_keys, lane, chosen, &eighth);
      // The lane's chosen keys are a prefix of its sorted list; a lane that kept only its best 8
      // of more vectors, all chosen, cannot tell its next one.
#pragma unroll
      for (int j = 0; j < kSortKeys; ++j) unchosen = ts_umax(unchosen, vector_keys[j] < eighth ? vector_keys[j] : 0u);
      if (V / 8 > kSortKeys && vector_keys[kSortKeys - 1] >= eighth) unchosen = ~0u;
#pragma unroll
      for (int i = 0; i < kRanks; ++i) {
        const int vec = 511 - static_cast<int>(chosen[i] & 511u);
        const uint4 v = *reinterpret_cast<const uint4*>(row + vec * 8);
        uint32_t vkeys[8];
        ts_split_bias_vector_keys<Dtype>(v.x, v.y, v.z, v.w, vec, bias_fixed, scale,
                                         511u - 8u * static_cast<uint32_t>(vec), vkeys);
#pragma unroll
        for (int j = 0; j < 8; ++j) keys[8 * i + j] = vkeys[j];
      }
    } else {
      // Keys with lane 0's fields, 511 - (8 c W + i): compile-time constants, so that each key is
      // one integer multiply-add of y's bits (with the lane's fields, ptxas spent a LOP3 and an add
      // more on each). The lane's experts are lane 0's plus 8 * lane, so these keys rank as its own
      // would (each field 8 * lane higher than the lane's own, none past 511), and its best 8 get
      // the lane's fields back below, 8 subtractions for 64 instructions (H200, T=65536 bf16 k=8
      // with bias, seeds 1-4: E128 12.84-12.92 -> 12.44-12.51 us; BENCHMARKS.md 65).
#pragma unroll
      for (int c = 0; c < V / 8; ++c) {
        uint32_t vkeys[8];
        ts_split_bias_vector_keys<Dtype>(words[4 * c], words[4 * c + 1], words[4 * c + 2], words[4 * c + 3],
                                         c * W + lane, bias_fixed, scale, 511u ^ static_cast<uint32_t>(8 * c * W),
                                         vkeys);
#pragma unroll
        for (int i = 0; i < 8; ++i) keys[8 * c + i] = vkeys[i];
      }
    }

    uint32_t top[8];
    ts_best8_desc(keys, top);
    if constexpr (!Select) {  // the lane's own fields (above)
#pragma unroll
      for (int j = 0; j < 8; ++j) top[j] -= lane_shift;
    }
    uint32_t own[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) own[j] = top[j];
    ts_butterfly_topk<W>(group, top);  // every lane of the group: the token's cheap best 8
    // Hint: the group's next row asked of the L2 now, so that it is on its way while this token
    // ends (lane 0, two 128-byte lines: the rows of E <= 128). Each of the places and forms tried
    // was a new ptxas schedule; this one hid the most of the rows' trip from HBM (H200, T=65536
    // bf16 k=8 with bias, graph replay, interleaved: 13.59-13.61 -> 13.45-13.47 us) for 1.3% more
    // with every row already in the L2 (13.13-13.15 -> 13.31-13.33); one line from each of lanes 0
    // and 1 read 13.49-13.51 and 13.40-13.42. The H100's trip is about twice the H200's, which is
    // why the form is kept (BENCHMARKS.md 49).
    // With Select (E = 129..384) the row's 4 or 6 lines, one or two a lane, so that the group's
    // next pass does not start with a trip to HBM (H200, the benchmark's bandwidth section on
    // seeds 1 / 2 / 3, T=65536 bf16 k=8 with bias, against 7ba490a in the same calls: E256
    // 20.6-20.8 / 23.6-23.7 / 20.9 -> 19.6-19.7 / 22.5-22.6 / 19.6-19.7 us, E384 26.0-26.2 /
    // 28.8-28.9 / 26.0-26.1 -> 25.2-25.3 / 27.5 / 25.0; the prefetch without the Hint launch
    // took about half of that). At E512 the same prefetch lost 1.5-2.3 us, and neither half a
    // row's prefetch (E384's bytes in the L2), nor the whole row's at the token's end, nor the
    // Hint launch without a prefetch gained (-0.3 to +2.1 us), so 4 x 128 has no Hint form; why
    // it differs there was not measured (BENCHMARKS.md 60).
    if constexpr (Hint) {
      const int64_t next = token + stride;
      if constexpr (W * V <= 128) {
        if (next < a.tokens && lane == 0) {
          const uint16_t* const next_row = logits + next * a.row_stride;
          asm volatile("prefetch.global.L2 [%0];" ::"l"(next_row));
          asm volatile("prefetch.global.L2 [%0];" ::"l"(next_row + 64));
        }
      } else if (next < a.tokens) {
        const uint16_t* const next_row = logits + next * a.row_stride;
#pragma unroll
        for (int line = lane; line < W * V / 64; line += W)
          if (line * 64 < a.experts) asm volatile("prefetch.global.L2 [%0];" ::"l"(next_row + 64 * line));
      }
    }

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
    // The lane's keys at or above the floor, added as a tree (eight conditional increments were
    // a dependent chain of 16 instructions).
    uint32_t at_floor[8];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      // The 4 x 32 shape compares whole keys with the floor's (q >= floor_q exactly where key >=
      // floor_q << 9; floor_q < 2^23): no shift a key. (Part of BENCHMARKS.md 67; the wider shapes
      // keep their code, whose schedules moved with such changes before.)
      if constexpr (Select) at_floor[j] = (own[j] >> 9) >= floor_q ? 1u : 0u;
      else at_floor[j] = own[j] >= (floor_q << 9) ? 1u : 0u;
    }
    const uint32_t own_in_band = ((at_floor[0] + at_floor[1]) + (at_floor[2] + at_floor[3])) +
                                 ((at_floor[4] + at_floor[5]) + (at_floor[6] + at_floor[7]));
    const bool own_complete = kKeys == 8 || own_in_band < 8u;
    // With Select, no vector outside the chosen 8 may reach that floor either: its pass-1 key is
    // its largest pass-1 value's, within the select margin of its best cheap key, so only a lane
    // whose best pass-1 key outside comes within the margin looks closer (ts_split_bias_outside_reaches).
    // (q_k = 0 needs no check: the set is exact.)
    bool outside = false;
    if constexpr (Select) {
      outside = (unchosen >> 9) + select_margin >= floor_q;
      if (outside && unchosen != ~0u && q_k != 0u)
        outside = ts_split_bias_outside_reaches<Dtype, V, kSortKeys, kLeanBand>(
            row, bias_fixed, scale, floor_q, unchosen, select_margin, vector_key_store + threadIdx.x);
    }
    const uint32_t total = group.sum(own_complete && !outside ? own_in_band : 255u);
    const bool exact_set = q_k == 0u || total == static_cast<uint32_t>(k);
    const bool fast = !exact_only && __all_sync(0xffffffffu, exact_set || !live);
    // A token that failed the check (route_failed below); uniform within the group.
    const bool in_group_band = live && !exact_set && !exact_only;
    // The lanes' own band keys into the group's list: here, so that own dies (the 4 x 96 and
    // 4 x 128 shapes), or with the rest of the band (kEarlyBand).
    const auto list_own = [&] {
      uint32_t* const band_n = band_count + group_in_block;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        if ((own[j] >> 9) >= floor_q) ts_split_bias_band_append(band_n, band_expert + band_at, 511u - (own[j] & 511u));
      }
      if (!own_complete) ts_split_bias_band_incomplete(band_n);
    };
    if constexpr (!kWarpExact && !kEarlyBand) {
      if (!fast && in_group_band) list_own();
    }

    // The cheap best k in cheap order are in exact order too where every two neighbours are D
    // apart in q (top of the file), so their ranks need no exact keys: neighbours D apart have
    // keys at least D * 512 + 511 apart. So are a neighbour pair whose second is a NaN (q = 0):
    // every number ranks above a NaN and NaNs rank by index, in both keys. Keys tied or closer in
    // q otherwise (saturated scores with equal biases) are ranked by counting exact keys, in the
    // warps that have any. (Before the NaN test, each all-NaN row sent its warp to the count: H200,
    // T=65536 bf16 k=8 with bias, E128 12.96-13.08 -> 12.84-12.91 us; BENCHMARKS.md 64.)
    const uint32_t order_gap = (gap << 9) + 511u;
    // (Non-short-circuit & and |: with && and || ptxas branched after each pair.)
    bool cheap_ordered = true;
#pragma unroll
    for (int r = 0; r < 7; ++r)
      cheap_ordered = cheap_ordered & ((r + 1 >= k) | (top[r] - top[r + 1] >= order_gap) | (top[r + 1] < 512u));
    const bool counted = __any_sync(0xffffffffu, live && !cheap_ordered);

    // Lane l's ranks l * kRanks + i: the expert, its weight and (counted) its exact key; mine is
    // nonzero exactly where the rank is filled.
    uint64_t mine[kRanks];
    float w[kRanks];
    uint32_t expert[kRanks];
    if constexpr (kEarlyBand) {  // the cheap winners' experts first, so that top dies before the band
#pragma unroll
      for (int i = 0; i < kRanks; ++i) expert[i] = 511u - (ts_split_pick<kRanks>(top, lane, i) & 511u);
    }
    // Lane l's ranks of an exact best 8 of the group's row (in exact order), with their weights.
    const auto take_exact = [&](const uint64_t(&best)[8]) {
#pragma unroll
      for (int i = 0; i < kRanks; ++i) {
        const int r = lane * kRanks + i;
        const uint64_t pick = ts_split_pick<kRanks>(best, lane, i);
        const float x = ts_split_bias_logit<Dtype>(row[ts_key_index(static_cast<uint32_t>(pick))], 0);
        mine[i] = live && r < k ? pick : 0;
        w[i] = live && r < k ? ts_weight_of_logit(x) : 0.0f;
        expert[i] = ts_key_index(static_cast<uint32_t>(pick));
      }
    };
    // A warp in which a token failed the check (!fast, uniform across the warp): the failed
    // tokens' exact best k from their bands (ts_split_bias_band_size), unless a band overflows (or
    // the bias is not finite), then the whole warp's rows exactly; with kWarpExact each failed
    // token's row by the whole warp. settled: the group's ranks are decided (kEarlyBand, where this
    // runs before the cheap winners' weights).
    bool settled = false;
    const auto route_failed = [&] {
      if constexpr (kWarpExact) {
        if (exact_only) {
          uint64_t best[8];
          ts_split_bias_exact_best8<Dtype, W, V>(group, row, lane, a.experts, bias_exact, best);
          take_exact(best);
        } else {
          // The failed tokens one after another (in_band is uniform within a group; a warp with
          // more than one is rare), each row by all 32 lanes.
          const int lane_in_warp = static_cast<int>(threadIdx.x % TS_WAVE);
          const typename Policy::template Group<32> warp(lane_in_warp);
          for (unsigned failed = __ballot_sync(0xffffffffu, in_group_band && lane == 0); failed != 0u;
               failed &= failed - 1u) {
            const int first_lane = __ffs(static_cast<int>(failed)) - 1;
            const int64_t failed_token = __shfl_sync(0xffffffffu, static_cast<long long>(token), first_lane);
            uint64_t best[8];
            ts_split_bias_warp_exact_best8<Dtype>(warp, logits + failed_token * a.row_stride, lane_in_warp,
                                                  a.experts, bias_exact, best);
            if (lane_in_warp / W == first_lane / W) take_exact(best);
          }
        }
      } else {
        // (The same test as in_group_band, written again for kEarlyBand: the code measured in
        // BENCHMARKS.md 63; the other shapes' code stays as it was.)
        const bool in_band = kEarlyBand ? live && !exact_set && !exact_only : in_group_band;
        uint32_t band_size = 0;
        if (in_band) {
          if constexpr (kEarlyBand) list_own();
          band_size = ts_split_bias_band_size<Dtype, V, Select, kSortKeys, kLeanBand>(
              row, bias_fixed, scale, floor_q, unchosen, select_margin, vector_key_store + (Select ? threadIdx.x : 0),
              band_count + group_in_block, band_expert + band_at, group_mask);
        }
        const bool overflow = __any_sync(0xffffffffu, band_size > static_cast<uint32_t>(kSplitBiasBandCap));
        if (!exact_only && !overflow) {
          if (in_band)
            ts_split_bias_band_winners<Dtype, W, kRanks, kLeanBand>(row, lane, k, band_size, band_expert + band_at,
                                                                    bias_exact, band_key + band_at,
                                                                    band_weight + band_at, my_keys, my_weights,
                                                                    group_mask, mine, w);
          // (The test of in_band twice for kEarlyBand: the code measured in BENCHMARKS.md 63.)
          if (!kEarlyBand || in_band) {
#pragma unroll
            for (int i = 0; i < kRanks; ++i)
              if (in_band) expert[i] = ts_key_index(static_cast<uint32_t>(mine[i]));
          }
          settled = in_band;
        } else {
          // The groups' band counts were read (ts_split_bias_band_size) before lane 0 resets them;
          // the band winners' __syncwarp orders the two, this path has none of its own.
          __syncwarp();
          uint64_t best[8];
          ts_split_bias_exact_best8<Dtype, W, V>(group, row, lane, a.experts, bias_exact, best);
          take_exact(best);
          settled = true;
        }
        if constexpr (kEarlyBand) {
          if (in_band && lane == 0) band_count[group_in_block] = 0;
        }
      }
    };
    if constexpr (kEarlyBand) {
      if (!fast) route_failed();
    }
    // The cheap best k (the exact best k as a set where the check holds), with weights and, where
    // counted, exact keys.
    if (!settled) {
#pragma unroll
      for (int i = 0; i < kRanks; ++i) {
        const int r = lane * kRanks + i;
        if constexpr (!kEarlyBand) expert[i] = 511u - (ts_split_pick<kRanks>(top, lane, i) & 511u);
        mine[i] = 0;
        w[i] = 0.0f;
        if (live && r < k) {
          if (counted) {
            ts_split_bias_exact<Dtype>(row, expert[i], bias_exact, mine[i], w[i]);
          } else {
            mine[i] = 1;
            w[i] = ts_weight_of_ord<Dtype>(ts_split_ord16x2<Dtype>(row[expert[i]]) & 0xffffu);  // weight_table.hpp
          }
        }
      }
    }
    if constexpr (!kEarlyBand) {
      if (!fast) route_failed();
    }

    // Ranks: lane l's are l * kRanks + i (the cheap order where it is exact; the band's and the
    // exact recomputation's winners come in exact order), or where counted, the number of larger
    // exact keys (keys are distinct; empty slots are 0 and rank last). Then the rank-order sum of
    // the weights (every backend's additions in the same order) and the outputs. Up to 64 logits
    // a lane, a warp whose ranks are all static reads the sum's weights across the group by
    // shuffles; otherwise they go through the group's shared slots, ordered by rank
    // (ts_split_bias_slot_sum). (H200, T=65536 bf16 k=8 with bias, graph replay, interleaved:
    // E128 13.74-13.76 -> 13.57-13.58 us, E256 22.26-22.35 -> 21.48-21.63; at 96 logits a lane E384
    // lost 0.3 us, so the wider shapes keep the slots; BENCHMARKS.md 48.) The ranks' branch is
    // written in both arms of the shape's test on purpose: written once, before one branch for the
    // sum, it was 48-80 instructions shorter in ten kernels and E128 with a bias 1.3% and E256 2.1%
    // slower (ptxas's schedule of the loop; BENCHMARKS.md, Not kept after 49).
    int rank[kRanks];
    float sum = 0.0f;
    if constexpr (V <= 64) {
      if (counted) {  // uniform across the warp
        ts_split_bias_count_ranks<kRanks>(my_keys, lane, mine, rank);
        sum = ts_split_bias_slot_sum<kRanks>(my_weights, mine, w, rank, k, a.renormalize && live);
      } else {
#pragma unroll
        for (int i = 0; i < kRanks; ++i) rank[i] = lane * kRanks + i;
        if (a.renormalize && live) sum = ts_split_rank_order_sum<W, kRanks>(group, w, k);  // uniform within the group
      }
    } else {
      if (counted) {  // uniform across the warp
        ts_split_bias_count_ranks<kRanks>(my_keys, lane, mine, rank);
      } else {
#pragma unroll
        for (int i = 0; i < kRanks; ++i) rank[i] = lane * kRanks + i;
      }
      sum = ts_split_bias_slot_sum<kRanks>(my_weights, mine, w, rank, k, a.renormalize && live);
    }
    const auto store_ranks = [&] {
#pragma unroll
      for (int i = 0; i < kRanks; ++i) {
        if (live && mine[i] != 0u) {
          const int64_t o = token * k + rank[i];
          a.weights[o] = ts_final_weight(w[i], sum, a.renormalize != 0, a.scale);
          a.indices[o] = static_cast<int32_t>(expert[i]);
        }
      }
    };
    // The 4 x 32 shape at k = 8 stores a lane's two ranks, 2 * lane and 2 * lane + 1 wherever the
    // ranks are static (!counted), as one 8-byte weight pair and one index pair: two stores and one
    // address instead of four and two. Elsewhere (a counted warp, a rank left empty, outputs
    // only 4-byte aligned) one rank at a time. H200, T=65536 bf16 k=8 with bias, seeds 1-4, one
    // call, together with the whole-key floor compare above: E128 12.42-12.51 -> 12.12-12.26 us
    // (the stores alone 12.23-12.35). The same stores on the vector selection's shapes cost E256
    // 0.07-0.17 us, so only here (BENCHMARKS.md 67).
    if constexpr (FixedK == 8 && kRanks == 2 && !Select) {
      if (pair_stores && !counted && live && mine[0] != 0u && mine[1] != 0u) {
        const int64_t o = token * 8 + 2 * lane;
        *reinterpret_cast<float2*>(a.weights + o) =
            make_float2(ts_final_weight(w[0], sum, a.renormalize != 0, a.scale),
                        ts_final_weight(w[1], sum, a.renormalize != 0, a.scale));
        *reinterpret_cast<int2*>(a.indices + o) =
            make_int2(static_cast<int32_t>(expert[0]), static_cast<int32_t>(expert[1]));
      } else {
        store_ranks();
      }
    } else {
      store_ranks();
    }
    if constexpr (!kWarpExact && !kEarlyBand) {
      if (in_group_band && lane == 0) band_count[group_in_block] = 0;
    }
    __syncwarp();  // the next token's stores into this group's slots come after these reads
    token += stride;
  }
}
#endif  // TS_PLATFORM_CUDA

#endif  // TOPK_SIGMOID_KERNEL_SPLIT_BIAS_HPP
