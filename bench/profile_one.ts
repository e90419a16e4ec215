// bench/profile_one.ts: runs one configuration a few times, for profilers:
//   ncu --clock-control none -k regex:ts_warp_kernel bun bench/profile_one.ts 256 8 65536 bf16 nobias warp [mixed|normal]
// Inputs: "mixed" (default) is the benchmark's rows (random plus ties, NaN, infinities, saturating
// and all-NaN rows); "normal" is random normal rows only.
import { type BackendChoice, createRouter, DeviceBuffer, type Dtype, synchronize } from "../mod.ts";
import { makeBias, makeLogits, makeNormalLogits } from "../tests/gpu_cases.ts";

const [e = "256", k = "8", t = "65536", dtype = "bf16", bias = "nobias", backend = "warp", inputs = "mixed"] =
  process.argv.slice(2);
const experts = Number(e);
const topk = Number(k);
const tokens = Number(t);
const logits =
  inputs === "normal"
    ? makeNormalLogits(3, tokens, experts, dtype as Dtype)
    : makeLogits(3, tokens, experts, experts, dtype as Dtype);
using router = createRouter({
  experts,
  topk,
  dtype: dtype as Dtype,
  bias: bias === "bias" ? makeBias(3, experts) : undefined,
  renormalize: true,
  backend: backend as BackendChoice,
});
using dl = DeviceBuffer.from(logits);
using dw = DeviceBuffer.alloc(tokens * topk * 4);
using di = DeviceBuffer.alloc(tokens * topk * 4);
for (let i = 0; i < 3; i++) router.routeDevice(dl, tokens, { weights: dw, indices: di });
synchronize();
console.log(`profile_one: E=${experts} k=${topk} T=${tokens} ${dtype} ${bias} ${inputs} ${router.backend}: done`);
