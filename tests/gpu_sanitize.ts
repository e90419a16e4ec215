// tests/gpu_sanitize.ts: a representative subset of the GPU suite as a plain script, small
// enough to run under compute-sanitizer (memcheck, racecheck, initcheck, synccheck):
//   compute-sanitizer --tool memcheck bun tests/gpu_sanitize.ts
// Exits non-zero on any mismatch against the host backend.
import {
  type BackendChoice,
  createRouter,
  DeviceBuffer,
  type Dtype,
  deviceCount,
  deviceInfo,
  synchronize,
} from "../mod.ts";
import { firstDifference, makeBias, makeBiasNearTies, makeLogits } from "./gpu_cases.ts";

if (deviceCount() === 0) {
  console.error("gpu_sanitize: no GPU");
  process.exit(2);
}
// Large enough that whole-warp groups route several tokens each (the verified fast path and the
// bias prefilter, with winners and candidates in shared memory: racecheck's business).
const sms = deviceInfo().multiprocessors;
const large = 4 * 64 * sms + 37;
// Below the vector select kernel's thresholds (device_backend.hip): the split kernel for
// 16-bit E <= 256 without bias (hip/kernel_split.hpp, both shapes); for E > 256 the vector select
// kernel's 8-lane shapes.
const mid = 30 * sms + 5;
// The thread select kernel's threshold (16-bit E = 65..120 without bias, device_backend.hip).
const huge = 384 * sms + 11;
// The staged thread select kernel's threshold (16-bit E = 128 and 256 without bias,
// device_backend.hip), and a batch beyond what its blocks hold at once.
const staged = 480 * sms + 13;
const stagedBeyond = 600 * sms + 3;
// The warp kernel's Small form at its batch-size limit (kSmallFormTokensPerSm in device_backend.hip).
const small = 8 * sms;
const cases: [number, number, Dtype, boolean | "near-ties", number, number][] = [
  // experts, k, dtype, bias (or near-tie rows and biases), stride pad, tokens
  [3, 2, "f32", false, 0, 37],
  // E <= 8: one lane per token (hip/kernel_lane.hpp): 16-byte loads and stores, scalar ones.
  [8, 8, "bf16", false, 0, large],
  [8, 4, "f32", true, 0, 37],
  [5, 3, "f16", true, 1, 37],
  [64, 8, "bf16", false, 0, 37],
  [72, 6, "f16", true, 3, 37],
  [256, 8, "bf16", true, 0, 37],
  [384, 8, "f32", false, 1, 37],
  [1024, 32, "bf16", true, 0, 37],
  [4096, 16, "f16", false, 0, 37],
  // Without bias, 16-bit, from 384 tokens per SM: the thread select kernel for E = 65..120
  // (hip/kernel_thread_select.hpp; k = 8 with 16-byte stores, scalar stores, padded rows).
  [120, 8, "bf16", false, 0, huge],
  [72, 5, "f16", false, 8, huge],
  // From 480 tokens per SM at E = 128 and 256: the staged thread select kernel
  // (hip/kernel_thread_staged.hpp; cp.async copies into shared memory, mbarriers, both grid forms;
  // at E = 256 a slot reused by the block's last tile, and beyond one wave the vector select kernel).
  [128, 8, "bf16", false, 0, staged],
  [128, 3, "f16", false, 8, stagedBeyond],
  [256, 8, "f16", false, 0, staged],
  [256, 5, "bf16", false, 8, stagedBeyond],
  // Without bias, 16-bit: the vector select kernel for E = 65..512 (hip/kernel_vector_select.hpp,
  // every shape, rows with empty vectors: 4 lanes, and for E > 256 8 lanes at mid-size batches),
  // the split kernel below its thresholds, the whole-warp kernel's verified fast path above 512.
  [256, 8, "bf16", false, 0, large],
  [160, 5, "f16", false, 0, large],
  [96, 4, "f16", false, 0, large],
  [384, 8, "bf16", false, 0, large],
  [448, 7, "f16", false, 8, large],
  [512, 8, "bf16", false, 0, large],
  [320, 6, "f16", false, 0, mid],
  [512, 8, "bf16", false, 8, mid],
  [128, 8, "bf16", false, 16, mid],
  [200, 6, "bf16", false, 0, mid],
  [1024, 8, "bf16", false, 0, large],
  // Small batches in whole warps without bias: the warp kernel's Small form (every unrolled k
  // stores its token right after its rounds), up to its limit of 8 tokens per SM.
  [512, 8, "bf16", false, 0, small],
  [256, 1, "f16", false, 8, 37],
  [1024, 4, "bf16", false, 0, 16],
  [160, 6, "f16", false, 0, 4 * sms + 1],
  [288, 2, "f32", false, 0, 37],
  // With a bias: 16-bit the split bias kernel (hip/kernel_split_bias.hpp; every shape, with
  // near-tie rows its bands and exact recomputations in shared memory), fp32 the prefilter's
  // candidate scratch in shared memory (hip/bias_prefilter.hpp), and below the split bias
  // kernel's threshold the prefilter at E = 128.
  [256, 8, "bf16", true, 0, large],
  [128, 8, "f16", true, 16, large],
  [200, 5, "bf16", true, 0, large],
  [512, 8, "bf16", true, 0, large],
  [384, 3, "f16", true, 8, large],
  [128, 8, "bf16", "near-ties", 0, large],
  [448, 8, "f16", "near-ties", 8, large],
  [128, 6, "bf16", true, 0, mid],
  // From 384 tokens per SM, E <= 384 and k = 8: the split bias kernel's Hint form (its L2 hint
  // before the wait, the next kernel let in at once, the next row asked of the L2 during a token;
  // device_backend.hip, ts_split_bias_hint_pays).
  [128, 8, "bf16", true, 0, huge],
  [120, 8, "f16", "near-ties", 8, huge],
  [200, 8, "bf16", true, 8, huge],
  [384, 8, "f16", "near-ties", 0, huge],
  [384, 3, "f32", true, 0, large],
];
let failures = 0;
let checked = 0;
for (const [experts, k, dtype, withBias, pad, tokens] of cases) {
  const stride = experts + pad;
  const near = withBias === "near-ties" ? makeBiasNearTies(experts + k, tokens, experts, stride, dtype) : undefined;
  const logits = near?.logits ?? makeLogits(experts + k, tokens, experts, stride, dtype);
  const bias = near?.bias ?? (withBias ? makeBias(experts, experts) : undefined);
  const base = { experts, topk: k, dtype, bias, renormalize: true, scale: 2.5, rowStride: stride };
  using host = createRouter({ ...base, backend: "host" });
  const expected = host.route(logits, { tokens });
  const backends: BackendChoice[] = experts <= 1024 ? ["warp", "ck", "auto"] : ["ck", "auto"];
  for (const backend of backends) {
    using router = createRouter({ ...base, backend });
    using dl = DeviceBuffer.from(logits);
    using dw = DeviceBuffer.alloc(tokens * k * 4);
    using di = DeviceBuffer.alloc(tokens * k * 4);
    router.routeDevice(dl, tokens, { weights: dw, indices: di });
    synchronize();
    const diff = firstDifference(k, { weights: dw.toFloat32Array(), indices: di.toInt32Array() }, expected);
    checked++;
    if (diff) {
      failures++;
      console.error(`MISMATCH ${backend} E=${experts} k=${k} ${dtype}: ${diff}`);
    }
  }
}
console.log(`gpu_sanitize: ${checked} backend runs, ${failures} mismatches`);
process.exit(failures === 0 ? 0 : 1);
