// weight_table.hpp: the routed weight of every 16-bit logit, looked up by the orderable half of
// its key, for the NVIDIA kernels without bias that finish a token's ranks after its selection
// (kernel_thread_select.hpp, ts_split_epilogue) and for the winners of the split bias kernel.
//
// Why: a winner's exact weight is ts_sigmoid's polynomial, its powers of two and its division,
// about 20 ALU and 25 FMA-pipe instructions on the chain's last stretch, in kernels whose ALU
// pipe is the busiest (BENCHMARKS.md, What limits). A lookup is one load that the L1 serves: the
// winners' logits of real rows span a few hundred entries.
//
// The table (two dtypes x 65536 words, 512 KB of global memory on each device, loaded with the
// module) is defined in weight_table_data.hpp, which only device_backend.hip includes: its
// initializer is generated at build time by weight_table_gen.cpp from ts_weight_of_logit, the
// host backend's own function, so its words are the host's bits; it also checks that they never
// decrease along ord (so a sorted list's last weight is its least) and fails the build if they
// do. The GPU suite compares every kernel that uses it with the host backend, including batches
// whose winners take every 16-bit value (gpu.test.ts). Programs that include the kernels' headers without the table (the
// exhaustive key checks in tests/) compile as long as they do not instantiate these callers.
#ifndef TOPK_SIGMOID_WEIGHT_TABLE_HPP
#define TOPK_SIGMOID_WEIGHT_TABLE_HPP

#include "gpu_compat.h"
#include "keys.hpp"

// The routed weight (ts_weight_of_logit) of the 16-bit logit (Dtype fp16 or bf16) behind the
// orderable half ord < 65536 of a key built from ts_split_ord16x2: 0 for ord 0 (NaN).
template <int Dtype>
__device__ __forceinline__ float ts_weight_of_ord(uint32_t ord);

#endif  // TOPK_SIGMOID_WEIGHT_TABLE_HPP
