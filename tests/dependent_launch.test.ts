// tests/dependent_launch.test.ts: every kernel may start before the kernel ahead of it in its
// stream has finished (programmatic dependent launch, NVIDIA sm_90+; hip/dependent_launch.hpp),
// so each must wait for that kernel before its first global memory access. Checked twice: in the
// sources (every kernel's first statement is the wait, or the L2 hint on its first row, which
// reads nothing into the kernel, and then the wait; every launch goes through ts_launch), and on
// the GPU, where a route reads the outputs of a slow route ahead of it in the same stream and must
// see them whole, hinted or not.

import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  createRouter,
  DeviceBuffer,
  type Dtype,
  deviceCount,
  deviceInfo,
  Graph,
  type Logits,
  libraryInfo,
  Stream,
} from "../mod.ts";
import { firstDifference, makeBias, makeLogits } from "./gpu_cases.ts";

const hipDir = join(import.meta.dir, "..", "hip");
const sources = readdirSync(hipDir)
  .filter((f) => /\.(hip|hpp|cpp|h)$/.test(f))
  .map((f) => ({ file: f, text: readFileSync(join(hipDir, f), "utf8") }));

describe("sources", () => {
  test("every kernel waits for the grids before it as its first statement, after at most the L2 hint", () => {
    let kernels = 0;
    let hinted = 0;
    const wait = /^ts_await_prior_grid\([\w.]+\);$/;
    for (const { file, text } of sources) {
      // `__global__ ... name(params) {` then the body's first two statements (comments dropped).
      for (const m of text.matchAll(
        /__global__[^;{]*?(\w+)\s*\([^)]*\)\s*\{((?:\s*\/\/[^\n]*)*)\s*([^;]*;)\s*([^;]*;)/g,
      )) {
        kernels++;
        const [first, second] = [m[3] as string, m[4] as string];
        // Before the wait: the L2 hint, or the staged kernel's setup (shared memory, its L2 hint).
        const hint =
          /^ts_prefetch_first_row<[^;]*\);$|^const ts_staged_block \w+ = ts_staged_begin(?:<\w+>)?\([^;]*\);$/.test(
            first,
          );
        if (hint) hinted++;
        const seen = wait.test(first) || (hint && wait.test(second)) ? "the wait" : first;
        expect(`${file}: ${m[1]}: ${seen}`).toBe(`${file}: ${m[1]}: the wait`);
      }
    }
    expect(kernels).toBeGreaterThanOrEqual(7); // warp, lane, split, split bias, vector select, ck, empty
    expect(hinted).toBe(6); // warp, lane, split, split bias, vector select (the L2 hint); staged (shared memory, L2 hint)
  });

  test("every kernel launch goes through ts_launch (which may set the dependent-launch attribute)", () => {
    for (const { file, text } of sources) {
      if (file === "dependent_launch.hpp") continue; // ts_launch's own plain launch
      expect(`${file}: ${/<<<[^>]*>>>/.exec(text)?.[0] ?? "none"}`).toBe(`${file}: none`);
    }
  });
});

const gpus = deviceCount();
const info = gpus > 0 ? deviceInfo(0) : undefined;
const gpuDescribe = gpus > 0 ? describe : describe.skip;
if (gpus === 0) console.log(`dependent_launch.test.ts: GPU part skipped, no GPU visible to ${libraryInfo().path}`);

// The slow route: the generic kernel over 16384 experts, one block per token, 64 blocks, so most
// SMs are free for the next kernel's blocks while it runs. Its weights (64 x 32 fp32, 8 KB) are
// the next route's logits.
const producer = { experts: 16384, topk: 32, tokens: 64, dtype: "bf16" as Dtype };
const producedBytes = producer.tokens * producer.topk * 4;

// Routes that read the 8 KB as logits, one per kernel family that small batches reach.
const consumers: { experts: number; topk: number; dtype: Dtype; bias: boolean }[] = [
  { experts: 8, topk: 8, dtype: "bf16", bias: false },
  { experts: 8, topk: 4, dtype: "f32", bias: true },
  { experts: 32, topk: 8, dtype: "f32", bias: false },
  { experts: 64, topk: 8, dtype: "bf16", bias: false },
  { experts: 128, topk: 4, dtype: "bf16", bias: true },
  { experts: 512, topk: 8, dtype: "bf16", bias: false },
  { experts: 512, topk: 8, dtype: "f16", bias: true },
  { experts: 2048, topk: 8, dtype: "f32", bias: false },
];

gpuDescribe("on the GPU", () => {
  test("dependent launch is on exactly where it exists (NVIDIA sm_90+) unless TOPK_SIGMOID_PDL=0", () => {
    const expected = info?.vendor === "nvidia" && (info?.major ?? 0) >= 9 && process.env.TOPK_SIGMOID_PDL !== "0";
    expect(info?.dependentLaunch).toBe(expected);
    expect(info?.runtimeVersion).toBeGreaterThan(0);
    const off = Bun.spawnSync(
      [process.execPath, "-e", 'import { deviceInfo } from "./mod.ts"; console.log(deviceInfo(0).dependentLaunch)'],
      { cwd: join(import.meta.dir, ".."), env: { ...process.env, TOPK_SIGMOID_PDL: "0" } },
    );
    expect(off.stderr.toString()).toBe("");
    expect(off.stdout.toString().trim()).toBe("false");
  });

  for (const viaGraph of [false, true]) {
    test(`a route reading the previous route's outputs sees them whole (${viaGraph ? "graph replay" : "stream"})`, () => {
      using first = createRouter({ ...producer, backend: "ck" });
      using stream = Stream.create();
      using dLogits = DeviceBuffer.from(makeLogits(7, producer.tokens, producer.experts, producer.experts, "bf16"));
      using produced = DeviceBuffer.alloc(producedBytes);
      using producedIdx = DeviceBuffer.alloc(producedBytes);
      for (const [i, c] of consumers.entries()) {
        const tokens = Math.floor(producedBytes / (c.experts * (c.dtype === "f32" ? 4 : 2)));
        const base = {
          experts: c.experts,
          topk: c.topk,
          dtype: c.dtype,
          bias: c.bias ? makeBias(i, c.experts) : undefined,
        };
        using second = createRouter(base);
        using host = createRouter({ ...base, backend: "host" });
        using w = DeviceBuffer.alloc(tokens * c.topk * 4);
        using idx = DeviceBuffer.alloc(tokens * c.topk * 4);
        const chain = () => {
          produced.fill(0xff, stream); // NaN: a consumer that starts reading early sees these
          first.routeDevice(dLogits, producer.tokens, { weights: produced, indices: producedIdx }, stream);
          second.routeDevice(produced, tokens, { weights: w, indices: idx }, stream);
        };
        for (let rep = 0; rep < 3; rep++) {
          if (viaGraph) {
            using graph = Graph.capture(stream, chain);
            graph.launch(stream);
          } else {
            chain();
          }
          stream.synchronize();
          const bytes = produced.download(new Uint8Array(producedBytes));
          const logits: Logits = c.dtype === "f32" ? new Float32Array(bytes.buffer) : new Uint16Array(bytes.buffer);
          expect(new Float32Array(bytes.buffer).some(Number.isNaN)).toBe(false); // the producer wrote it all
          const got = { weights: w.toFloat32Array(), indices: idx.toInt32Array() };
          const diff = firstDifference(c.topk, got, host.route(logits, { tokens }));
          expect(`E=${c.experts} k=${c.topk} ${c.dtype} bias=${c.bias} rep ${rep}: ${diff ?? "same"}`).toBe(
            `E=${c.experts} k=${c.topk} ${c.dtype} bias=${c.bias} rep ${rep}: same`,
          );
        }
      }
    });
  }
});
