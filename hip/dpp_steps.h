// dpp_steps.h: THE step table of the gfx9 wave64 arg-max (crosslane_dpp.hpp). The device code
// expands this list, tests/dpp_model.ts parses this very file and runs it on a CPU model of the
// DPP lane semantics, and tools/check_gfx9_isa.ts requires these exact modifiers in the ISA of
// the gfx9 kernels, so the three cannot drift apart. Keep it plain: one
// TS_DPP_STEP(dpp_ctrl, row_mask, bank_mask, bound_ctrl) per line, integer literals only
// (dpp_ctrl is the hardware DPP_CTRL encoding, commented with its assembler spelling).
//
// Each step is  v = max_u32(v, update_dpp(TS_DPP_OLD, v, dpp_ctrl, row_mask, bank_mask, bound_ctrl)).
// Keys are packed so that an unsigned max is the routing order and 0 is the "empty" key
// (semantics.h), so 0 is the identity: whatever a step does not deliver (a lane outside
// row_mask / bank_mask keeps TS_DPP_OLD; an out-of-range source gives 0 with bound_ctrl, or
// TS_DPP_OLD without) leaves v unchanged.
//
//   quad_perm:[1,0,3,2], quad_perm:[2,3,0,1]  every lane holds the max of its quad;
//   row_shr:4, row_shr:8                      lane 15 of each row holds the row max (a lane
//                                             (n & 15) < shift has no source: 0);
//   row_bcast:15, row_mask 0xa                rows 1 and 3 take lane 15 / 47: lane 31 holds
//                                             max(rows 0-1), lane 63 max(rows 2-3);
//   row_bcast:31, row_mask 0xc                rows 2 and 3 take lane 31: lane 63 holds the
//                                             max of the wavefront;
// then v_readlane TS_DPP_RESULT_LANE makes the result wave-uniform. The row masks keep the
// rows whose broadcast source the ISA leaves undefined (row 0 for row_bcast:15, rows 0-1 for
// row_bcast:31) from being written at all.
#ifndef TOPK_SIGMOID_DPP_STEPS_H
#define TOPK_SIGMOID_DPP_STEPS_H

#define TS_DPP_WAVE_MAX_STEPS                          \
  TS_DPP_STEP(0x0b1, 0xf, 0xf, 1) /* quad_perm:[1,0,3,2] */ \
  TS_DPP_STEP(0x04e, 0xf, 0xf, 1) /* quad_perm:[2,3,0,1] */ \
  TS_DPP_STEP(0x114, 0xf, 0xf, 1) /* row_shr:4 */           \
  TS_DPP_STEP(0x118, 0xf, 0xf, 1) /* row_shr:8 */           \
  TS_DPP_STEP(0x142, 0xa, 0xf, 0) /* row_bcast:15 */        \
  TS_DPP_STEP(0x143, 0xc, 0xf, 0) /* row_bcast:31 */

// The `old` operand of every step: the identity of the unsigned max (the empty key).
#define TS_DPP_OLD 0
// The lane that holds the wavefront maximum after the last step (read with v_readlane).
#define TS_DPP_RESULT_LANE 63

#endif  // TOPK_SIGMOID_DPP_STEPS_H
