// bench/lib/overhead.ts: section (h), host-side call cost with tinybench.
//   TS call overhead: router.routeDevice() (no sync) against the raw bun:ffi symbol with prebuilt
//   arguments, on the same device buffers, T=1. Each tinybench iteration enqueues a batch of
//   calls; the stream is synchronized in afterEach, outside the timed window, so the launch
//   queue never fills and the numbers are host cost, not kernel time.
//   The tasks run in OVERHEAD_ROUNDS rounds, forward and reversed in turn, and the difference is
//   the median of the rounds' own differences: one pass of the four tasks in a fixed order read
//   between -0.5 and +1.4 us for the same code (BENCHMARKS.md, the TS overhead rows), as the
//   host's clock and the driver's launch path drift over a pass, and a task run always first or
//   always last took that drift as its own.
//   Host route latency: router.route() on the host backend (zod check, output arrays given).
import { Bench, type Task } from "tinybench";
import { check, native } from "../../ffi/library.ts";
import { DtypeCode } from "../../ffi/status.ts";
import { createRouter, DeviceBuffer, type Stream } from "../../mod.ts";
import { makeLogits } from "../../tests/gpu_cases.ts";
import type { HostRouteResult, OverheadResult } from "./results.ts";
import { median } from "./util.ts";

const BATCH = 32; // calls per tinybench iteration (far below the launch queue depth)
const OVERHEAD_ROUNDS = 6;

function stats(task: Task | undefined, perIteration: number): { p50: number; p99: number; samples: number } {
  const r = task?.result;
  if (!r || (r.state !== "completed" && r.state !== "aborted-with-statistics"))
    throw new Error(
      `tinybench task ${task?.name} did not complete (${r?.state}${r && "error" in r ? `: ${r.error}` : ""})`,
    );
  return {
    p50: (r.latency.p50 * 1000) / perIteration,
    p99: (r.latency.p99 * 1000) / perIteration,
    samples: r.latency.samplesCount,
  };
}

/** TS routeDevice vs the raw symbol, T=1, E=256, k=8, bf16, renormalize. */
export function measureCallOverhead(fast: "warp" | "gfx9", stream: Stream, timeMs: number): OverheadResult {
  const experts = 256;
  const topk = 8;
  const tokens = 1;
  const lib = native();
  const fastSymbol = lib.symbols[fast === "gfx9" ? "topk_sigmoid_gfx9" : "topk_sigmoid_warp"];
  const autoSymbol = lib.symbols.topk_sigmoid;
  const routerFast = createRouter({ experts, topk, dtype: "bf16", renormalize: true, backend: fast });
  const routerAuto = createRouter({ experts, topk, dtype: "bf16", renormalize: true, backend: "auto" });
  const logits = DeviceBuffer.from(makeLogits(11, tokens, experts, experts, "bf16"));
  const weights = DeviceBuffer.alloc(tokens * topk * 4);
  const indices = DeviceBuffer.alloc(tokens * topk * 4);
  const out = { weights, indices };
  try {
    const lp = logits.pointer;
    const wp = weights.pointer;
    const ip = indices.pointer;
    const sp = stream.handle;
    const bf16 = DtypeCode.bf16;
    let status = 0;
    const sync = () => stream.synchronize();
    const tasks: (readonly [name: string, run: () => void])[] = [
      [
        `raw topk_sigmoid_${fast}`,
        () => {
          for (let i = 0; i < BATCH; i++)
            status |= fastSymbol(lp, bf16, tokens, experts, experts, null, 0, topk, 1, 1, wp, ip, sp);
        },
      ],
      [
        `router.routeDevice (${fast})`,
        () => {
          for (let i = 0; i < BATCH; i++) routerFast.routeDevice(logits, tokens, out, stream);
        },
      ],
      [
        "raw topk_sigmoid (dispatch)",
        () => {
          for (let i = 0; i < BATCH; i++)
            status |= autoSymbol(lp, bf16, tokens, experts, experts, null, 0, topk, 1, 1, wp, ip, sp);
        },
      ],
      [
        "router.routeDevice (auto)",
        () => {
          for (let i = 0; i < BATCH; i++) routerAuto.routeDevice(logits, tokens, out, stream);
        },
      ],
    ];
    // perRound[t][r]: task t's per-call median in round r.
    const perRound = tasks.map(() => [] as { p50: number; p99: number; samples: number }[]);
    const roundMs = Math.max(50, timeMs / 2);
    for (let round = 0; round < OVERHEAD_ROUNDS; round++) {
      const order = tasks.map((_, t) => t);
      if (round % 2) order.reverse();
      const bench = new Bench({
        time: roundMs,
        warmup: round === 0,
        warmupTime: Math.min(200, timeMs),
        iterations: 32,
        throws: true,
      });
      for (const t of order) {
        const [name, run] = tasks[t] as (typeof tasks)[number];
        bench.add(name, run, { afterEach: sync });
      }
      bench.runSync();
      check(status);
      tasks.forEach(([name], t) => perRound[t]?.push(stats(bench.getTask(name), BATCH)));
    }
    const results = tasks.map(([name], t) => {
      const rounds = perRound[t] ?? [];
      return {
        name,
        usPerCall: median(rounds.map((x) => x.p50)),
        p99UsPerCall: median(rounds.map((x) => x.p99)),
        samples: rounds.reduce((n, x) => n + x.samples, 0),
        callsPerIteration: BATCH,
      };
    });
    const rawRounds = perRound[0] ?? [];
    const tsRounds = perRound[1] ?? [];
    const differencesUs = tsRounds.map((x, r) => x.p50 - (rawRounds[r]?.p50 ?? Number.NaN));
    return {
      tokens,
      experts,
      topk,
      tasks: results,
      rounds: OVERHEAD_ROUNDS,
      differencesUs,
      differenceUs: differencesUs.length ? median(differencesUs) : null,
    };
  } finally {
    stream.synchronize();
    routerFast.dispose();
    routerAuto.dispose();
    logits.dispose();
    weights.dispose();
    indices.dispose();
  }
}

/** router.route() on the host backend (and the raw host symbol), E=256, k=8, bf16. */
export function measureHostRoute(tokenList: number[], timeMs: number): HostRouteResult[] {
  const experts = 256;
  const topk = 8;
  const results: HostRouteResult[] = [];
  const hostSymbol = native().symbols.topk_sigmoid_host;
  for (const tokens of tokenList) {
    const router = createRouter({ experts, topk, dtype: "bf16", renormalize: true, backend: "host" });
    const logits = makeLogits(12, tokens, experts, experts, "bf16");
    const out = { weights: new Float32Array(tokens * topk), indices: new Int32Array(tokens * topk) };
    let status = 0;
    const bench = new Bench({ time: timeMs, warmupTime: Math.min(200, timeMs), iterations: 32, throws: true });
    bench
      .add("route", () => {
        router.route(logits, { tokens, out });
      })
      .add("raw", () => {
        status |= hostSymbol(
          logits,
          DtypeCode.bf16,
          tokens,
          experts,
          experts,
          null,
          0,
          topk,
          1,
          1,
          out.weights,
          out.indices,
          null,
        );
      });
    bench.runSync();
    check(status);
    const route = stats(bench.tasks[0], 1);
    const raw = stats(bench.tasks[1], 1);
    results.push({ tokens, experts, topk, dtype: "bf16", routeUs: route.p50, routeP99Us: route.p99, rawUs: raw.p50 });
    router.dispose();
  }
  return results;
}
