// bench/mid_batches.ts: mid-size batches (T = 2048-32768), where the dispatcher decides between
// one token per group and the large-batch paths (hip/device_backend.hip, tokens_per_group), and
// with a bias also the small ones (T = 1-1024), which take the bias prefilter too.
// Graph replay, device events, median of 15 replays; each replay's calls rotate over enough
// input copies to move at least 128 MiB, so the rows come from HBM, not L2. GPU only.
//   bun bench/mid_batches.ts
import { createRouter, DeviceBuffer, DeviceEvent, type Dtype, deviceCount, deviceInfo, Graph, Stream } from "../mod.ts";
import { makeBias, makeLogits } from "../tests/gpu_cases.ts";

if (deviceCount() === 0) {
  console.error("mid_batches: no GPU");
  process.exit(2);
}

const callsPerGraph = 32;
const replays = 15;
const k = 8;
const dtype: Dtype = "bf16";
const stream = Stream.create();
const start = DeviceEvent.create();
const end = DeviceEvent.create();

function timeConfig(experts: number, tokens: number, withBias: boolean): number {
  const copies = Math.min(callsPerGraph, Math.max(2, Math.ceil((128 << 20) / (tokens * experts * 2))));
  const logits = makeLogits(1, tokens, experts, experts, dtype);
  const inputs = Array.from({ length: copies }, () => DeviceBuffer.from(logits));
  using weights = DeviceBuffer.alloc(tokens * k * 4);
  using indices = DeviceBuffer.alloc(tokens * k * 4);
  using router = createRouter({
    experts,
    topk: k,
    dtype,
    bias: withBias ? makeBias(1, experts) : undefined,
    renormalize: true,
    backend: "warp",
  });
  const graph = Graph.capture(stream, () => {
    for (let c = 0; c < callsPerGraph; c++)
      router.routeDevice(inputs[c % copies] as DeviceBuffer, tokens, { weights, indices }, stream);
  });
  for (let w = 0; w < 3; w++) graph.launch(stream);
  const samples: number[] = [];
  for (let r = 0; r < replays; r++) {
    start.record(stream);
    graph.launch(stream);
    end.record(stream);
    samples.push((end.elapsedSince(start) * 1000) / callsPerGraph);
  }
  graph.dispose();
  for (const input of inputs) input.dispose();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

const midTokens = [2048, 4096, 8192, 16384, 32768];
const smallTokens = [1, 64, 256, 1024];
console.log(`mid-size batches on ${deviceInfo().name}: k=${k} ${dtype}, graph replay, us per call`);
for (const [tokenCounts, biasModes] of [
  [midTokens, [false, true]],
  [smallTokens, [true]],
] as const) {
  console.log(`\n| E | bias | ${tokenCounts.map((t) => `T=${t}`).join(" | ")} |`);
  console.log(`| --- | --- | ${tokenCounts.map(() => "---:").join(" | ")} |`);
  for (const withBias of biasModes) {
    for (const experts of [128, 256, 384, 512]) {
      const times = tokenCounts.map((t) => timeConfig(experts, t, withBias).toFixed(2));
      console.log(`| ${experts} | ${withBias ? "yes" : "no"} | ${times.join(" | ")} |`);
    }
  }
}
