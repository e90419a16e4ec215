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

#include "bias_prefilter.hpp"
#include "dependent_launch.hpp"
#include "gpu_compat.h"
#include "keys.hpp"

#include <type_traits>

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
  int32_t early_dependents;  // ts_await_prior_grid: let the next kernel launch at once (else at block exit)
  int32_t l2_hint;           // ts_prefetch_first_row: hint the L2 at the group's first row before the wait
                             // (the staged kernel: at this many tiles of the block's rows, ts_staged_begin)
};

// Before ts_await_prior_grid, where the launch asks for it (l2_hint: grids that leave half the
// device free, device_backend.hip): the L2 hint for the first row that this thread's group of
// Lanes routes, numbered as every kernel's token loop starts (groups of Lanes threads, each
// routing tokens_per_group tokens from its first); Raw elements, nothing past the batch.
// Compiled out where !Enabled; with Load, asked for by loads (ts_prefetch_row_l2).
template <class Raw, int Lanes, bool Enabled = true, bool Load = false>
__device__ __forceinline__ void ts_prefetch_first_row(const ts_kernel_args& a, int tokens_per_group = 1) {
  static_assert(Lanes > 0 && (Lanes & (Lanes - 1)) == 0, "a power of two of lanes per group");
  const int64_t token =
      (static_cast<int64_t>(blockIdx.x) * (blockDim.x / Lanes) + threadIdx.x / Lanes) * tokens_per_group;
  if (Enabled && a.l2_hint != 0 && token < a.tokens)
    ts_prefetch_row_l2<Load>(static_cast<const Raw*>(a.logits) + token * a.row_stride,
                             static_cast<int64_t>(a.experts) * static_cast<int64_t>(sizeof(Raw)),
                             static_cast<int>(threadIdx.x) & (Lanes - 1), Lanes);
}

template <class Key>
__device__ __forceinline__ Key ts_umax(Key a, Key b) {
  return a > b ? a : b;
}
template <class Key>
__device__ __forceinline__ Key ts_umin(Key a, Key b) {
  return a < b ? a : b;
}

// Compare-exchange so that c[i] >= c[j].
template <int V, class Key>
__device__ __forceinline__ void ts_cx(Key (&c)[V], int i, int j) {
  const Key hi = ts_umax(c[i], c[j]);
  c[j] = c[i] < c[j] ? c[i] : c[j];
  c[i] = hi;
}

// The optimal 19-exchange sorting network for 8 keys: exchange n orders the pair (first, second)
// so that c[first] >= c[second] (side 0: first, 1: second). Folds to constants in unrolled loops.
__device__ __forceinline__ constexpr int ts_sort8_net(int n, int side) {
  constexpr int kNet[19][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}, {0, 4}, {1, 5}, {2, 6}, {3, 7}, {0, 1}, {2, 3},
                               {4, 5}, {6, 7}, {2, 4}, {3, 5}, {1, 4}, {3, 6}, {1, 2}, {3, 4}, {5, 6}};
  return kNet[n][side];
}

// Sorts a lane's keys descending with compile-time indices only, so everything stays in
// registers: the 19-exchange network for 8 keys, a bitonic network for 16 and 32.
template <int V, class Key>
__device__ __forceinline__ void ts_sort_desc(Key (&c)[V]) {
  if constexpr (V == 8) {
#pragma unroll
    for (int n = 0; n < 19; ++n) ts_cx(c, ts_sort8_net(n, 0), ts_sort8_net(n, 1));
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

// list = the best 8 of two descending lists, list and v, sorted descending, where list[0 .. R - 1]
// are already final (above every key of v) and only v[0 .. 7 - R] can reach the list. The
// elementwise maximum of the list and v reversed is a bitonic sequence holding the best 8 of
// both, which three half-cleaner stages sort; places 0 .. R - 1 are set to the largest key, so
// the sequence stays bitonic and their exchanges fold away (the thread select kernel merges its
// ranked vectors this way: kernel_thread_select.hpp).
template <int R, class Key>
__device__ __forceinline__ void ts_fold_ranked(Key (&list)[8], const Key (&v)[8]) {
  Key c[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) c[j] = j < R ? ~Key(0) : ts_umax(list[j], v[7 - j]);
#pragma unroll
  for (int stride = 4; stride > 0; stride >>= 1) {
#pragma unroll
    for (int i = 0; i < 8; ++i)
      if ((i & stride) == 0) ts_cx(c, i, i + stride);
  }
#pragma unroll
  for (int j = R; j < 8; ++j) list[j] = c[j];
}

// a = the best 8 of two descending lists a and b, sorted descending (no place final yet).
template <class Key>
__device__ __forceinline__ void ts_fold_best8(Key (&a)[8], const Key (&b)[8]) {
  ts_fold_ranked<0>(a, b);
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
    for (int b = 0; b + width < kBlocks; b += 2 * width) ts_fold_best8(block[b], block[b + width]);
  }
#pragma unroll
  for (int j = 0; j < 8; ++j) top[j] = block[0][j];
}

// The owner of a round's winner drops its list head: a predicated shift, no branch.
template <int L, class Key>
__device__ __forceinline__ void ts_pop_head_if(Key (&list)[L], bool pop) {
#pragma unroll
  for (int j = 0; j < L - 1; ++j) list[j] = pop ? list[j + 1] : list[j];
  list[L - 1] = pop ? Key(0) : list[L - 1];
}

// k rounds of group arg-max over the lanes' list heads. Keys are distinct, so exactly one lane
// owns each winner; it pops its head. Lane slot + r keeps round r's winner.
template <int L, class Group, class Key>
__device__ __forceinline__ void ts_round(const Group& group, Key (&list)[L], int r, int lane, int slot, Key& mine) {
  const Key winner = group.max(list[0]);
  if (lane == slot + r) mine = winner;
  ts_pop_head_if(list, list[0] == winner);
}
// With `unrolled` (small batches) k = 8, the common router setting, gets its rounds unrolled:
// a small batch waits on this chain, and the loop's compare and branch sat between one round's
// pop and the next max.
template <int L, class Group, class Key>
__device__ __forceinline__ void ts_rounds(const Group& group, Key (&list)[L], int k, int lane, int slot, Key& mine,
                                          bool unrolled) {
  if (unrolled && k == 8) {
#pragma unroll
    for (int r = 0; r < 8; ++r) ts_round(group, list, r, lane, slot, mine);
    return;
  }
  for (int r = 0; r < k; ++r) ts_round(group, list, r, lane, slot, mine);
}

// Per 16-bit half of x: 0xffff where its sign bit is set.
__device__ __forceinline__ uint32_t ts_sign_halves(uint32_t x) {
#if defined(TS_PLATFORM_CUDA) && defined(__CUDA_ARCH__)
  uint32_t m;
  asm("prmt.b32 %0, %1, 0, 0xBB99;" : "=r"(m) : "r"(x));  // replicate the sign bits of bytes 1 and 3
  return m;
#else
  return ((x >> 15) & 0x00010001u) * 0xffffu;
#endif
}

// Per 16-bit half of x: x with -0 made +0 and every NaN made 0xffff, so that the plain orderable
// transform of ts_split_ord16x2 sends -0 onto +0 and every NaN to 0. On sm_80+ the zeros go by a
// float addition of +0 (exact for every other value; a NaN comes out as some NaN) on the FMA pipe,
// and the NaNs by one packed float compare (bf16 from sm_90, fp16 from sm_80). Elsewhere (sm_80
// bf16, HIP) the NaNs go by an integer add that cannot carry between the halves: |h| + (0x7fff -
// inf) reaches bit 15 exactly when |h| > inf. The HIP branch is compiled, not run here (no AMD GPU);
// tests/split_keys_check.cu runs the sm_90 and sm_80 ones.
template <int Dtype>
__device__ __forceinline__ uint32_t ts_split_canonical16x2(uint32_t x) {
  [[maybe_unused]] constexpr uint32_t kInf = ts_keys16<Dtype>::kInfBits;
#if defined(TS_PLATFORM_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t y, nan;
  if constexpr (Dtype == TS_DTYPE_BF16) {
    asm("fma.rn.bf16x2 %0, %1, %2, %3;" : "=r"(y) : "r"(x), "r"(0x3f803f80u), "r"(0u));  // x * 1 + 0
#if __CUDA_ARCH__ >= 900
    asm("set.nan.u32.bf16x2 %0, %1, %1;" : "=r"(nan) : "r"(x));
#else
    nan = ts_sign_halves((x & 0x7fff7fffu) + (0x7fffu - kInf) * 0x00010001u);
#endif
  } else {
    asm("add.rn.f16x2 %0, %1, %2;" : "=r"(y) : "r"(x), "r"(0u));
    asm("set.nan.u32.f16x2 %0, %1, %1;" : "=r"(nan) : "r"(x));
  }
  return y | nan;
#else
  const uint32_t nan = ts_sign_halves((x & 0x7fff7fffu) + (0x7fffu - kInf) * 0x00010001u);
  const uint32_t lo = (x & 0xffffu) == 0x8000u ? 0u : (x & 0xffffu);
  const uint32_t hi = (x >> 16) == 0x8000u ? 0u : (x >> 16);
  return (lo | (hi << 16)) | nan;
#endif
}

// The orderable form of two 16-bit floats (element 2i in the low half) of the split family's
// kernels and the warp kernel's Small form: the same order as ts_ord16x2 (NaN at the bottom, -0
// equal to +0). From ts_split_canonical16x2's halves: positives get the top bit set, negatives
// are complemented (0x8000 | m -> 0x7fff - m, -inf 0x007f), and a NaN's 0xffff becomes 0. Five
// word operations, three of them on the ALU pipe (sm_90), where the form before this took eight
// ALU ones (the integer tests of -0 and NaN); its keys are read back with ts_split_value_of.
// tests/split_keys_check.cu checks both against ts_ord16 / ts_keys16 on every input.
template <int Dtype>
__device__ __forceinline__ uint32_t ts_split_ord16x2(uint32_t x) {
  const uint32_t y = ts_split_canonical16x2<Dtype>(x);
  return y ^ (ts_sign_halves(y) | 0x80008000u);
}

// The logit inside a key built from ts_split_ord16x2 (NaN for NaN, +0 for either zero), the
// value ts_keys16::value_of gives for the same expert's exact key.
template <int Dtype>
__host__ __device__ __forceinline__ float ts_split_value_of(uint32_t key) {
  const uint32_t ord = key >> 16;
  if (ord == 0u) return ts_bits_float(0x7fc00000u);
  return ts_input<Dtype>::to_float(ts_split_half_of(ord));
}

// The Small form's keys of 16-bit logits (no bias): ranked as ts_keys16's, built by
// ts_split_ord16x2 (so no make(): ts_keys16::make builds the other form's words) and read back by
// ts_split_value_of.
template <int Dtype>
struct ts_small_keys16 {
  using Key = uint32_t;
  __device__ static float value_of(uint32_t key) { return ts_split_value_of<Dtype>(key); }
};

// The orderable form of two 16-bit floats in two instructions: positives get the top bit set,
// negatives are complemented, exactly as ts_ord16x2 does, except that NaNs are not sent to the
// bottom (a positive NaN ranks above +inf) and -0 ranks just below +0. So keys built from it rank
// exactly as the true keys whenever the winners are positive and no positive NaN is present,
// which the fast path checks before it trusts a selection.
__device__ __forceinline__ uint32_t ts_ord16x2_positive(uint32_t x) { return x ^ (ts_sign_halves(x) | 0x80008000u); }

// Index fields without per-key arithmetic. A lane's V slots split into blocks of B (the
// largest power of two dividing V: all of V = 4, 8, 16; 4 for V = 12). The field of expert
// e = base + q*B + r is 0xffff - e = field_block ^ r, where field_block = 0xffff - (base + q*B)
// has its low log2(B) bits set (base + q*B is a multiple of B) and its high half clear.
template <int V>
__host__ __device__ constexpr int ts_index_block() {
  return V & -V;
}

// Keys of slots r and r + 1 of a block (r even, r + 1 < B) from their two orderable 16-bit
// values in one word (slot r's in the low half). The fields were one IADD3 per key, rebuilt
// every token (ptxas does not keep V constants live across the token loop), plus the OR into
// the key; here each key is one LOP3 of the word, the block's field and an immediate:
//   lo = (ord << 16) | (field ^ r)                 LUT 0xF6: a | (b ^ c)
//   hi = (ord & 0xffff0000) | (field ^ (r + 1))    LUT 0x64: c ? a & ~b : b, with
//        c = 0xffff0000 | (r + 1): where c is set, b is clear in the high half (so a is taken)
//        and set in the low half (r + 1 < B), where the result must be b ^ 1 = 0 = a & ~b.
template <class Key>
__device__ __forceinline__ void ts_pair_keys(uint32_t ord, uint32_t field_block, int r, Key& lo, Key& hi) {
#if defined(TS_PLATFORM_CUDA) && defined(__CUDA_ARCH__)
  uint32_t l, h;
  asm("lop3.b32 %0, %1, %2, %3, 0xF6;" : "=r"(l) : "r"(ord << 16), "r"(field_block), "r"(static_cast<uint32_t>(r)));
  asm("lop3.b32 %0, %1, %2, %3, 0x64;"
      : "=r"(h)
      : "r"(ord), "r"(field_block), "r"(0xffff0000u | static_cast<uint32_t>(r + 1)));
  lo = static_cast<Key>(l);
  hi = static_cast<Key>(h);
#else
  lo = static_cast<Key>((ord << 16) | (field_block ^ static_cast<uint32_t>(r)));
  hi = static_cast<Key>((ord & 0xffff0000u) | (field_block ^ static_cast<uint32_t>(r + 1)));
#endif
}

// All V keys of a lane from its V / 2 words of orderable pairs (slot j: expert base + j).
template <int V, class Key>
__device__ __forceinline__ void ts_lane_pair_keys(const uint32_t (&ord)[V / 2], int base, Key (&keys)[V]) {
  constexpr int kB = ts_index_block<V>();
  static_assert(kB >= 2, "pairs of slots inside one block");
  const uint32_t field = ts_index_field(static_cast<uint32_t>(base));
#pragma unroll
  for (int j = 0; j < V; j += 2)
    ts_pair_keys(ord[j >> 1], field - static_cast<uint32_t>(j / kB * kB), j % kB, keys[j], keys[j + 1]);
}

// Exact keys one logit at a time (fp32 input, or any input with bias): the fp32 ranking value
// (the logit, or sigmoid + bias) and the index. Slots j >= limit are masked by the caller.
template <int Dtype, bool HasBias, int V, class Raw, class Key>
__device__ __forceinline__ void ts_exact_keys(const Raw (&raw)[V], Key (&keys)[V], int base, int limit,
                                              const float* bias) {
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int e = base + j;
    const float x = ts_input<Dtype>::to_float(raw[j]);
    if (HasBias) {
      const float b = j < limit ? bias[e] : 0.0f;
      keys[j] = static_cast<Key>(ts_key64(ts_ord32(ts_biased_value(x, b)), static_cast<uint32_t>(e)));
    } else {
      keys[j] = static_cast<Key>(ts_key64(ts_ord32(x), static_cast<uint32_t>(e)));
    }
  }
}

// The fast path's rounds over two-key lane lists (kernel below). Each round's winner is the
// same in every lane, so it goes to the group's slot in shared memory (one store, no per-lane
// select): on sm_90 the kernel is bound by the integer ALU pipe (half the FP32 rate), and the
// per-lane compare + select and the test of k cost about a tenth of its ALU work at k = 8.
// KR > 0: exactly KR rounds (no per-round test of k); KR == 0: k rounds.
template <int KR, class Group, class Key>
__device__ __forceinline__ void ts_fast_rounds(const Group& group, Key first, Key second, int k, Key* won, Key& top,
                                               Key& winner) {
#pragma unroll
  for (int r = 0; r < (KR > 0 ? KR : 8); ++r) {
    if (KR > 0 || r < k) {
      winner = group.max(first);
      if (r == 0) top = winner;
      won[r] = winner;
      const bool pop = first == winner;
      first = pop ? second : first;
      second = pop ? Key(0) : second;
    }
  }
}

// Butterfly merge: every lane starts with its L best keys sorted descending and ends with the
// group's L best, sorted, in log2(W) steps. Per step a lane takes its partner's list (L
// independent shuffles, in flight together), keeps the elementwise max of its list and the
// partner's reversed (a bitonic sequence holding the best L of both) and sorts it with three
// half-cleaner stages. The dependent chain is log2(W) short steps instead of k rounds of a
// group max, which is what a small batch waits for (lane r then keeps rank r).
template <int W, int L, class Group, class Key>
__device__ __forceinline__ void ts_butterfly_topk(const Group& group, Key (&list)[L]) {
#pragma unroll
  for (int offset = W / 2; offset > 0; offset >>= 1) {
    Key other[L];
#pragma unroll
    for (int i = 0; i < L; ++i) other[i] = group.xor_read(list[i], offset);
#pragma unroll
    for (int i = 0; i < L; ++i) list[i] = ts_umax(list[i], other[L - 1 - i]);
#pragma unroll
    for (int stride = L / 2; stride > 0; stride >>= 1) {
#pragma unroll
      for (int i = 0; i < L; ++i)
        if ((i & stride) == 0) ts_cx(list, i, i + stride);
    }
  }
}

// Lane `rel` of a token's segment keeps rank rel (0 <= rel < k <= L) of a merged list.
template <int L, class Key>
__device__ __forceinline__ void ts_keep_rank(const Key (&list)[L], int rel, int k, Key& mine) {
  Key pick = list[0];
#pragma unroll
  for (int i = 1; i < L; ++i) pick = rel == i ? list[i] : pick;
  if (static_cast<unsigned>(rel) < static_cast<unsigned>(k)) mine = pick;
}

// Small batches in whole warps without bias (the kernel's Small form): KR plain rounds, then the
// token is finished right there (finish: the final weights and the stores), not in the shared
// epilogue. Lane slot + r keeps round r's winner. The winners' weights are computed SIMT-wide,
// each lane its own winner's, in at most two batches: for KR >= 6 the first KR / 2 right after
// round KR / 2, while the later rounds wait on their redux.sync, with their rank-order partial
// sum read across lanes at once; the rest after the last round. Computing every winner's weight
// in every lane as it was won (the form before) put one sigmoid's instructions into each round:
// about 135 cycles a round against about 62 for plain rounds (H200, clock64 per warp). The
// weights use the branch-free sigmoid division (ts_weight_of_logit_branchless, the same bits) so
// the code stays one block that ptxas can interleave. Exactly KR rounds: the common k get their
// own straight-line copy (ts_select_small_k).
template <class K, int KR, class Group, class Key, class Finish>
__device__ __forceinline__ void ts_weighted_rounds(const Group& group, Key (&list)[8], int lane, int slot, Key& mine,
                                                   const Finish& finish) {
  constexpr int kFirst = KR >= 6 ? KR / 2 : 0;  // winners weighed in the first batch
  float first_sum = 0.0f;                       // their rank-order sum
#pragma unroll
  for (int r = 0; r < KR; ++r) {
    const Key winner = group.max(list[0]);
    ts_pop_head_if(list, list[0] == winner);
    if (lane == slot + r) mine = winner;
    if (kFirst > 0 && r == kFirst - 1) {
      const float w_first = ts_weight_of_logit_branchless(K::value_of(mine));
#pragma unroll
      for (int q = 0; q < kFirst; ++q) {
        const float wq = group.read(w_first, slot + q);
        first_sum = q == 0 ? wq : TS_ADD(first_sum, wq);
      }
    }
  }
  const float w = ts_weight_of_logit_branchless(K::value_of(mine));
  float sum = w;  // KR == 1: the sum is the one weight
  if constexpr (KR > 1) {
    float rest[KR];
#pragma unroll
    for (int q = kFirst; q < KR; ++q) rest[q] = group.read(w, slot + q);  // all reads in flight together
    sum = kFirst > 0 ? first_sum : rest[0];
#pragma unroll
    for (int q = kFirst > 0 ? kFirst : 1; q < KR; ++q) sum = TS_ADD(sum, rest[q]);
  }
  finish(mine, w, sum, KR == 1);
}
// ts_final_weight(w, w, renormalize, scale) without its division, for k = 1: a weight is never
// negative, infinite or NaN (0 for a NaN logit), and w / w is exactly 1 for every other w,
// subnormal ones included (IEEE division is correctly rounded).
__device__ __forceinline__ float ts_final_weight_alone(float w, bool renormalize, float scale) {
  return TS_MUL(renormalize && w != 0.0f ? 1.0f : w, scale);
}

// k <= 8 winners from each lane's sorted best 8: the rounds, or for small batches in narrow
// groups with k >= 3, the butterfly merge. Small batches (G == 1) wait on the dependent chain,
// and there the merge is shorter than k butterfly-max rounds (H200, T=1, k=8: E=8 1.97 ->
// 1.69 us, E=64 1.95 -> 1.66 us). Whole warps keep the rounds: one redux.sync per round is as
// fast as five merge steps, and several tokens per group favour the rounds' fewer instructions.
// Returns whether the token is finished (the Small form's weighted rounds called finish);
// otherwise the shared epilogue computes the weights and stores them.
template <class Policy, int W, bool UnrollRounds, class K, bool Weighted, class Group, class Key, class Finish>
__device__ __forceinline__ bool ts_select_small_k(const Group& group, Key (&top)[8], int G, int k, int lane, int slot,
                                                  int rel, Key& mine, const Finish& finish) {
  if constexpr (Weighted) {
    switch (k) {  // uniform; each k its own straight-line copy (a test per round would split it)
      case 8: ts_weighted_rounds<K, 8>(group, top, lane, slot, mine, finish); return true;
      case 6: ts_weighted_rounds<K, 6>(group, top, lane, slot, mine, finish); return true;
      case 4: ts_weighted_rounds<K, 4>(group, top, lane, slot, mine, finish); return true;
      case 2: ts_weighted_rounds<K, 2>(group, top, lane, slot, mine, finish); return true;
      case 1: ts_weighted_rounds<K, 1>(group, top, lane, slot, mine, finish); return true;
      default: break;  // the sorted rounds below; the epilogue computes the weights
    }
  }
  if constexpr (Policy::kXorRead) {
    if (G == 1 && W < 32 && k >= 3) {
      if (k <= 4) {
        Key top4[4] = {top[0], top[1], top[2], top[3]};
        ts_butterfly_topk<W>(group, top4);
        ts_keep_rank(top4, rel, k, mine);
      } else {
        ts_butterfly_topk<W>(group, top);
        ts_keep_rank(top, rel, k, mine);
      }
      return false;
    }
  }
  ts_rounds(group, top, k, lane, slot, mine, UnrollRounds && G == 1);
  return false;
}

extern __shared__ uint64_t ts_warp_shared[];

template <class Policy, int W>
__host__ __device__ constexpr bool ts_warp_won_in_shared() {
  return Policy::kGroupSum && W == 32;
}

// Dynamic shared memory a ts_warp_kernel launch needs: for whole-warp groups, a winner slot
// per thread when the fast path can run (several tokens per group) or the bias prefilter can
// (any batch), and with a bias the prefilter's candidate scratch per warp, the winners' weights
// (a float per thread) and the block's copy of the bias (W * V floats, zero past E) after them
// (bias_prefilter.hpp); else none. Sized for kWarpBlock threads, so smaller blocks fit too.
template <class Policy, int Dtype, int W, int V, bool HasBias>
inline unsigned ts_warp_shared_bytes(int tokens_per_group) {
  using Key = typename ts_keys<Dtype, HasBias>::Key;
  constexpr bool kPrefilter = HasBias && kTsBiasPrefilter;
  if (!ts_warp_won_in_shared<Policy, W>() || (tokens_per_group <= 1 && !kPrefilter)) return 0u;
  const unsigned prefilter =
      kPrefilter ? (kWarpBlock / 32) * ts_prefilter_scratch_bytes(V) + kWarpBlock * sizeof(float) + W * V * sizeof(float)
                 : 0u;
  return kWarpBlock * sizeof(Key) + prefilter;
}

// Blocks per SM the compiler must leave registers for (whole-warp kernels of large batches).
// With the bias prefilter and V = 8 or 12 the kernel takes a few more than 48 registers, which
// leaves 4 blocks (32 warps) per SM; 5 hide more of each token's load latency (H100, T=65536
// k=8 bf16: E256 42.6 -> 40.2 us, E384 48.3 -> 46.0); V = 16 would spill at 5 (E512 55.9 ->
// 58.6) and is held at 4, the 64 registers it takes alone (with token pairs it took 67 and ran
// 3 blocks: 55.4 -> 59.6 us, so V = 16 does not pair); V = 4 gains nothing. Without bias,
// V = 12 fits 6 blocks and V = 16 fits 5 without spilling (H200: E384 32.5 -> 31.6 us, E512
// unchanged), and V = 4 and 8 fit 8, the whole SM, in 32 registers: the E=128 kernel was
// latency-bound at 6 (Nsight Compute, H200, T=65536: issue slots 63% busy, ALU pipe 55%;
// graph replay, interleaved: T=65536 E128 20.2 -> 19.8 us, E256 25.5 -> 24.6; T=16384 E256
// 9.4 -> 8.9; batches of T <= 256 within 0.01 us). 16-bit logits only; every kernel is checked
// for spills with ptxas -v.
template <int Dtype, int W, int V, bool HasBias>
__host__ __device__ constexpr int ts_warp_min_blocks() {
#if !defined(TS_PLATFORM_CUDA)
  return 1;  // measured on NVIDIA only (on AMD the bound would set waves per EU)
#endif
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  return 1;  // measured on sm_90 only; on sm_80 the bf16 bias kernel at V = 12 spilled under it
#endif
  if (W != 32 || Dtype == TS_DTYPE_F32) return 1;  // fp32 logits: 64-bit keys, more registers
  if (HasBias) return !kTsBiasPrefilter ? 1 : V <= 12 ? 5 : V == 16 ? 4 : 1;
  return V == 16 ? 5 : V == 12 ? 6 : V <= 8 ? 8 : 1;
}

// Small: the form for small batches of whole warps without bias (one token per group, a few
// per SM: launch_warp_shape): G is 1 at compile time, the rounds compute the weights and store
// the token (ts_weighted_rounds), and no blocks-per-SM bound caps its registers (the large
// batches' bounds are for full devices; a small batch runs about one warp per sub-partition).
template <class Policy, int Dtype, int W, int V, bool HasBias, bool Small = false>
__global__ void __launch_bounds__(kWarpBlock, (Small ? 1 : ts_warp_min_blocks<Dtype, W, V, HasBias>()))
    ts_warp_kernel(const ts_kernel_args a) {
  // The group's first token, as the loop below numbers it; the Small form asks by loads, which the
  // L2 does not drop (ts_prefetch_row_l2). Not with a bias: there the hint cost the fp16 32 x 12
  // kernel registers (ptxas spilled 20-24 bytes). Not for fp32 logits: the hint's code, never run
  // there, made the full grids slower (H200, T=65536 E256 k=8 48.3 -> 52.8 us).
  ts_prefetch_first_row<typename ts_input<Dtype>::Raw, W, !HasBias && Dtype != TS_DTYPE_F32, Small>(
      a, Small ? 1 : a.tokens_per_group);
  ts_await_prior_grid(a.early_dependents);
  using Raw = typename ts_input<Dtype>::Raw;
  using K = ts_keys<Dtype, HasBias>;
  using Key = typename K::Key;
  constexpr bool kPairs = sizeof(Raw) == 2 && !HasBias;  // 16-bit keys built two at a time
  // The Small form builds its 16-bit keys with the split family's eight-operation form
  // (ts_split_ord16x2: the same order as ts_ord16x2's twelve), and KS reads them back. H100, graph
  // replay, bf16, the benchmark's small-batch section, two rounds each: E512 k8 T=256 1.600 ->
  // 1.587 us, T=16-64 0.014-0.015 less, every Small entry 0.005-0.017 less (BENCHMARKS.md 46).
  constexpr bool kSplitOrds = Small && kPairs;
  using KS = std::conditional_t<kSplitOrds, ts_small_keys16<Dtype>, K>;
  // Groups per block: kWarpBlock / W for the large batches (the shared layout below is sized
  // for kWarpBlock threads), fewer for small batches, whose launches spread over more SMs.
  const int groups_per_block = static_cast<int>(blockDim.x) / W;
  // Loads: 16-byte vectors, or 8-byte ones for lane slices that are not whole 16-byte vectors
  // (16-bit logits, V = 4 or 12: the whole-warp shapes for E <= 128 and E <= 384).
  constexpr int kVectorBytes = (V * sizeof(Raw)) % 16 == 0 ? 16 : 8;
  constexpr int kPerVector = kVectorBytes / static_cast<int>(sizeof(Raw));
  // Small batches of whole-warp groups unroll the k = 8 rounds (ts_rounds; H200, graph
  // replay, bf16 k=8: E256-512 0.06 us faster at T = 1..256), except in the bias kernels held
  // to several blocks per SM, where the fp16 ones then spilled. Narrower groups merge by
  // butterfly at k = 8 and measured 0.02 us slower with the unrolled code merely present.
  constexpr bool kUnrollRounds = W == 32 && !(HasBias && ts_warp_min_blocks<Dtype, W, V, HasBias>() > 1);
  static_assert(V % kPerVector == 0, "a lane's slice is whole 8- or 16-byte vectors");
  static_assert(W <= TS_WAVE_SIZE_MAX, "a group fits in one wavefront");

  const int lane = threadIdx.x & (W - 1);
  const int k = a.k;
  const int base = lane * V;
  const int lane_limit = a.experts - base;  // this lane's slots j < limit hold experts
  const typename Policy::template Group<W> group(static_cast<int>(threadIdx.x % TS_WAVE));
  // A group routes G = tokens_per_group tokens before one shared epilogue: lane g*kp + r keeps
  // rank r of the group's g-th token (kp = k rounded up to a power of two, G = W / kp).
  const int G = Small ? 1 : a.tokens_per_group;  // a power of two
  // The Small form's rounds compute the weights and the rank-order sum and store the token (k = 1,
  // 2, 4, 6, 8; other k keep the sorted rounds and the shared epilogue: ts_select_small_k).
  constexpr bool kWeighted = Small && W == 32 && !HasBias;
  static_assert(!Small || kWeighted, "the Small form is for whole warps without bias");
  const int g_shift = __ffs(G) - 1;
  const int kp = W >> g_shift;
  const int kp_shift = __ffs(kp) - 1;

  // Whole-warp groups of the verified fast path (G > 1) or of the bias prefilter keep each
  // lane's winner in dynamic shared memory (slot = thread; ts_warp_shared_bytes), written by the
  // rounds; other launches have none (a small batch's launch stays free of it) and keep the
  // winner in `mine`.
  constexpr bool kWonInShared = ts_warp_won_in_shared<Policy, W>();
  // Kernels whose winners' weights come from shared memory (when won_shared, as `won`).
  constexpr bool kPrefilterWeights = HasBias && kTsBiasPrefilter && kWonInShared;
  // Winners in shared memory: groups of several tokens, and with a bias every batch, so that
  // small ones take the prefilter too instead of each lane's V exact sigmoids (H200, graph
  // replay, bf16 k=8, interleaved: E256 T=1 3.19 -> 3.09 us, T=256 4.33 -> 3.80; E384 T=1 3.89
  // -> 3.25; E512 T=1 4.55 -> 2.89, T=256 6.48 -> 4.82). Except a single token of 32 x 4,
  // where the lanes' four sigmoids are the shorter chain (E128 T=1 2.60 vs 2.80 us; T=64
  // 3.21 -> 2.97).
  const bool won_shared = kWonInShared && (G > 1 || (kPrefilterWeights && (V >= 8 || a.tokens > 1)));
  Key* const won = reinterpret_cast<Key*>(ts_warp_shared) + (threadIdx.x - lane);
  // With a bias, the prefilter's candidate scratch of this warp and the block's copy of the
  // bias (ts_warp_shared_bytes): the per-token bias reads then never miss (streamed logits
  // evict it from L1) and take V / 4 vector loads.
  const int warp_in_block = static_cast<int>(threadIdx.x) / 32;
  [[maybe_unused]] uint64_t* const cand_key = ts_warp_shared + kWarpBlock + warp_in_block * 32;
  constexpr int kIndexRegions = ts_prefilter_pairs(V) ? 2 : 1;
  [[maybe_unused]] uint32_t* const cand_index =
      reinterpret_cast<uint32_t*>(ts_warp_shared + 2 * kWarpBlock) + warp_in_block * 32 * kIndexRegions;
  // The winners' weights (slot = thread, as `won`): the prefilter computes each winner's exact
  // sigmoid anyway, so the epilogue takes it from here instead of loading the logit again.
  [[maybe_unused]] float* const won_weight =
      reinterpret_cast<float*>(ts_warp_shared + 2 * kWarpBlock + kWarpBlock * kIndexRegions / 2) +
      (threadIdx.x - lane);
  [[maybe_unused]] float* const shared_bias =
      reinterpret_cast<float*>(ts_warp_shared + 2 * kWarpBlock + kWarpBlock * kIndexRegions / 2 + kWarpBlock / 2);
  if constexpr (HasBias && kTsBiasPrefilter && kWonInShared) {
    if (won_shared) {  // uniform: the launch allocated the copy
      for (int e = static_cast<int>(threadIdx.x); e < W * V; e += static_cast<int>(blockDim.x))
        shared_bias[e] = e < a.experts ? a.bias[e] : 0.0f;
      __syncthreads();
    }
  }
  for (int64_t first = (static_cast<int64_t>(blockIdx.x) * groups_per_block + threadIdx.x / W) * G; first < a.tokens;
       first += static_cast<int64_t>(gridDim.x) * groups_per_block * G) {
    Key mine = 0;
    bool finished = false;  // uniform: the Small form's rounds stored the token (ts_weighted_rounds)
    // Bias prefilter: a token with at most 16 candidates waits (its indices in one of the two
    // index regions) for the next such token, and the two finish together, a half-warp each.
    // One word (registers are the limit here): candidate count (bits 0-4, 0: none waiting),
    // index region (bit 5), the token's g (bits 8-15); its row pointer is recomputed.
    [[maybe_unused]] uint32_t pending = 0;
    [[maybe_unused]] const auto pending_row = [&](uint32_t p) {
      return static_cast<const Raw*>(a.logits) + (first + static_cast<int64_t>(p >> 8)) * a.row_stride;
    };
    // The full path's winner into this lane's shared slot; with the prefilter's launches its
    // weight is marked missing (-1: weights are never negative), and the epilogue loads the
    // logit for it (computing it here kept more registers live: fp16 spilled at V = 8).
    const auto keep_winner = [&]() {
      won[lane] = mine;
      if constexpr (kPrefilterWeights) won_weight[lane] = -1.0f;
    };
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
          if constexpr (kVectorBytes == 16) {
            uint4 v = make_uint4(0u, 0u, 0u, 0u);
            if (c * kPerVector < limit) v = *reinterpret_cast<const uint4*>(row + base + c * kPerVector);
            words[4 * c] = v.x;
            words[4 * c + 1] = v.y;
            words[4 * c + 2] = v.z;
            words[4 * c + 3] = v.w;
          } else {
            uint2 v = make_uint2(0u, 0u);
            if (c * kPerVector < limit) v = *reinterpret_cast<const uint2*>(row + base + c * kPerVector);
            words[2 * c] = v.x;
            words[2 * c + 1] = v.y;
          }
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
      // skip that masking. Exact keys give every logit its true key; the fast path's 16-bit
      // keys (ts_ord16x2_positive) rank positive values exactly and are cheaper.
      Key keys[V];
      bool exact_keys_built = false;
      const int slot = g * kp;
      [[maybe_unused]] const int rel = lane - slot;  // rank this lane keeps for the current token, if 0 <= rel < k
      // The Small form's end of a token, right after its rounds (ts_weighted_rounds): lane rel < k
      // stores rank rel. k = 1 skips the division: w / w is exactly 1 for every weight but 0.
      [[maybe_unused]] const auto finish_small = [&](Key winner, float w, float sum, bool alone) {
        if (static_cast<unsigned>(rel) < static_cast<unsigned>(k)) {
          const int64_t o = token * k + rel;
          a.weights[o] = alone ? ts_final_weight_alone(w, a.renormalize != 0, a.scale)
                               : ts_final_weight(w, sum, a.renormalize != 0, a.scale);
          a.indices[o] = static_cast<int32_t>(ts_key_index(static_cast<uint32_t>(winner)));
        }
      };
      if constexpr (Policy::kGroupSum && W == 32) {
        // Only for whole warps (narrower groups fall back too often: few lanes, many winners per
        // lane). Without bias only when the batch fills the GPU several times over (G > 1): a
        // fallback runs both paths, which costs latency that small batches feel (H200: E=64 k=8
        // T=256 2.55 -> 3.27 us with it on).
        if constexpr (HasBias && kTsBiasPrefilter) {
          // With a bias: exact sigmoids only for the candidates a cheap score leaves
          // (bias_prefilter.hpp), at every batch size (won_shared); rows it does not cover take
          // the full path below.
          if (k <= 8 && won_shared) {  // uniform
            const uint32_t region = pending != 0u ? ((pending >> 5) & 1u) ^ 1u : 0u;
            const uint32_t n =
                ts_prefilter_candidates<Dtype>(group, raw, base, limit, shared_bias, k, cand_index + 32 * region);
            constexpr bool kPairTokens = ts_prefilter_pairs(V);
            if (kPairTokens && n <= 16u && pending != 0u) {  // finish with the waiting token, a half-warp each
              const bool upper = lane >= 16;
              const int pending_slot = static_cast<int>(pending >> 8) * kp;
              const int rank_slot = upper ? slot : pending_slot;
              ts_prefilter_rank<Dtype>(upper ? row : pending_row(pending),
                                       cand_index + 32 * (upper ? region : region ^ 1u), upper ? n : pending & 31u,
                                       static_cast<uint32_t>(lane & 15), shared_bias, k, cand_key + (lane & 16),
                                       won + rank_slot, won_weight + rank_slot);
              pending = 0;
              continue;
            }
            if (kPairTokens && n <= 16u) {  // wait for a partner
              pending = n | (region << 5) | (static_cast<uint32_t>(g) << 8);
              continue;
            }
            if (n <= 32u) {  // the whole warp for this token
              ts_prefilter_rank<Dtype>(row, cand_index + 32 * region, n, static_cast<uint32_t>(lane), shared_bias, k,
                                       cand_key, won + slot, won_weight + slot);
              continue;
            }
          }
        } else if (k <= 8 && G > 1) {  // uniform
          // Fast path: each lane offers only its best two keys (a running top-2: three min/max
          // per key instead of a sorting network), and the rounds pop from that short list. It
          // is exact when the number of keys >= the k-th winner is exactly k (every key that
          // clears the last winner was taken); otherwise, when a lane held more winners than
          // its list (about 5% of random rows at E=256, k=8), the full path below redoes the
          // token. Winners are distinct and decreasing, so a verified set is also in order.
          // 16-bit inputs rank on the cheap keys here; they are exact for this selection when
          // the k-th winner is positive (> +0) and the top one is not a NaN.
          if constexpr (kPairs) {
            uint32_t ords[V / 2];
#pragma unroll
            for (int i = 0; i < V / 2; ++i) ords[i] = ts_ord16x2_positive(words[i]);
            ts_lane_pair_keys<V>(ords, base, keys);
          } else {
            ts_exact_keys<Dtype, HasBias>(raw, keys, base, limit, a.bias);
            exact_keys_built = true;
          }
          if (limit < V) {
#pragma unroll
            for (int j = 0; j < V; ++j) keys[j] = j < limit ? keys[j] : Key(0);
          }
          // Two keys at a time: the pair's max and min, then second = max(second, min(first,
          // hi), lo), which sm_90 does in one three-input min/max (2.5 ALU ops per key, not 3).
          Key first_key = 0, second_key = 0;
#pragma unroll
          for (int j = 0; j < V; j += 2) {
            const Key hi = ts_umax(keys[j], keys[j + 1]);
            const Key lo = keys[j] < keys[j + 1] ? keys[j] : keys[j + 1];
            second_key = ts_umax(ts_umax(second_key, first_key < hi ? first_key : hi), lo);
            first_key = ts_umax(first_key, hi);
          }
          Key top = 0, winner = 0;
          if (k == 8) ts_fast_rounds<8>(group, first_key, second_key, k, won + slot, top, winner);
          else ts_fast_rounds<0>(group, first_key, second_key, k, won + slot, top, winner);
          bool trusted = winner != 0;
          if constexpr (kPairs) {
            trusted = static_cast<uint32_t>(winner >> 16) > 0x8000u &&
                      static_cast<uint32_t>(top >> 16) <= (0x8000u | ts_keys16<Dtype>::kInfBits);
          }
          if (trusted) {  // uniform
            // Only a lane whose second key was taken too ("deep") can hide a winner: in any
            // other lane every key >= the k-th winner was its head in some round, so it was
            // taken (keys are distinct). A deep lane's count is 2 unless its third key clears
            // the winner. Without a deep lane (about 45% of random rows for E = 128-512, k = 8)
            // the selection is exact and the V-key count is skipped (H200, T=65536 k=8 bf16:
            // E384 31.7 -> 31.1 us, E512 39.1 -> 38.4; none at E = 128, 1% slower for fp32).
            if constexpr (kPairs && V >= 8) {  // measured: no gain at V = 4 or with 64-bit keys
              const bool deep = second_key >= winner;
              if (group.sum(deep ? 1u : 0u) == 0u) continue;
            }
            uint32_t at_least_winner = 0;
#pragma unroll
            for (int j = 0; j < V; ++j) at_least_winner += keys[j] >= winner ? 1u : 0u;
            if (group.sum(at_least_winner) == static_cast<uint32_t>(k)) continue;
          }
        }
      }
      // The fast path stored this token's winners; order those stores before the full path
      // stores its own into the same slots.
      if (won_shared) TS_WAVE_SYNC();
      if (!exact_keys_built) {
        if constexpr (kPairs) {
          uint32_t ords[V / 2];
#pragma unroll
          for (int i = 0; i < V / 2; ++i)
            ords[i] = kSplitOrds ? ts_split_ord16x2<Dtype>(words[i]) : ts_ord16x2(words[i], ts_keys16<Dtype>::kInfBits);
          ts_lane_pair_keys<V>(ords, base, keys);
        } else {
          ts_exact_keys<Dtype, HasBias>(raw, keys, base, limit, a.bias);
        }
        if (limit < V) {
#pragma unroll
          for (int j = 0; j < V; ++j) keys[j] = j < limit ? keys[j] : Key(0);
        }
      }
      if (k <= 8) {  // uniform: each lane needs only its best 8
        if constexpr (V > 8 && V % 8 == 0) {
          Key top[8];
          ts_best8_desc(keys, top);
          finished = ts_select_small_k<Policy, W, kUnrollRounds, KS, kWeighted>(
              group, top, G, k, lane, slot, rel, mine, finish_small);
        } else if constexpr (V > 8) {  // V = 12: padded to 16 with empty keys
          Key padded[16], top[8];
#pragma unroll
          for (int j = 0; j < 16; ++j) padded[j] = j < V ? keys[j] : Key(0);
          ts_best8_desc(padded, top);
          finished = ts_select_small_k<Policy, W, kUnrollRounds, KS, kWeighted>(
              group, top, G, k, lane, slot, rel, mine, finish_small);
        } else if constexpr (V == 8) {
          ts_sort_desc<V>(keys);
          finished = ts_select_small_k<Policy, W, kUnrollRounds, KS, kWeighted>(
              group, keys, G, k, lane, slot, rel, mine, finish_small);
        } else {  // V = 4
          ts_sort_desc<V>(keys);
          Key top[8];
#pragma unroll
          for (int j = 0; j < 8; ++j) top[j] = j < V ? keys[j] : Key(0);
          finished = ts_select_small_k<Policy, W, kUnrollRounds, KS, kWeighted>(
              group, top, G, k, lane, slot, rel, mine, finish_small);
        }
        if (won_shared && static_cast<unsigned>(rel) < static_cast<unsigned>(k)) keep_winner();
        continue;
      }
      if constexpr ((V & (V - 1)) == 0) {  // k > 8: every key sorted (V = 12 runs only with k <= 8)
        ts_sort_desc<V>(keys);
        ts_rounds(group, keys, k, lane, slot, mine, false);
      }
      if (won_shared && static_cast<unsigned>(rel) < static_cast<unsigned>(k)) keep_winner();
    }
    if constexpr (kWeighted) {
      if (finished) continue;  // uniform: stored by finish_small
    }
    if constexpr (HasBias && kTsBiasPrefilter && ts_prefilter_pairs(V)) {
      if (pending != 0u) {  // uniform: a token still waiting for a partner finishes alone
        const int pending_slot = static_cast<int>(pending >> 8) * kp;
        ts_prefilter_rank<Dtype>(pending_row(pending), cand_index + 32 * ((pending >> 5) & 1u), pending & 31u,
                                 static_cast<uint32_t>(lane), shared_bias, k, cand_key, won + pending_slot,
                                 won_weight + pending_slot);
      }
    }
    // Lane g*kp + r < k of the epilogue holds rank r of token first + g.
    const int rank = lane & (kp - 1);
    const int64_t token = first + (lane >> kp_shift);
    const bool holds = rank < k && token < a.tokens;
    // With won_shared (the fast path's batches, the bias prefilter's) winners are in shared
    // memory; other small batches keep theirs in `mine` (no store / sync / load on their latency).
    [[maybe_unused]] float won_w = -1.0f;
    if (won_shared) {
      TS_WAVE_SYNC();  // the winners stored by other lanes are visible
      mine = won[lane];
      if constexpr (kPrefilterWeights) {
        if (holds) won_w = won_weight[lane];  // only slots that hold a winner were written
      }
      TS_WAVE_SYNC();  // and read by every lane before the next pass stores again
    }

    // Shared epilogue: lane g*kp + r < k holds rank r of token first + g (above). Without bias its
    // weight is the sigmoid of the value inside the key; with bias the key holds score + bias,
    // so the weight is the one stored with the winner (prefilter launches) or that one logit
    // is read again (just loaded: a cache hit). The rank-order sum is read
    // lane by lane within the token's segment so every backend adds in the same order.
    const uint32_t index = ts_key_index(static_cast<uint32_t>(mine));
    float w = 0.0f;
    if (holds) {
      if (kPrefilterWeights && won_shared && won_w >= 0.0f) {
        w = won_w;
      } else if (HasBias) {
        const Raw* row = static_cast<const Raw*>(a.logits) + token * a.row_stride;
        w = ts_weight_of_logit(ts_input<Dtype>::to_float(row[index]));
      } else {
        w = ts_weight_of_logit(KS::value_of(mine));
      }
    }
    float sum = 0.0f;
    if (a.renormalize) {
      const auto weight_of_rank = [&](int r) {
        if constexpr (Policy::kSubgroupRead) return group.read_sub(w, r, kp);
        else return group.read(w, r);
      };
      if (k <= 8) {  // uniform
        // All eight reads first, then the adds in rank order: the reads do not wait for each
        // other, so a small batch pays one cross-lane latency instead of k (reads past k, or
        // past the segment, wrap around inside it and are not added).
        float part[8];
#pragma unroll
        for (int r = 0; r < 8; ++r) part[r] = weight_of_rank(r < W ? r : 0);
#pragma unroll
        for (int r = 0; r < 8; ++r) sum = r < k ? TS_ADD(sum, part[r]) : sum;
      } else {
        for (int r = 0; r < k; ++r) sum = TS_ADD(sum, weight_of_rank(r));
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
