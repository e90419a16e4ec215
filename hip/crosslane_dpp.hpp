// crosslane_dpp.hpp: the DPP cross-lane policy for AMD gfx9 (wave64 GCN/CDNA: gfx908, gfx90a, gfx940-942,
// gfx950; the build compiles it for the gfx9 targets its hipcc knows).
// Same interface as ShflPolicy (crosslane_shfl.hpp), for one group = the whole wavefront:
//   max(u32) / max(u64): the wavefront's unsigned maximum, returned to every lane (in an SGPR);
//   read(v, src):        lane src's value (src uniform), one v_readlane;
//   kSubgroupRead:       false (no read_sub; see below).
// The maximum is the step table of dpp_steps.h: six DPP row operations, each fused by the
// compiler into a v_max_u32_dpp, then v_readlane of the result lane. No LDS, no ds_bpermute /
// ds_swizzle, no waitcnt. tests/dpp_model.ts runs the same table on a CPU model of the DPP
// lane semantics; tools/check_gfx9_isa.ts checks that the gfx9 kernels' ISA holds these steps.
//
// u64 keys (fp32 value << 32 | index field) take two 32-bit passes, as the redux path of
// ShflPolicy does: the max of the high words, then the max of the low words of the lanes whose
// high word is that max (other lanes offer 0, the identity). That is the unsigned 64-bit max,
// for about half the instructions of a 64-bit compare/select per step (DPP moves 32 bits and
// cannot attach to a 64-bit compare).
//
// Preconditions, met by ts_warp_kernel<DppPolicy, Dtype, 64, V, HasBias>: the group is the whole
// wave64 (W == 64) and every lane of it is active when max() is called (256-thread blocks, and
// the token loop exits per wavefront), so no DPP source lane is disabled by EXEC.
#ifndef TOPK_SIGMOID_CROSSLANE_DPP_HPP
#define TOPK_SIGMOID_CROSSLANE_DPP_HPP

#include <stdint.h>

#include "dpp_steps.h"
#include "gpu_compat.h"

namespace ts_dpp {

// One table step: v = max(v, update_dpp(old, v, ...)). update_dpp (not mov_dpp) because lanes
// outside row_mask / bank_mask, and out-of-range lanes without bound_ctrl, get `old`, and
// mov_dpp leaves `old` undefined.
template <int Ctrl, int RowMask, int BankMask, bool BoundCtrl>
__device__ __forceinline__ uint32_t max_step(uint32_t v) {
  static_assert(Ctrl >= 0 && Ctrl <= 0x143 && Ctrl != 0x100, "a gfx9 DPP_CTRL");
  static_assert(RowMask >= 1 && RowMask <= 0xf && BankMask >= 1 && BankMask <= 0xf, "4-bit masks");
  const uint32_t o = static_cast<uint32_t>(
      __builtin_amdgcn_update_dpp(TS_DPP_OLD, static_cast<int>(v), Ctrl, RowMask, BankMask, BoundCtrl));
  return o > v ? o : v;
}

// The wavefront maximum of v, wave-uniform.
__device__ __forceinline__ uint32_t wave_max(uint32_t v) {
#define TS_DPP_STEP(ctrl, row_mask, bank_mask, bound_ctrl) v = max_step<ctrl, row_mask, bank_mask, bound_ctrl != 0>(v);
  TS_DPP_WAVE_MAX_STEPS
#undef TS_DPP_STEP
  return static_cast<uint32_t>(__builtin_amdgcn_readlane(static_cast<int>(v), TS_DPP_RESULT_LANE));
}

}  // namespace ts_dpp

struct DppPolicy {
  // No read_sub: the sub-segment read behind several tokens per group (kernel_warp.hpp) would be
  // a per-lane permute (ds_bpermute, or a v_readlane per segment); the gfx9 kernel routes one
  // token per wavefront pass and reads the k weights with v_readlane.
  static constexpr bool kSubgroupRead = false;
  // No group sum either (it would be a second DPP reduction table): the gfx9 kernel always takes
  // the full-list path, which needs no verification.
  static constexpr bool kGroupSum = false;
  static constexpr bool kXorRead = false;  // no butterfly merge: the k-round path
  template <int W>
  struct Group {
    static_assert(W == 64, "the DPP policy reduces over a whole wave64 wavefront");
    __device__ explicit Group(int) {}
#if defined(__HIP_DEVICE_COMPILE__) && !defined(__GFX9__)
    // Device passes for other targets (TOPK_SIGMOID_HIP_ARCH may name wave32 RDNA parts, which
    // lack row_bcast): dispatch never launches the gfx9 kernel there, so it only has to compile.
    __device__ uint32_t max(uint32_t v) const {
      __builtin_trap();
      return v;
    }
    __device__ uint64_t max(uint64_t v) const {
      __builtin_trap();
      return v;
    }
    __device__ float read(float v, int) const {
      __builtin_trap();
      return v;
    }
#else
    __device__ uint32_t max(uint32_t v) const { return ts_dpp::wave_max(v); }
    __device__ uint64_t max(uint64_t v) const {
      const uint32_t hi = ts_dpp::wave_max(static_cast<uint32_t>(v >> 32));
      const uint32_t lo = ts_dpp::wave_max(static_cast<uint32_t>(v >> 32) == hi ? static_cast<uint32_t>(v) : 0u);
      return (static_cast<uint64_t>(hi) << 32) | lo;
    }
    __device__ float read(float v, int src) const {
      return __builtin_bit_cast(float, __builtin_amdgcn_readlane(__builtin_bit_cast(int, v), src));
    }
#endif
  };
};

#endif  // TOPK_SIGMOID_CROSSLANE_DPP_HPP
