// semantics.h: the one definition of the routing arithmetic, compiled for host and device alike.
//
// Every backend (host C++, CUDA, HIP) includes this file, so the bits they produce agree:
//  - the sigmoid is built from IEEE basic operations only (fma, add, mul, div, each rounded once,
//    never contracted, no fast-math exp), so the host and every GPU compute the same float;
//  - ranking keys are packed, orderable integers: (value, index) in one word whose unsigned
//    order is exactly the routing order (higher value first, lower index on ties, NaN last,
//    NaNs by index, -0 == +0), so "pick the best" is a plain unsigned max on every backend.
#ifndef TOPK_SIGMOID_SEMANTICS_H
#define TOPK_SIGMOID_SEMANTICS_H

#include <stdint.h>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define TS_HD __host__ __device__ __forceinline__
#else
#define TS_HD inline
#endif

// Explicitly rounded IEEE operations. On nvcc the __f*_rn intrinsics are never fused; elsewhere
// the build passes -ffp-contract=off and these are plain operators (and fmaf, a single rounding).
#if defined(__CUDA_ARCH__)
#define TS_FMA(a, b, c) __fmaf_rn((a), (b), (c))
#define TS_ADD(a, b) __fadd_rn((a), (b))
#define TS_MUL(a, b) __fmul_rn((a), (b))
#define TS_DIV(a, b) __fdiv_rn((a), (b))
#else
#define TS_FMA(a, b, c) __builtin_fmaf((a), (b), (c))
#define TS_ADD(a, b) ((a) + (b))
#define TS_MUL(a, b) ((a) * (b))
#define TS_DIV(a, b) ((a) / (b))
#endif

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

TS_HD uint32_t ts_float_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  return u;
}

TS_HD float ts_bits_float(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

TS_HD bool ts_isnan(float f) { return (ts_float_bits(f) & 0x7fffffffu) > 0x7f800000u; }

// 2^n for n in [-126, 127], built from the exponent field.
TS_HD float ts_pow2i(int n) { return ts_bits_float((uint32_t)(n + 127) << 23); }

// e^t for t <= 0 (not NaN). Cody-Waite reduction t = n ln2 + r, |r| <= ln2/2, degree-6
// polynomial, then scaling by 2^n in two steps so that results down to the subnormal range
// round once per step, identically everywhere.
TS_HD float ts_exp_nonpositive(float t) {
  t = t < -150.0f ? -150.0f : t;  // e^-150 underflows to 0 after scaling; clamps -inf too
  // n = rint(t * log2 e): adding 1.5 * 2^23 rounds to an integer in round-to-nearest-even.
  const float j = TS_ADD(TS_FMA(t, 1.44269504088896341f, 12582912.0f), -12582912.0f);
  float r = TS_FMA(j, -0.693359375f, t);  // ln2 split: 0.693359375 - 2.12194440e-4
  r = TS_FMA(j, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = TS_FMA(p, r, 1.3981999507e-3f);
  p = TS_FMA(p, r, 8.3334519073e-3f);
  p = TS_FMA(p, r, 4.1665795894e-2f);
  p = TS_FMA(p, r, 1.6666665459e-1f);
  p = TS_FMA(p, r, 5.0000001201e-1f);
  float y = TS_FMA(p, TS_MUL(r, r), r);
  y = TS_ADD(y, 1.0f);
  const int n = (int)j;  // in [-217, 0]
  const int n1 = n / 2;  // both halves in [-109, 0]: normal powers of two
  y = TS_MUL(y, ts_pow2i(n1));
  return TS_MUL(y, ts_pow2i(n - n1));
}

// e = e^-|x|, the sigmoid's one exponential (x not NaN).
TS_HD float ts_exp_minus_abs(float x) { return ts_exp_nonpositive(-ts_bits_float(ts_float_bits(x) & 0x7fffffffu)); }

// sigmoid(x) in fp32. Evaluated on e = e^-|x| in (0, 1], so nothing overflows:
// x >= 0: 1 / (1 + e); x < 0: e / (1 + e). NaN in, NaN out.
TS_HD float ts_sigmoid(float x) {
  if (ts_isnan(x)) return x;
  const float e = ts_exp_minus_abs(x);
  const float d = TS_ADD(1.0f, e);
  return TS_DIV(x >= 0.0f ? 1.0f : e, d);  // one division, whichever numerator
}

// A division for GPU code that computes several quotients at once (ts_weight_of_logit_branchless
// below, the warp kernel's Small form; the thread select kernel's renormalisation), bit for bit
// the IEEE division's result, but on NVIDIA without its slow-path branch. The IEEE division's
// check and branch, one per division, split the code into blocks that ptxas cannot interleave,
// so eight weights ran one after another. Without it the division is the reciprocal refined
// once and the quotient corrected once by its exact residual, which is correctly rounded where
// nothing on the way leaves the normal range:
//  - the sigmoid's operands: d = 1 + e in [1, 2] and n = 1 or e in [0, 1], whose quotients are
//    normal (e >= 2^-24) or have d == 1 exactly (then every step is exact, a subnormal e
//    included). tests/sigmoid_branchless.cu compares ts_weight_of_logit_branchless with
//    ts_weight_of_logit on all 2^32 fp32 inputs (so every 16-bit logit too) on the GPU;
//  - operands for which ts_division_in_range holds (below); the same program compares the two
//    divisions on about 10^9 such pairs.
// gpu.test.ts requires 0 differences from both.
// Its two halves, for several quotients of one divisor (a token's renormalisation): the
// divisor's refined reciprocal once, then each quotient from it, the same operations in the same
// order, so the same bits as ts_division_branchless(n, d).
TS_HD float ts_reciprocal_refined(float d) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(d));
  return TS_FMA(r, TS_FMA(-d, r, 1.0f), r);
#else
  return d;  // unused: the host divides
#endif
}
TS_HD float ts_quotient_of_reciprocal(float n, float d, float r) {
#if defined(__CUDA_ARCH__)
  const float q = TS_MUL(n, r);
  return TS_FMA(TS_FMA(-d, q, n), r, q);
#else
  (void)r;
  return TS_DIV(n, d);
#endif
}
TS_HD float ts_division_branchless(float n, float d) { return ts_quotient_of_reciprocal(n, d, ts_reciprocal_refined(d)); }

// The routed weight of a chosen expert: its score, 0 for a NaN logit. The _of_score forms take
// score = ts_sigmoid(x) already computed, for callers that need both the weight and the
// ranking value of one logit (the bias prefilter) and compute the sigmoid once.
TS_HD float ts_weight_of_score(float x, float score) { return ts_isnan(x) ? 0.0f : score; }
TS_HD float ts_weight_of_logit(float x) { return ts_isnan(x) ? 0.0f : ts_sigmoid(x); }
// ts_sigmoid(x) bit for bit through ts_division_branchless (above), NaN in, NaN out (a NaN's
// garbage quotient is replaced), and the weight made from it: the split bias kernel's exact
// values and the warp kernel's Small form.
TS_HD float ts_sigmoid_branchless(float x) {
  const float e = ts_exp_minus_abs(x);
  const float s = ts_division_branchless(x >= 0.0f ? 1.0f : e, TS_ADD(1.0f, e));
  return ts_isnan(x) ? x : s;
}
TS_HD float ts_weight_of_logit_branchless(float x) { return ts_weight_of_score(x, ts_sigmoid_branchless(x)); }

// The ranking value with a correction bias: score + bias in fp32 (NaN logit -> NaN).
TS_HD float ts_biased_value_of_score(float score, float bias) { return TS_ADD(score, bias); }
TS_HD float ts_biased_value(float x, float bias) { return ts_biased_value_of_score(ts_sigmoid(x), bias); }

// Final weight: w / sum (rank-order sum, only when renormalizing and sum != 0), then * scale.
TS_HD float ts_final_weight(float w, float sum, bool renormalize, float scale) {
  const float v = (renormalize && sum != 0.0f) ? TS_DIV(w, sum) : w;
  return TS_MUL(v, scale);
}

// Whether ts_division_branchless(n, d) is the IEEE quotient for these operands: d and a nonzero
// n in [2^-60, 2^60], so the reciprocal, the quotient and its residual stay normal, or n = +0
// (-0 / d is -0, and the residual's addition makes it +0). A renormalisation's weights lie in
// [+0, 1] and its sum in (0, 8]: only weights below 2^-60 (logits below about -41.6) or such a
// sum fail it.
TS_HD bool ts_division_in_range(float n, float d) {
  return (ts_float_bits(n) == 0u || (n >= 0x1p-60f && n <= 0x1p60f)) && d >= 0x1p-60f && d <= 0x1p60f;
}
// ts_final_weight through ts_division_branchless, where !renormalize, sum == 0 or
// ts_division_in_range(w, sum), with the sum's reciprocal given (ts_reciprocal_refined(sum),
// computed once per token).
TS_HD float ts_final_weight_of_reciprocal(float w, float sum, float reciprocal, bool renormalize, float scale) {
  const float v = (renormalize && sum != 0.0f) ? ts_quotient_of_reciprocal(w, sum, reciprocal) : w;
  return TS_MUL(v, scale);
}

// ---- Orderable keys -------------------------------------------------------------------------
// Unsigned order of ts_ord32(a) vs ts_ord32(b) == routing order of a vs b (NaN -> 0, the
// bottom; -0 and +0 equal). Same for the 16-bit formats on their raw bits.
TS_HD uint32_t ts_ord32(float f) {
  uint32_t u = ts_float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0u;  // NaN
  if ((u & 0x7fffffffu) == 0u) u = 0u;               // -0 -> +0
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// 16-bit float bits with the given exponent-all-ones threshold (bf16: 0x7f80, fp16: 0x7c00).
TS_HD uint32_t ts_ord16(uint32_t h, uint32_t inf_bits) {
  h &= 0xffffu;
  if ((h & 0x7fffu) > inf_bits) return 0u;  // NaN
  if ((h & 0x7fffu) == 0u) h = 0u;
  return (h & 0x8000u) ? (~h & 0xffffu) : (h | 0x8000u);
}

// Two 16-bit floats in one word (element 2i in the low half) -> both orderable values at once,
// exactly ts_ord16 of each half: the GPU kernels convert pairs with a handful of word operations.
TS_HD uint32_t ts_ord16x2(uint32_t x, uint32_t inf_bits) {
  const uint32_t abs = x & 0x7fff7fffu;
  const uint32_t nonzero = (abs + 0x7fff7fffu) & 0x80008000u;  // per half: |h| >= 1 (no carry out)
  const uint32_t canon = x & (0x7fff7fffu | nonzero);            // -0 -> +0
  const uint32_t neg = (canon >> 15) & 0x00010001u;
  const uint32_t ord = canon ^ (neg * 0x7fffu + 0x80008000u);    // negative: ~h, positive: h | 0x8000
  const uint32_t nan = ((abs + (0x7fffu - inf_bits) * 0x00010001u) >> 15) & 0x00010001u;  // |h| > inf
  return ord & ~(nan * 0xffffu);
}

// Inverses, for reading a chosen expert's value back out of its key (NaN -> ord 0 -> NaN).
TS_HD uint32_t ts_unord16(uint32_t ord) { return (ord & 0x8000u) ? (ord & 0x7fffu) : (~ord & 0xffffu); }
TS_HD float ts_unord32(uint32_t ord) {
  if (ord == 0u) return ts_bits_float(0x7fc00000u);
  return ts_bits_float((ord & 0x80000000u) ? (ord & 0x7fffffffu) : ~ord);
}

// The index half of a key: larger for lower indices, never 0 (0 is the "empty" key), since
// index <= 32767 < 0xffff.
TS_HD uint32_t ts_index_field(uint32_t index) { return 0xffffu - index; }
TS_HD uint32_t ts_key_index(uint32_t key_low) { return 0xffffu - (key_low & 0xffffu); }

// 32-bit key: 16-bit input ranked by its own value (no bias).
TS_HD uint32_t ts_key32(uint32_t ord16, uint32_t index) { return (ord16 << 16) | ts_index_field(index); }
// 64-bit key: fp32 value (fp32 input, or any input with bias).
TS_HD uint64_t ts_key64(uint32_t ord32, uint32_t index) {
  return ((uint64_t)ord32 << 32) | ts_index_field(index);
}

// ---- Input conversion (exact) ---------------------------------------------------------------
TS_HD float ts_bf16_to_float(uint32_t h) { return ts_bits_float((h & 0xffffu) << 16); }

TS_HD float ts_f16_to_float(uint32_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1fu) return ts_bits_float(sign | 0x7f800000u | (man << 13));  // inf / NaN
  if (exp != 0u) return ts_bits_float(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0u) return ts_bits_float(sign);
  // subnormal: value = man * 2^-24, exact in fp32
  int e = -1;
  do {
    man <<= 1;
    ++e;
  } while ((man & 0x400u) == 0u);
  return ts_bits_float(sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13));
}

#endif  // TOPK_SIGMOID_SEMANTICS_H
