#!/usr/bin/env bun
// bench/run.ts: `bun run bench` (issue #5). Times this project's kernels against the floors and
// PyTorch, checks the targets, prints the tables, writes JSON + Markdown + chart.svg.
//   (a) floors: empty kernel in a CUDA graph (launch floor); copy bandwidth from the PyTorch
//       script -> bytes floor per config = (T*E*elem + T*k*8) / copy BW
//   (b) kernel times: warp/gfx9, ck, auto in graph replay and back-to-back modes with rotating
//       inputs (bench/lib/gpu.ts); host backend by wall clock for small T; chart grid
//   (c) PyTorch eager peer: bench/torch_peer.py, once, all configs on stdin (bench/lib/torch.ts)
//   (d) 40-config grid, (e) T <= 256 grid, (f) bandwidth, (g) never-slower sweep (bench/lib/plan.ts)
//   (h) host-side call cost with tinybench (bench/lib/overhead.ts)
// bench/README.md explains the method and the JSON; --help lists the options.
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, relative } from "node:path";
import { deviceInfo, libraryInfo } from "../mod.ts";
import { renderChart } from "./lib/chart.ts";
import { GpuRunner, HostInputs, measureHost } from "./lib/gpu.ts";
import { type BenchOptions, parseOptions, UsageError, usage } from "./lib/options.ts";
import { measureCallOverhead, measureHostRoute } from "./lib/overhead.ts";
import {
  type Config,
  configKey,
  hostRouteTokens,
  inputBytes,
  type KernelBackend,
  plan,
  type Section,
  type Series,
} from "./lib/plan.ts";
import { evaluateTargets, renderSummary } from "./lib/report.ts";
import { type BenchResults, type Measurement, SCHEMA } from "./lib/results.ts";
import { callsFor, estimateUs, slotsFor } from "./lib/rotation.ts";
import { runTorchPeer, torchJob } from "./lib/torch.ts";
import { median, Progress, us } from "./lib/util.ts";

const root = join(import.meta.dir, "..");
const argv = process.argv.slice(2);

let opts: BenchOptions & { help: boolean };
try {
  opts = parseOptions(argv, root);
} catch (e) {
  if (e instanceof UsageError) {
    console.error(`bench: ${e.message}\n\n${usage}`);
    process.exit(2);
  }
  throw e;
}
if (opts.help) {
  console.log(usage);
  process.exit(0);
}
const o = opts;

if (o.reportFrom) {
  // Re-render from an earlier run: targets, summary, chart.
  const earlier = (await Bun.file(o.reportFrom).json()) as BenchResults;
  if (earlier.schema !== SCHEMA) {
    console.error(`bench: ${o.reportFrom} is not a ${SCHEMA} file (schema ${earlier.schema})`);
    process.exit(2);
  }
  earlier.targets = evaluateTargets(earlier);
  mkdirSync(o.outDir, { recursive: true });
  const base = o.reportFrom
    .replace(/^.*\//, "")
    .replace(/^bench-/, "summary-")
    .replace(/\.json$/, ".md");
  writeFileSync(join(o.outDir, base), renderSummary(earlier, true));
  const svg = renderChart(earlier);
  if (svg) writeFileSync(join(o.outDir, "chart.svg"), svg);
  console.log(renderSummary(earlier, false));
  console.error(`bench: wrote ${join(o.outDir, base)}${svg ? ` and ${join(o.outDir, "chart.svg")}` : ""}`);
  process.exit(0);
}

const progress = new Progress();
const started = new Date();

function git(args: string[]): string | null {
  try {
    const p = Bun.spawnSync(["git", ...args], { cwd: root, stdout: "pipe", stderr: "ignore" });
    return p.exitCode === 0 ? p.stdout.toString().trim() : null;
  } catch {
    return null;
  }
}

// A copy of the tree without git history (the GPU machine gets one) can name its commit.
const commitFromEnv = process.env.TOPK_SIGMOID_BENCH_COMMIT || null;
const commit = commitFromEnv ?? git(["rev-parse", "--short=12", "HEAD"]);
const porcelain =
  commitFromEnv !== null || commit === null ? null : git(["status", "--porcelain", "--untracked-files=no"]);

const results: BenchResults = {
  schema: SCHEMA,
  date: started.toISOString(),
  command: `bun bench/run.ts${argv.length ? ` ${argv.join(" ")}` : ""}`,
  grid: o.grid,
  dryRun: o.dryRun,
  options: {
    repeats: o.repeats,
    warmup: o.warmup,
    sampleUs: o.sampleUs,
    rotateMiB: o.rotateMiB,
    maxSlots: o.maxSlots,
    maxCalls: o.maxCalls,
    hostMaxTokens: o.hostMaxTokens,
    modes: o.modes,
    only: [...o.only],
    torch: o.torch,
    seed: o.seed,
    tinybenchMs: o.tinybenchMs,
  },
  git: { commit, dirty: porcelain === null ? null : porcelain.length > 0 },
  host: {
    bun: Bun.version,
    platform: `${process.platform}-${process.arch}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "?",
  },
  library: null,
  device: null,
  torch: null,
  configs: {},
  floors: {
    launchGraphUs: null,
    launchB2bUs: null,
    launchSamplesUs: [],
    copyTBps: null,
    copySource: null,
    l2Bytes: null,
  },
  sections: [],
  measurements: [],
  overhead: null,
  hostRoute: [],
  targets: [],
  notes: [],
  elapsedS: 0,
};

const stamp = started
  .toISOString()
  .slice(0, 16)
  .replace(/[:T]/g, "-")
  .replace(/-(\d\d)-(\d\d)$/, "-$1$2");
const outFiles = {
  json: join(o.outDir, `bench-${stamp}.json`),
  md: join(o.outDir, `summary-${stamp}.md`),
  svg: join(o.outDir, "chart.svg"),
};

function writeOutputs(): void {
  results.elapsedS = progress.elapsedS();
  results.targets = evaluateTargets(results);
  mkdirSync(o.outDir, { recursive: true });
  writeFileSync(outFiles.json, `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(outFiles.md, renderSummary(results, true));
  const svg = renderChart(results);
  if (svg) writeFileSync(outFiles.svg, svg);
  const shown = (p: string) => (p.startsWith(root) ? relative(process.cwd(), p) || p : p);
  progress.log(`wrote ${shown(outFiles.json)}, ${shown(outFiles.md)}${svg ? `, ${shown(outFiles.svg)}` : ""}`);
}

const sections = plan(o.grid).filter((s) => o.only.has(s.id));
for (const s of sections) for (const c of s.configs) results.configs[configKey(c)] = c;
const torchConfigs = (): Config[] => {
  const seen = new Map<string, Config>();
  for (const s of sections) if (s.torch) for (const c of s.configs) seen.set(configKey(c), c);
  return [...seen.values()];
};
const label = (c: Config) => `E${c.experts} k${c.topk} T${c.tokens} ${c.dtype}${c.bias ? " +bias" : ""}`;

// ---------------------------------------------------------------------------------------------
// Library and device.
let gpus = 0;
try {
  const lib = libraryInfo();
  results.library = { path: lib.path, variant: lib.variant, deviceCount: lib.deviceCount };
  gpus = lib.deviceCount;
} catch (e) {
  results.notes.push(`native library: ${(e as Error).message.split("\n")[0]}`);
  if (!o.dryRun) {
    console.error(`bench: ${(e as Error).message}`);
    process.exit(1);
  }
}
let fast: "warp" | "gfx9" = "warp";
if (gpus > 0 && !o.dryRun) {
  const d = deviceInfo();
  fast = d.vendor === "amd" && d.arch.startsWith("gfx9") ? "gfx9" : "warp";
  results.device = {
    name: d.name,
    arch: d.arch,
    vendor: d.vendor,
    multiprocessors: d.multiprocessors,
    totalMemory: d.totalMemory,
    fastBackend: fast,
    dispatchBackend: d.dispatchBackend,
    dependentLaunch: d.dependentLaunch,
  };
  progress.log(
    `device: ${d.name} (${d.arch}, ${d.multiprocessors} SMs); fast path ${fast}; ` +
      `${d.dependentLaunch ? "dependent" : "plain"} launches; ${results.library?.path}`,
  );
} else if (!o.dryRun) {
  console.error(
    `bench: no GPU visible to ${results.library?.path ?? "the native library"}. Build on a GPU machine ('bun run build'), ` +
      "or run 'bun run bench --dry-run' for the host-side parts and the plan.",
  );
  process.exit(1);
}

const seriesOf = (b: Section["backends"][number]): KernelBackend => (b === "fast" ? fast : b);
const mkey = (key: string, series: Series, mode: string) => `${key}|${series}|${mode}`;
const done = new Set<string>();
const record = (m: Measurement) => {
  results.measurements.push(m);
  done.add(mkey(m.key, m.series, m.mode));
};

// ---------------------------------------------------------------------------------------------
// Dry run: the plan, an estimate, and the host-side parts (host route latency, host backend on
// the chart's small T, the PyTorch probe).
function estimateSection(s: Section): { measurements: number; torchJobs: number; estimatedS: number } {
  let measurements = 0;
  let seconds = 0;
  const samples = o.warmup + o.repeats;
  for (const c of s.configs) {
    const slots = slotsFor(c, o);
    const calls = callsFor(slots, estimateUs(c, "ours"), o);
    seconds += (slots * inputBytes(c)) / 10e9; // uploads
    for (const b of s.backends)
      for (const mode of o.modes) {
        measurements++;
        const kernel = estimateUs(c, b === "ck" ? "ck" : "ours");
        const perCall = mode === "b2b" ? Math.max(kernel, 3) : kernel; // ~3 us host launch via bun:ffi
        seconds += (samples * calls * perCall) / 1e6 + (mode === "graph" ? calls * 5e-6 + 1e-3 : 0);
      }
    if (s.host && c.tokens <= o.hostMaxTokens) {
      measurements++;
      seconds += samples * 2e-3;
    }
  }
  let torchJobs = 0;
  if (s.torch && o.torch)
    for (const c of s.configs) {
      torchJobs++;
      const j = torchJob(c, o);
      const t = estimateUs(c, "torch");
      // graph replays + plain eager (~50 us of Python a call) + capture and set-up
      seconds += (samples * (j.calls * t + j.eager_calls * Math.max(t, 50))) / 1e6 + j.calls * 7 * 15e-6 + 0.03;
    }
  return { measurements, torchJobs, estimatedS: seconds };
}

async function dryRun(): Promise<void> {
  const inputs = new HostInputs(o.seed);
  results.plan = [];
  const rows: string[] = [];
  let total = 10 + (o.torch ? 15 : 0); // library load, CUDA init, torch import + copy bandwidth
  for (const s of sections) {
    const e = estimateSection(s);
    results.plan.push({ section: s.id, configs: s.configs.length, ...e });
    // Shared configs are timed once: the estimate double-counts them a little.
    total += e.estimatedS;
    rows.push(
      `| (${s.letter}) ${s.id} | ${s.configs.length} | ${s.backends.map((b) => seriesOf(b)).join(", ")}${s.host ? `, host (T<=${o.hostMaxTokens})` : ""} | ${e.measurements} | ${e.torchJobs} | ${e.estimatedS.toFixed(0)} |`,
    );
    results.sections.push({ id: s.id, title: s.title, keys: s.configs.map(configKey), seconds: 0 });
  }
  console.log(
    [
      `Dry run (${o.grid} grid): nothing runs on a GPU. On a GPU machine this would measure:`,
      "",
      "| section | configs | backends | our timings | torch jobs | est. s |",
      "|---|---:|---|---:|---:|---:|",
      ...rows,
      "",
      `(a) floors: empty kernel, 200 per graph and 200 back to back; copy bandwidth from bench/torch_peer.py`,
      `(h) tinybench: router.routeDevice vs raw topk_sigmoid_${fast} at T=1 (E=256 k=8 bf16); host route() latency`,
      `modes ${o.modes.join(", ")}; ${o.repeats} samples (+${o.warmup} warm-up) per timing; inputs rotate to ${o.rotateMiB} MiB, <= ${o.maxSlots} copies`,
      `rough total on an H100/H200: ${(total / 60).toFixed(1)} min (shared configs are timed once, so somewhat less)`,
      "",
    ].join("\n"),
  );
  // Host parts, for real.
  const chart = sections.find((s) => s.id === "chart");
  if (chart) {
    const small = chart.configs.filter((c) => c.tokens <= o.hostMaxTokens);
    progress.section("(b) host backend, wall clock (chart configs)", small.length);
    for (const c of small) {
      const m = measureHost(c, inputs, o);
      record(m);
      progress.tick(`${label(c)} host ${us(m.us)} us`);
    }
    progress.end();
  }
  if (o.only.has("overhead")) {
    progress.section("(h) host route() latency (tinybench)", 1);
    results.hostRoute = measureHostRoute(hostRouteTokens(o.grid), o.tinybenchMs);
    progress.tick("done");
    progress.end();
  }
  if (o.torch) {
    progress.log("(c) PyTorch probe (versions only)");
    const t = await runTorchPeer([], o, true, (m) => progress.log(m));
    results.torch = t.info;
    results.notes.push(...t.notes);
    progress.log(t.info.ok ? `PyTorch ${t.info.torch} on ${t.info.device}` : `PyTorch peer: ${t.info.error}`);
  }
  if (o.copyTBps) {
    results.floors.copyTBps = o.copyTBps;
    results.floors.copySource = "option";
  }
  results.notes.push("dry run: no GPU timings; the chart shows the host backend only");
}

// ---------------------------------------------------------------------------------------------
// The GPU run.
async function gpuRun(): Promise<void> {
  const inputs = new HostInputs(o.seed);
  const runner = new GpuRunner(o, inputs);
  try {
    if (o.only.has("floors")) {
      progress.section("(a) launch floor", 1);
      const f = runner.launchFloor();
      results.floors.launchGraphUs = median(f.graph);
      results.floors.launchB2bUs = median(f.b2b);
      results.floors.launchSamplesUs = f.graph;
      progress.tick(
        `empty kernel ${us(results.floors.launchGraphUs)} us in a graph, ${us(results.floors.launchB2bUs)} us b2b`,
      );
      progress.end();
    }
    for (const s of sections) {
      progress.section(`(${s.letter}) ${s.id}`, s.configs.length);
      for (const c of s.configs) {
        const key = configKey(c);
        const todo: { backend: KernelBackend; mode: "graph" | "b2b" }[] = [];
        for (const b of s.backends)
          for (const mode of o.modes)
            if (!done.has(mkey(key, seriesOf(b), mode))) todo.push({ backend: seriesOf(b), mode });
        const wantHost = s.host && c.tokens <= o.hostMaxTokens && !done.has(mkey(key, "host", "wall"));
        const shown: string[] = [];
        if (todo.length) {
          let prepared: ReturnType<GpuRunner["prepare"]> | undefined;
          try {
            prepared = runner.prepare(c);
          } catch (e) {
            for (const t of todo)
              record({
                key,
                config: c,
                series: t.backend,
                mode: t.mode,
                us: Number.NaN,
                samplesUs: [],
                callsPerSample: 0,
                slots: 0,
                workingSetBytes: 0,
                error: `prepare: ${(e as Error).message}`,
              });
          }
          if (prepared)
            for (const t of todo) {
              const m = runner.measure(prepared, t.backend, t.backend, t.mode);
              record(m);
              if (t.mode === "graph") shown.push(`${t.backend} ${m.error ? "ERR" : us(m.us)}`);
            }
        }
        if (wantHost) {
          const m = measureHost(c, inputs, o);
          record(m);
          shown.push(`host ${us(m.us)}`);
        }
        progress.tick(`${label(c)}${shown.length ? `: ${shown.join(", ")} us` : " (cached)"}`);
      }
      results.sections.push({ id: s.id, title: s.title, keys: s.configs.map(configKey), seconds: progress.end() });
    }
    if (o.only.has("overhead")) {
      progress.section("(h) call overhead and host route latency (tinybench)", 2);
      try {
        results.overhead = measureCallOverhead(fast, runner.stream, o.tinybenchMs);
        progress.tick(`routeDevice - raw = ${results.overhead.differenceUs?.toFixed(3)} us`);
      } catch (e) {
        results.notes.push(`call overhead failed: ${(e as Error).message}`);
        progress.tick("call overhead failed");
      }
      results.hostRoute = measureHostRoute(hostRouteTokens(o.grid), o.tinybenchMs);
      progress.tick("host route");
      progress.end();
    }
  } finally {
    // Give the GPU memory back before PyTorch runs.
    runner.dispose();
    inputs.release();
  }
  const tc = torchConfigs();
  if (o.torch && (tc.length > 0 || o.only.has("floors") || o.only.has("bandwidth"))) {
    progress.log(`(c) PyTorch peer: ${tc.length} configs, graph replay + plain eager, and the copy bandwidth`);
    const t0 = performance.now();
    const t = await runTorchPeer(tc, o, false, (m) => progress.log(m));
    results.torch = t.info;
    results.notes.push(...t.notes);
    results.floors.l2Bytes = t.l2Bytes;
    if (t.copyTBps) {
      results.floors.copyTBps = t.copyTBps;
      results.floors.copySource = "torch";
    }
    for (const m of t.measurements) record(m);
    progress.log(`(c) PyTorch peer done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  } else if (!o.torch) results.torch = { ok: false, error: "--no-torch" };
  if (results.floors.copyTBps === null && o.copyTBps) {
    results.floors.copyTBps = o.copyTBps;
    results.floors.copySource = "option";
  }
}

let failed = false;
try {
  if (o.dryRun) await dryRun();
  else await gpuRun();
} catch (e) {
  failed = true;
  results.notes.push(`run aborted: ${(e as Error).stack ?? e}`);
  console.error(`bench: aborted: ${(e as Error).stack ?? e}`);
} finally {
  writeOutputs();
}
console.log(renderSummary(results, false));
progress.log(`total ${progress.elapsedS().toFixed(0)} s`);
process.exit(failed ? 1 : 0);
