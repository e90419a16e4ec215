// bench/quick.ts: a fast first look at kernel times (graph replay, device events), used while
// tuning. The full benchmark is bench/run.ts.
import {
  createRouter,
  DeviceBuffer,
  DeviceEvent,
  type Dtype,
  deviceInfo,
  Graph,
  launchEmptyKernel,
  Stream,
} from "../mod.ts";
import { makeBias, makeLogits } from "../tests/gpu_cases.ts";

const stream = Stream.create();
const start = DeviceEvent.create();
const end = DeviceEvent.create();
const perGraph = 20;

function timeGraph(body: () => void): number {
  const graph = Graph.capture(stream, () => {
    for (let i = 0; i < perGraph; i++) body();
  });
  for (let i = 0; i < 3; i++) graph.launch(stream);
  const samples: number[] = [];
  for (let rep = 0; rep < 15; rep++) {
    start.record(stream);
    graph.launch(stream);
    end.record(stream);
    samples.push((end.elapsedSince(start) * 1000) / perGraph);
  }
  graph.dispose();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] as number;
}

console.log(`device: ${deviceInfo().name}`);
console.log(`empty kernel (graph): ${timeGraph(() => launchEmptyKernel(stream)).toFixed(2)} us`);
const configs: [number, number, number, Dtype, boolean][] = [
  [8, 1, 1, "bf16", false],
  [64, 1, 1, "bf16", false],
  [256, 1, 1, "bf16", false],
  [256, 4, 1, "bf16", false],
  [64, 8, 1, "bf16", false],
  [64, 8, 256, "bf16", false],
  [256, 8, 256, "bf16", false],
  [256, 8, 1, "bf16", false],
  [512, 8, 256, "bf16", false],
  [128, 8, 4096, "bf16", false],
  [256, 8, 4096, "bf16", false],
  [128, 8, 65536, "bf16", false],
  [256, 8, 65536, "bf16", false],
  [256, 8, 65536, "bf16", true],
  [384, 8, 65536, "bf16", false],
  [512, 8, 65536, "bf16", false],
  [384, 8, 65536, "bf16", true],
  [256, 8, 65536, "f32", false],
];
for (const [experts, k, tokens, dtype, withBias] of configs) {
  const logits = makeLogits(1, tokens, experts, experts, dtype);
  const dl = DeviceBuffer.from(logits);
  const dw = DeviceBuffer.alloc(tokens * k * 4);
  const di = DeviceBuffer.alloc(tokens * k * 4);
  const bias = withBias ? makeBias(1, experts) : undefined;
  const row: string[] = [];
  for (const backend of ["warp", "ck"] as const) {
    const router = createRouter({ experts, topk: k, dtype, bias, renormalize: true, backend });
    const us = timeGraph(() => router.routeDevice(dl, tokens, { weights: dw, indices: di }, stream));
    const bytes = logits.byteLength + tokens * k * 8;
    row.push(`${backend} ${us.toFixed(2)} us (${(bytes / us / 1e6).toFixed(2)} TB/s)`);
    router.dispose();
  }
  console.log(`E=${experts} k=${k} T=${tokens} ${dtype}${withBias ? " bias" : ""}: ${row.join(" | ")}`);
  dl.dispose();
  dw.dispose();
  di.dispose();
}
