// tests/gpu_sanitize.ts: a representative subset of the GPU suite as a plain script, small
// enough to run under compute-sanitizer (memcheck, racecheck, initcheck, synccheck):
//   compute-sanitizer --tool memcheck bun tests/gpu_sanitize.ts
// Exits non-zero on any mismatch against the host backend.
import { type BackendChoice, createRouter, DeviceBuffer, type Dtype, deviceCount, synchronize } from "../mod.ts";
import { firstDifference, makeBias, makeLogits } from "./gpu_cases.ts";

if (deviceCount() === 0) {
  console.error("gpu_sanitize: no GPU");
  process.exit(2);
}
const cases: [number, number, Dtype, boolean, number][] = [
  // experts, k, dtype, bias, stride pad
  [3, 2, "f32", false, 0],
  [64, 8, "bf16", false, 0],
  [72, 6, "f16", true, 3],
  [256, 8, "bf16", true, 0],
  [384, 8, "f32", false, 1],
  [1024, 32, "bf16", true, 0],
  [4096, 16, "f16", false, 0],
];
let failures = 0;
let checked = 0;
for (const [experts, k, dtype, withBias, pad] of cases) {
  const tokens = 37;
  const stride = experts + pad;
  const logits = makeLogits(experts + k, tokens, experts, stride, dtype);
  const bias = withBias ? makeBias(experts, experts) : undefined;
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
