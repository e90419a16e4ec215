// bias_prefilter.hpp: the warp kernel's large-batch path with a correction bias (NVIDIA only).
//
// With a bias the ranking value is v = sigmoid(x) + b, so every logit needs the exact sigmoid
// (semantics.h: a polynomial exp and an IEEE division) before anything can be ranked; on sm_90
// that, and 64-bit keys, made the bias path 3-4x slower than the path without bias. Here every
// logit first gets a cheap score, s' = rcp.approx(1 + ex2.approx(-x log2 e)) (two MUFU
// instructions), within kTsPrefilterSigmoidBound of the exact sigmoid for every fp32 input
// (checked exhaustively on the card: tests/approx_sigmoid_bound.cu). From v' = s' + b:
//
//   t'  = the k-th largest of the lanes' best v' (at least k logits have v' >= t'),
//   c   = t' - margin, with margin >= 2 * bound + the rounding of the two fp32 additions,
//
// and every true winner e has v'_e >= c: k logits have v' >= t', hence v >= t' - bound - half
// an ulp, so the k-th largest exact value is at least that, and a winner's v' is at most
// another bound and half an ulp below it. Only the candidates (v' >= c, typically k + a few)
// get the exact sigmoid, one per lane after compaction, and their exact 64-bit keys are ranked
// by counting (rank = number of candidates with a larger key; keys are distinct). So the
// result is the exact semantics' result, not an approximation of it. Rows the argument does not
// cover go back to the full path: more candidates than lanes (many near-ties, ties), or a
// k-th lane best that is -inf (NaN logits or biases, -inf biases).
#ifndef TOPK_SIGMOID_BIAS_PREFILTER_HPP
#define TOPK_SIGMOID_BIAS_PREFILTER_HPP

#include "gpu_compat.h"
#include "keys.hpp"

// Tokens are paired (two share the exact-key and ranking stage, a half-warp each) for up to 12
// logits per lane; at 16 the pairing's state took registers and occupancy (H200, E=512 with
// bias: 55.4 -> 59.6 us with pairs), so those lanes finish every token alone.
__host__ __device__ constexpr bool ts_prefilter_pairs(int v) { return v <= 12; }

// Candidate scratch per warp (dynamic shared memory after the winners): 32 exact keys and one
// region of 32 expert indices, or two when tokens are paired (a waiting token keeps one).
__host__ __device__ constexpr int ts_prefilter_scratch_bytes(int v) {
  return 32 * 8 + (ts_prefilter_pairs(v) ? 2 : 1) * 32 * 4;
}

#if !defined(TS_PLATFORM_CUDA)
// The MUFU approximations are verified on NVIDIA cards only; HIP builds keep the full path.
constexpr bool kTsBiasPrefilter = false;
template <int Dtype, int V, class Group, class Raw>
__device__ inline uint32_t ts_prefilter_candidates(const Group&, const Raw (&)[V], int, int, const float*, int,
                                                   uint32_t*) {
  return ~0u;
}
template <int Dtype, class Raw>
__device__ inline void ts_prefilter_rank(const Raw*, const uint32_t*, uint32_t, uint32_t, const float*, int, uint64_t*,
                                         uint64_t*, float*) {}
#else
constexpr bool kTsBiasPrefilter = true;

// |ts_sigmoid(x) - ts_sigmoid_prefilter(x)| <= this for every non-NaN fp32 x (a NaN x gives NaN
// in both). Measured on every input (tests/approx_sigmoid_bound.cu, H100 and H200): at most
// 1.79e-7 = 2^-22.4; this is 5.3x that, and the exhaustive check requires the measured maximum
// to stay 4x below it. (It was 2^-16 until the split bias kernel, where the bound sets how close
// to the k-th place a value must be to send its warp to the exact path: kernel_split_bias.hpp.)
constexpr float kTsPrefilterSigmoidBound = 0x1p-20f;

__device__ __forceinline__ float ts_sigmoid_prefilter(float x) {
#if defined(__CUDA_ARCH__)
  const float t = __fmul_rn(x, -1.44269504088896341f);
  float e, s;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(e) : "f"(t));
  const float d = __fadd_rn(1.0f, e);
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(s) : "f"(d));
  return s;
#else
  return ts_sigmoid(x);  // host pass of nvcc: never executed
#endif
}

// |ts_sigmoid(x) - (0.5 + 0.5 * ts_tanh_half_approx(x))| <= this for every non-NaN fp32 x (a
// NaN x gives NaN in both). The split bias kernel's vector selection (kernel_split_bias.hpp,
// Select) ranks its vectors on this one-MUFU score, then checks with this bound that no vector it
// left out can reach the k-th place. Measured on every input (tests/approx_sigmoid_bound.cu, H200):
// at most 3.99e-6 = 2^-17.93, 3.8x below this; the check requires 2x.
constexpr float kTsTanhScoreBound = 0x1p-16f;

// tanh(x / 2) by the MUFU's approximation (one instruction after the exact halving, where the
// prefilter's score takes two): sigmoid(x) = 0.5 + 0.5 tanh(x / 2).
__device__ __forceinline__ float ts_tanh_half_approx(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
  float t;
  asm("tanh.approx.f32 %0, %1;" : "=f"(t) : "f"(__fmul_rn(x, 0.5f)));
  return t;
#else
  return 2.0f * ts_sigmoid(x) - 1.0f;  // nvcc's host pass (never executed); before sm_75, within the bound
#endif
}

// Orderable form of an fp32 value in two instructions: unsigned order == float order for
// non-NaN values (-0 just below +0; v' is never -0: s' >= +0). Only the lanes' best values,
// which are never NaN, go through it.
__device__ __forceinline__ uint32_t ts_prefilter_ord(float f) {
  const uint32_t u = ts_float_bits(f);
  return u ^ (static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u);
}
__device__ __forceinline__ float ts_prefilter_unord(uint32_t key) {
  return ts_bits_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// v' = s' + b for a lane's V logits, b from the block's shared copy of the bias (zero past
// E, 16-byte aligned: V / 4 vector loads); with Masked, slots j >= limit (past the row) get
// -inf. A NaN logit or bias gives a NaN v' (and a NaN v).
template <int Dtype, bool Masked, int V, class Raw>
__device__ __forceinline__ void ts_prefilter_values(const Raw (&raw)[V], const float* bias, int limit,
                                                    float (&value)[V]) {
  static_assert(V % 4 == 0, "whole float4 bias vectors per lane");
#pragma unroll
  for (int q = 0; q < V / 4; ++q) {
    const float4 b4 = reinterpret_cast<const float4*>(bias)[q];
    const float b[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int j = 4 * q + i;
      const float v = __fadd_rn(ts_sigmoid_prefilter(ts_input<Dtype>::to_float(raw[j])), b[i]);
      value[j] = !Masked || j < limit ? v : -INFINITY;
    }
  }
}

// t' = the k-th largest lane best: rounds of a warp max, the owner (owners, on ties: that only
// lowers t', which keeps every winner a candidate) dropping out. KR > 0: exactly KR rounds.
template <int KR, class Group>
__device__ __forceinline__ uint32_t ts_prefilter_kth(const Group& group, uint32_t best, int k) {
  uint32_t kth = 0;
#pragma unroll
  for (int r = 0; r < (KR > 0 ? KR : 8); ++r) {
    if (KR > 0 || r < k) {
      kth = group.max(best);
      best = best == kth ? 0u : best;
    }
  }
  return kth;
}

// Phase 1, one token of a whole warp (lane l holds experts [l*V, l*V + V), raw[j] its logits,
// limit how many of them are in the row; bias: the block's shared copy, 32 * V floats): the
// candidates' expert indices go to cand_index[0, n) and n (1..32) is returned; a value above
// 32 means the row needs the full path. Every branch on the result is uniform across the warp.
template <int Dtype, int V, class Group, class Raw>
__device__ __forceinline__ uint32_t ts_prefilter_candidates(const Group& group, const Raw (&raw)[V], int base,
                                                            int limit, const float* bias, int k, uint32_t* cand_index) {
  // Cheap ranking values and the lane's best one. Lanes wholly inside the row (all but the
  // last few, if any) skip the per-slot masking. fmaxf skips NaNs: they rank below every number
  // in the semantics, so with t' > -inf (checked below) none is a winner or a candidate.
  float value[V];
  if (limit >= V) ts_prefilter_values<Dtype, false>(raw, bias + base, limit, value);
  else ts_prefilter_values<Dtype, true>(raw, bias + base, limit, value);
  float best = -INFINITY;
#pragma unroll
  for (int j = 0; j < V; ++j) best = fmaxf(best, value[j]);
  const uint32_t kth = k == 8 ? ts_prefilter_kth<8>(group, ts_prefilter_ord(best), k)
                              : ts_prefilter_kth<0>(group, ts_prefilter_ord(best), k);
  // c = t' - margin, in round-to-nearest: margin = 4 bound + 2^-19 |t'| covers 2 bounds, two
  // half-ulps of values near t' (<= 2^-24 |t'| each, or 2^-150 when subnormal) and the
  // rounding of these two operations. |t'| is clamped so that t' = +inf gives c = +inf. Not
  // covered: t' = -inf (NaNs or -inf among the k best lanes) and c = -inf (t' near -FLT_MAX).
  const float t = ts_prefilter_unord(kth);
  const float margin = __fmaf_rn(fminf(fabsf(t), 3.4028234664e38f), 0x1p-19f, 4.0f * kTsPrefilterSigmoidBound);
  const float floor = __fsub_rn(t, margin);
  if (!(floor > -INFINITY)) return ~0u;

  // Compaction: the lane's candidates as a bit mask, an exclusive scan of the counts across
  // the warp, then each lane writes its candidates' indices from its offset on (a loop over
  // its set bits: most lanes have none or one): candidate p goes to scratch slot p. Past 32
  // the row goes to the full path (many near-ties, or ties).
  uint32_t mask = 0;
#pragma unroll
  for (int j = 0; j < V; ++j) mask |= (value[j] >= floor ? 1u : 0u) << j;  // false for NaN
  const uint32_t count = static_cast<uint32_t>(__popc(mask));
  // The total by one warp reduction, off the scan's dependent chain. The scan adds a lane's
  // value from `offset` lanes below only where that lane exists: the shuffle's own predicate
  // says so, which saves a compare and a select per step (the lane >= offset tests were
  // rebuilt every token).
  const uint32_t candidates = __reduce_add_sync(0xffffffffu, count);
  uint32_t inclusive = count;
#pragma unroll
  for (int offset = 1; offset < 32; offset <<= 1)
    asm("{\n\t.reg .pred in_range;\n\t.reg .b32 before;\n\t"
        "shfl.sync.up.b32 before|in_range, %0, %1, 0, 0xffffffff;\n\t"
        "@in_range add.u32 %0, %0, before;\n\t}"
        : "+r"(inclusive)
        : "r"(offset));
  if (candidates > 32u) return candidates;
  for (uint32_t at = inclusive - count; mask != 0u; ++at, mask &= mask - 1u)
    cand_index[at] = static_cast<uint32_t>(base + __ffs(mask) - 1);
  return candidates;
}

// Phase 2, called by the whole warp for one token (p = lane, count <= 32) or for two at once
// (p = lane mod 16, each half-warp with its own token's row, indices, count <= 16, key
// scratch and winner slots): the lane holding candidate p computes its exact key (logit and
// bias are L1 / shared hits) and ranks it by counting the larger keys of its token; the k best
// store themselves as won[rank] and their weights (the exact sigmoid, computed for the key
// anyway) as won_weight[rank]. Two tokens share the exact sigmoid and the ranking loop, the
// two costliest steps (about 11 candidates per token fit 16 lanes).
template <int Dtype, class Raw>
__device__ __forceinline__ void ts_prefilter_rank(const Raw* row, const uint32_t* cand_index, uint32_t count,
                                                  uint32_t p, const float* bias, int k, uint64_t* cand_key,
                                                  uint64_t* won, float* won_weight) {
  __syncwarp();  // the compaction's stores are visible
  const bool holds = p < count;
  uint64_t key = 0;
  float weight = 0.0f;
  if (holds) {
    const uint32_t e = cand_index[p];
    const float x = ts_input<Dtype>::to_float(row[e]);
    const float score = ts_sigmoid(x);  // once, for both the ranking value and the weight
    key = ts_key64(ts_ord32(ts_biased_value_of_score(score, bias[e])), e);
    weight = ts_weight_of_score(x, score);
    cand_key[p] = key;
  }
  __syncwarp();
  if (holds) {
    uint32_t rank = 0;
#pragma unroll 4
    for (uint32_t m = 0; m < count; ++m) rank += cand_key[m] > key ? 1u : 0u;
    if (rank < static_cast<uint32_t>(k)) {
      won[rank] = key;
      won_weight[rank] = weight;
    }
  }
}

#endif  // TS_PLATFORM_CUDA

#endif  // TOPK_SIGMOID_BIAS_PREFILTER_HPP
