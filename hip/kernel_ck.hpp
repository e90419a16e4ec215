// kernel_ck.hpp: the generic fallback ("ck" after the Composable-Kernel path it replaces):
// any E up to TOPK_SIGMOID_MAX_EXPERTS, any valid k, one launch, no workspace. One block per
// token: every thread keeps a sorted top-k of its strided share of the row, then k rounds of
// block arg-max over the threads' list heads (wavefront max + shared memory) merge them.
#ifndef TOPK_SIGMOID_KERNEL_CK_HPP
#define TOPK_SIGMOID_KERNEL_CK_HPP

#include "kernel_warp.hpp"

constexpr int kCkBlock = 256;

template <class Policy, int Dtype, bool HasBias>
__global__ void __launch_bounds__(kCkBlock) ts_ck_kernel(const ts_kernel_args a) {
  ts_await_prior_grid(a.early_dependents);
  using Raw = typename ts_input<Dtype>::Raw;
  using K = ts_keys<Dtype, HasBias>;
  using Key = typename K::Key;
  constexpr int kWaves = kCkBlock / TS_WAVE;
  __shared__ Key wave_best[kWaves];
  __shared__ Key winners[TOPK_SIGMOID_MAX_K];
  __shared__ float scores[TOPK_SIGMOID_MAX_K];

  const int tid = threadIdx.x;
  const int lane = tid % TS_WAVE;
  const int wave = tid / TS_WAVE;
  const typename Policy::template Group<TS_WAVE> group(lane);
  const int k = a.k;

  for (int64_t token = blockIdx.x; token < a.tokens; token += gridDim.x) {
    const Raw* row = static_cast<const Raw*>(a.logits) + token * a.row_stride;
    Key list[TOPK_SIGMOID_MAX_K];  // this thread's best k, descending
    for (int i = 0; i < k; ++i) list[i] = 0;
    for (int e = tid; e < a.experts; e += kCkBlock) {
      ts_offer_desc(list, k, K::make(row[e], HasBias ? a.bias[e] : 0.0f, static_cast<uint32_t>(e)));
    }

    int head = 0;
    for (int r = 0; r < k; ++r) {
      const Key mine = head < k ? list[head] : Key(0);
      const Key wave_max = group.max(mine);
      if (lane == 0) wave_best[wave] = wave_max;
      __syncthreads();
      Key winner = 0;
#pragma unroll
      for (int i = 0; i < kWaves; ++i) winner = ts_umax(winner, wave_best[i]);
      if (mine == winner && mine != 0) ++head;  // exactly one owner
      if (tid == 0) winners[r] = winner;
      __syncthreads();
    }

    if (tid < k) {
      const uint32_t index = ts_key_index(static_cast<uint32_t>(winners[tid]));
      scores[tid] = ts_weight_of_logit(ts_input<Dtype>::to_float(row[index]));
    }
    __syncthreads();
    if (tid < k) {
      float sum = 0.0f;
      if (a.renormalize) {
        for (int r = 0; r < k; ++r) sum = TS_ADD(sum, scores[r]);
      }
      const int64_t o = token * k + tid;
      a.weights[o] = ts_final_weight(scores[tid], sum, a.renormalize != 0, a.scale);
      a.indices[o] = static_cast<int32_t>(ts_key_index(static_cast<uint32_t>(winners[tid])));
    }
    __syncthreads();  // winners / scores are reused by the next token
  }
}

#endif  // TOPK_SIGMOID_KERNEL_CK_HPP
