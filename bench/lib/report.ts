// bench/lib/report.ts: targets (MET / MISSED) and the Markdown tables, for stdout (compact) and
// summary-<date>.md (everything, ready to paste into BENCHMARKS.md).
import {
  BANDWIDTH_TOKENS,
  bandwidthExperts,
  type Config,
  configKey,
  floorBytes,
  type Mode,
  type Series,
  sweepExperts,
  sweepKs,
} from "./plan.ts";
import type { BenchResults, Measurement, TargetResult } from "./results.ts";
import { geomean, mean, ratio, us } from "./util.ts";

export class Index {
  readonly #m = new Map<string, Measurement>();
  constructor(measurements: Measurement[]) {
    for (const m of measurements) this.#m.set(`${m.key}|${m.series}|${m.mode}`, m);
  }
  get(c: Config | string, series: Series, mode: Mode): Measurement | undefined {
    return this.#m.get(`${typeof c === "string" ? c : configKey(c)}|${series}|${mode}`);
  }
  /** Median us, or undefined when missing or failed. */
  us(c: Config | string, series: Series, mode: Mode): number | undefined {
    const m = this.get(c, series, mode);
    return m && !m.error && Number.isFinite(m.us) ? m.us : undefined;
  }
}

const configsOf = (r: BenchResults, id: string): Config[] =>
  (r.sections.find((s) => s.id === id)?.keys ?? []).flatMap((k) => (r.configs[k] ? [r.configs[k]] : []));

export const bytesFloorUs = (c: Config, copyTBps: number | null): number | undefined =>
  copyTBps ? floorBytes(c) / (copyTBps * 1e6) : undefined;

const tbps = (c: Config, usPerCall: number | undefined) =>
  usPerCall === undefined ? undefined : floorBytes(c) / (usPerCall * 1e6);

const label = (c: Config) => `E${c.experts} k${c.topk} T${c.tokens} ${c.dtype}${c.bias ? " +bias" : ""}`;

function target(
  id: string,
  description: string,
  value: number | undefined,
  op: "<=" | ">=",
  threshold: number,
  unit: string,
  detail: string,
): TargetResult {
  if (value === undefined || !Number.isFinite(value))
    return { id, description, value: null, threshold, op, unit, status: "NOT MEASURED", detail };
  const met = op === "<=" ? value <= threshold : value >= threshold;
  return { id, description, value, threshold, op, unit, status: met ? "MET" : "MISSED", detail };
}

export function evaluateTargets(r: BenchResults): TargetResult[] {
  const ix = new Index(r.measurements);
  const fast = (r.device?.fastBackend ?? "warp") as Series;
  const targets: TargetResult[] = [];
  const partial = r.grid === "quick" ? " (quick grid: partial)" : "";
  const ran = (id: string) => r.sections.some((s) => s.id === id);

  // 1. T <= 256, E <= 512, k <= 8, bf16: <= 1.6 us per call (auto, graph replay).
  {
    const cs = configsOf(r, "small").filter((c) => c.tokens <= 256 && c.experts <= 512 && c.topk <= 8);
    const timed = cs.map((c) => ({ c, us: ix.us(c, "auto", "graph") })).filter((x) => x.us !== undefined);
    const worst = timed.reduce<(typeof timed)[number] | undefined>(
      (w, x) => (!w || (x.us ?? 0) > (w.us ?? 0) ? x : w),
      undefined,
    );
    const over = timed.filter((x) => (x.us ?? 0) > 1.6).length;
    targets.push(
      target(
        "small-latency",
        "T <= 256, E <= 512, k <= 8, bf16: <= 1.6 us per call (auto, graph replay)",
        worst?.us,
        "<=",
        1.6,
        "us",
        !ran("small")
          ? "section (e) not run"
          : worst
            ? `worst ${label(worst.c)}: ${us(worst.us)} us; ${over} of ${timed.length} configs above 1.6 us${cs.length > timed.length ? `; ${cs.length - timed.length} not timed` : ""}${partial}`
            : "no timings",
      ),
    );
  }

  // 2. Bandwidth at T=65536, k=8, bf16: >= 70% of copy BW, >= 50% with bias.
  for (const withBias of [false, true]) {
    const cs = configsOf(r, "bandwidth").filter(
      (c) =>
        c.tokens === BANDWIDTH_TOKENS &&
        c.dtype === "bf16" &&
        c.topk === 8 &&
        c.bias === withBias &&
        bandwidthExperts.includes(c.experts),
    );
    const copy = r.floors.copyTBps;
    const pcts = cs
      .map((c) => ({ c, pct: copy ? ((tbps(c, ix.us(c, "auto", "graph")) ?? Number.NaN) / copy) * 100 : Number.NaN }))
      .filter((x) => Number.isFinite(x.pct));
    const worst = pcts.reduce<(typeof pcts)[number] | undefined>((w, x) => (!w || x.pct < w.pct ? x : w), undefined);
    const need = withBias ? 50 : 70;
    targets.push(
      target(
        withBias ? "bandwidth-bias" : "bandwidth",
        `T=65536, E {128,256,384,512}, k=8, bf16${withBias ? ", with bias" : ""}: >= ${need}% of copy bandwidth (auto, graph replay)`,
        worst?.pct,
        ">=",
        need,
        "%",
        !ran("bandwidth")
          ? "section (f) not run"
          : !copy
            ? "no copy bandwidth (PyTorch peer did not run; --copy-tbps supplies one)"
            : worst
              ? `worst E${worst.c.experts}: ${worst.pct.toFixed(1)}% of ${copy.toFixed(2)} TB/s; ${pcts.map((x) => `E${x.c.experts} ${x.pct.toFixed(0)}%`).join(", ")}${partial}`
              : "no timings",
      ),
    );
  }

  // 3. 40-config grid: fast >= 1.66x ck and >= 10x PyTorch on average (mean of per-config ratios).
  {
    const cs = configsOf(r, "grid40");
    const vsCk: number[] = [];
    const vsTorch: number[] = [];
    for (const c of cs) {
      const f = ix.us(c, fast, "graph");
      const ck = ix.us(c, "ck", "graph");
      const t = ix.us(c, "torch", "graph");
      if (f !== undefined && ck !== undefined) vsCk.push(ck / f);
      if (f !== undefined && t !== undefined) vsTorch.push(t / f);
    }
    const range = (xs: number[]) =>
      xs.length ? `; range ${ratio(Math.min(...xs))}-${ratio(Math.max(...xs))}, geomean ${ratio(geomean(xs))}` : "";
    targets.push(
      target(
        "grid40-vs-ck",
        `40-config grid: ${fast} >= 1.66x ck on average (mean of per-config ratios, graph replay)`,
        vsCk.length ? mean(vsCk) : undefined,
        ">=",
        1.66,
        "x",
        ran("grid40") ? `${vsCk.length} of ${cs.length} configs timed${range(vsCk)}${partial}` : "section (d) not run",
      ),
    );
    targets.push(
      target(
        "grid40-vs-torch",
        `40-config grid: ${fast} >= 10x PyTorch eager on average (both graph replay)`,
        vsTorch.length ? mean(vsTorch) : undefined,
        ">=",
        10,
        "x",
        !ran("grid40")
          ? "section (d) not run"
          : vsTorch.length
            ? `${vsTorch.length} of ${cs.length} configs timed${range(vsTorch)}${partial}`
            : "no PyTorch timings",
      ),
    );
  }

  // 4. Never slower than PyTorch (auto vs torch, both graph replay).
  {
    const cs = configsOf(r, "sweep");
    const pairs = cs
      .map((c) => ({ c, ours: ix.us(c, "auto", "graph"), torch: ix.us(c, "torch", "graph") }))
      .filter((p) => p.ours !== undefined && p.torch !== undefined);
    const slower = pairs.filter((p) => (p.ours ?? 0) > (p.torch ?? 0));
    const worst = pairs.reduce<(typeof pairs)[number] | undefined>(
      (w, p) => (!w || (p.ours ?? 0) / (p.torch ?? 1) > (w.ours ?? 0) / (w.torch ?? 1) ? p : w),
      undefined,
    );
    targets.push(
      target(
        "never-slower",
        "E 1..1024 x k 1..32 (T=4096, T=1 subset), bf16: no config slower than PyTorch (auto vs torch, graph replay)",
        pairs.length ? slower.length : undefined,
        "<=",
        0,
        "slower",
        !ran("sweep")
          ? "section (g) not run"
          : pairs.length
            ? `${slower.length} of ${pairs.length} slower; worst ratio: ${worst ? `${label(worst.c)} ${us(worst.ours)} vs ${us(worst.torch)} us` : "-"}${
                slower.length
                  ? `; slower: ${slower
                      .slice(0, 8)
                      .map((p) => label(p.c))
                      .join(", ")}${slower.length > 8 ? ", ..." : ""}`
                  : ""
              }${partial}`
            : "no PyTorch timings",
      ),
    );
  }

  // 5. TS call overhead on device buffers.
  {
    const d = r.overhead?.differenceUs ?? undefined;
    targets.push(
      target(
        "ts-overhead",
        `router.routeDevice (no sync) <= 1 us more than the raw ${fast} symbol call, T=1 (tinybench medians, interleaved rounds)`,
        d ?? undefined,
        "<=",
        1,
        "us",
        r.overhead
          ? r.overhead.tasks.map((t) => `${t.name} ${t.usPerCall.toFixed(3)} us`).join("; ")
          : r.dryRun || !r.device
            ? "not measured (no GPU)"
            : (r.options.only as string[] | undefined)?.includes("overhead")
              ? "failed (see Notes)"
              : "section (h) not run",
      ),
    );
  }
  return targets;
}

function table(head: string[], rows: (string | number)[][], align?: ("l" | "r")[]): string {
  const sep = head.map((_, i) => ((align?.[i] ?? (i === 0 ? "l" : "r")) === "l" ? "---" : "---:"));
  return [head, sep, ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
}

function header(r: BenchResults): string {
  const d = r.device;
  const card = d
    ? `${d.name} (${d.arch}, ${d.multiprocessors} SMs, ${(d.totalMemory / 2 ** 30).toFixed(0)} GiB)`
    : "no GPU";
  const lines = [
    `# topk-sigmoid benchmark: ${card}`,
    "",
    `- date: ${r.date}${r.dryRun ? " (DRY RUN: host-side parts only)" : ""}${r.grid === "quick" ? " (QUICK GRID: targets indicative only)" : ""}`,
    `- command: \`${r.command}\``,
    `- commit: ${r.git.commit ?? "unknown"}${r.git.dirty ? " (with uncommitted changes)" : ""}; Bun ${r.host.bun}; ${r.host.cpuModel} x${r.host.cpus}`,
    `- library: ${r.library?.path ?? "-"}; fast path: ${d?.fastBackend ?? "-"}; dispatch picks ${d?.dispatchBackend ?? "-"} for E <= 1024`,
    `- kernel launches: ${d === null ? "-" : d.dependentLaunch ? "programmatic dependent launch (each kernel may start while the one before it in the stream runs, and waits for it before touching memory; TOPK_SIGMOID_PDL=0 turns it off)" : "plain (no programmatic dependent launch on this device, or TOPK_SIGMOID_PDL=0)"}`,
    `- PyTorch: ${r.torch?.ok ? `${r.torch.torch} (CUDA ${r.torch.cuda}) on ${r.torch.device}` : `not run (${r.torch?.error ?? "--no-torch"})`}`,
    `- method: graph = R calls captured in one CUDA graph, replays back to back, device events, median of ${r.options.repeats} samples / R; b2b = R plain launches between events; inputs rotate over copies until ${r.options.rotateMiB} MiB (max ${r.options.maxSlots} copies); torch eager = plain eager calls between events`,
  ];
  return lines.join("\n");
}

function floorsTable(r: BenchResults): string {
  const f = r.floors;
  return table(
    ["floor", "value"],
    [
      [
        "empty kernel in a CUDA graph, launched as the routing kernels are (launch floor)",
        f.launchGraphUs === null ? "-" : `${us(f.launchGraphUs)} us`,
      ],
      ["empty kernel, launches back to back (no graph)", f.launchB2bUs === null ? "-" : `${us(f.launchB2bUs)} us`],
      [
        `copy bandwidth (${f.copySource === "option" ? "--copy-tbps" : "PyTorch D2D copy"}, read + write)`,
        f.copyTBps === null ? "-" : `${f.copyTBps.toFixed(2)} TB/s`,
      ],
      ["L2 (PyTorch)", f.l2Bytes ? `${(f.l2Bytes / 2 ** 20).toFixed(0)} MiB` : "-"],
    ],
  );
}

function targetsTable(r: BenchResults): string {
  return table(
    ["target", "measured", "need", "status", "detail"],
    r.targets.map((t) => [
      t.description,
      t.value === null
        ? "-"
        : `${t.unit === "x" ? ratio(t.value) : t.unit === "%" ? `${t.value.toFixed(1)}%` : `${Number.isInteger(t.value) ? t.value : t.value.toFixed(3)} ${t.unit}`}`,
      `${t.op} ${t.threshold}${t.unit === "x" ? "x" : t.unit === "%" ? "%" : ` ${t.unit}`}`,
      `**${t.status}**`,
      t.detail,
    ]),
    ["l", "r", "r", "l", "l"],
  );
}

function grid40Table(r: BenchResults, ix: Index, fast: Series): string {
  const rows = configsOf(r, "grid40").map((c) => {
    const f = ix.us(c, fast, "graph");
    const ck = ix.us(c, "ck", "graph");
    const tg = ix.us(c, "torch", "graph");
    return [
      c.experts,
      c.tokens,
      c.topk,
      c.dtype,
      us(f),
      us(ck),
      ratio(f && ck ? ck / f : undefined),
      us(tg),
      ratio(f && tg ? tg / f : undefined),
      us(ix.us(c, "torch", "eager")),
      us(ix.us(c, fast, "b2b")),
      us(bytesFloorUs(c, r.floors.copyTBps)),
    ];
  });
  return table(
    [
      "E",
      "T",
      "k",
      "dtype",
      `${fast} us`,
      "ck us",
      "ck/fast",
      "torch graph us",
      "torch/fast",
      "torch eager us",
      `${fast} b2b us`,
      "bytes floor us",
    ],
    rows,
  );
}

function smallMatrix(r: BenchResults, ix: Index, series: Series, mode: Mode): string {
  const cs = configsOf(r, "small");
  const tokens = [...new Set(cs.map((c) => c.tokens))].sort((a, b) => a - b);
  const groups = new Map<string, Config[]>();
  for (const c of cs) {
    const g = `${c.experts}|${c.topk}`;
    groups.set(g, [...(groups.get(g) ?? []), c]);
  }
  const rows = [...groups.values()].map((g) => {
    const first = g[0] as Config;
    return [
      first.experts,
      first.topk,
      ...tokens.map((t) => {
        const c = g.find((x) => x.tokens === t);
        const v = c ? ix.us(c, series, mode) : undefined;
        return `${us(v)}${series === "auto" && mode === "graph" && v !== undefined && v > 1.6 ? " !" : ""}`;
      }),
    ];
  });
  return table(["E", "k", ...tokens.map((t) => `T=${t}`)], rows);
}

function bandwidthTable(r: BenchResults, ix: Index, fast: Series): string {
  const copy = r.floors.copyTBps;
  const rows = configsOf(r, "bandwidth").map((c) => {
    const a = ix.us(c, "auto", "graph");
    const bw = tbps(c, a);
    return [
      c.experts,
      c.bias ? "yes" : "no",
      c.dtype,
      us(ix.us(c, fast, "graph")),
      us(ix.us(c, "ck", "graph")),
      us(a),
      (floorBytes(c) / 1e6).toFixed(1),
      bw === undefined ? "-" : bw.toFixed(2),
      bw !== undefined && copy ? `${((bw / copy) * 100).toFixed(1)}%` : "-",
      us(bytesFloorUs(c, copy)),
      us(ix.us(c, "torch", "graph")),
    ];
  });
  return table(
    [
      "E",
      "bias",
      "dtype",
      `${fast} us`,
      "ck us",
      "auto us",
      "MB moved",
      "auto TB/s",
      "% of copy",
      "bytes floor us",
      "torch graph us",
    ],
    rows,
  );
}

function sweepTables(r: BenchResults, ix: Index, full: boolean): string {
  const cs = configsOf(r, "sweep");
  const pairs = cs.map((c) => ({ c, ours: ix.us(c, "auto", "graph"), torch: ix.us(c, "torch", "graph") }));
  const slower = pairs.filter((p) => p.ours !== undefined && p.torch !== undefined && p.ours > p.torch);
  const parts: string[] = [];
  const shown = full ? slower : slower.slice(0, 15);
  parts.push(
    slower.length
      ? table(
          ["slower than torch", "auto us", "torch us", "auto/torch"],
          shown.map((p) => [label(p.c), us(p.ours), us(p.torch), ratio((p.ours ?? 0) / (p.torch ?? 1))]),
        ) + (shown.length < slower.length ? `\n\n... and ${slower.length - shown.length} more (summary-<date>.md)` : "")
      : `No config slower than PyTorch (${pairs.filter((p) => p.ours !== undefined && p.torch !== undefined).length} compared).`,
  );
  if (full) {
    for (const t of [...new Set(cs.map((c) => c.tokens))].sort((a, b) => b - a)) {
      const es = sweepExperts.filter((e) => cs.some((c) => c.experts === e && c.tokens === t));
      const ks = sweepKs.filter((k) => cs.some((c) => c.topk === k && c.tokens === t));
      const rows = es.map((e) => [
        e,
        ...ks.map((k) => {
          const c = cs.find((x) => x.experts === e && x.topk === k && x.tokens === t);
          if (!c) return "";
          const o = ix.us(c, "auto", "graph");
          const tt = ix.us(c, "torch", "graph");
          return `${us(o)} / ${us(tt)}`;
        }),
      ]);
      parts.push(`T=${t}, bf16, auto / torch us (graph replay):\n\n${table(["E", ...ks.map((k) => `k=${k}`)], rows)}`);
    }
  }
  return parts.join("\n\n");
}

function chartTable(r: BenchResults, ix: Index, fast: Series): string {
  const rows = configsOf(r, "chart").map((c) => [
    c.experts,
    c.tokens,
    us(ix.us(c, fast, "graph")),
    us(ix.us(c, "ck", "graph")),
    us(ix.us(c, "auto", "graph")),
    us(ix.us(c, "auto", "b2b")),
    us(ix.us(c, "host", "wall")),
    us(ix.us(c, "torch", "graph")),
    us(ix.us(c, "torch", "eager")),
    us(bytesFloorUs(c, r.floors.copyTBps)),
  ]);
  return table(
    [
      "E",
      "T",
      `${fast} us`,
      "ck us",
      "auto us",
      "auto b2b us",
      "host us",
      "torch graph us",
      "torch eager us",
      "bytes floor us",
    ],
    rows,
  );
}

function overheadTables(r: BenchResults): string {
  const parts: string[] = [];
  if (r.overhead) {
    const o = r.overhead;
    parts.push(
      table(
        [`T=${o.tokens} E=${o.experts} k=${o.topk} bf16, no sync`, "us/call p50", "us/call p99", "iterations"],
        o.tasks.map((t) => [t.name, t.usPerCall.toFixed(3), t.p99UsPerCall.toFixed(3), t.samples]),
      ),
    );
    parts.push(
      `TS overhead (routeDevice - raw symbol${o.rounds ? `, median of ${o.rounds} interleaved rounds` : ""}): ${o.differenceUs === null ? "-" : `${o.differenceUs.toFixed(3)} us`}${o.differencesUs?.length ? ` (rounds: ${o.differencesUs.map((d) => d.toFixed(3)).join(", ")})` : ""}`,
    );
  }
  if (r.hostRoute.length)
    parts.push(
      table(
        ["host backend, E=256 k=8 bf16", "route() us p50", "route() us p99", "raw symbol us p50"],
        r.hostRoute.map((h) => [`T=${h.tokens}`, us(h.routeUs), us(h.routeP99Us), us(h.rawUs)]),
      ),
    );
  return parts.join("\n\n");
}

/** The summary: compact for stdout (full = false), everything for summary-<date>.md. */
export function renderSummary(r: BenchResults, full: boolean): string {
  const ix = new Index(r.measurements);
  const fast = (r.device?.fastBackend ?? "warp") as Series;
  const has = (id: string) => r.sections.some((s) => s.id === id && s.keys.length > 0);
  const out: string[] = [header(r), "## (a) Floors", floorsTable(r), "## Targets", targetsTable(r)];
  if (has("grid40")) {
    out.push("## (d) 40-config grid (graph replay unless noted)", grid40Table(r, ix, fast));
    const t = r.targets.find((x) => x.id === "grid40-vs-ck");
    const tt = r.targets.find((x) => x.id === "grid40-vs-torch");
    out.push(
      `Average of per-config ratios: ck/${fast} ${t?.value === null || !t ? "-" : ratio(t.value)} (${t?.detail ?? ""}); torch/${fast} ${tt?.value === null || !tt ? "-" : ratio(tt.value)} (${tt?.detail ?? ""}).`,
    );
  }
  if (has("small")) {
    out.push(
      "## (e) Small batches: auto, graph replay, us per call (! = above 1.6 us)",
      smallMatrix(r, ix, "auto", "graph"),
    );
    if (full) {
      out.push("ck, graph replay:", smallMatrix(r, ix, "ck", "graph"));
      out.push("auto, back to back (plain launches):", smallMatrix(r, ix, "auto", "b2b"));
      out.push("PyTorch eager ops, graph replay:", smallMatrix(r, ix, "torch", "graph"));
      out.push("PyTorch plain eager:", smallMatrix(r, ix, "torch", "eager"));
      out.push("host backend, wall clock (router.route):", smallMatrix(r, ix, "host", "wall"));
    }
  }
  if (has("bandwidth")) out.push("## (f) Bandwidth, T=65536, k=8 (graph replay)", bandwidthTable(r, ix, fast));
  if (has("sweep"))
    out.push("## (g) Never slower than PyTorch (auto vs torch, graph replay)", sweepTables(r, ix, full));
  if (full && has("chart")) out.push("## (b) Time vs tokens, k=8, bf16 (chart.svg)", chartTable(r, ix, fast));
  const oh = overheadTables(r);
  if (oh) out.push("## (h) Host-side call cost (tinybench)", oh);
  const errors = r.measurements.filter((m) => m.error);
  if (errors.length) {
    const shown = full ? errors : errors.slice(0, 8);
    out.push(
      `## Failed measurements (${errors.length})`,
      shown.map((m) => `- ${m.key} ${m.series} ${m.mode}: ${m.error}`).join("\n") +
        (shown.length < errors.length ? `\n- ... ${errors.length - shown.length} more in the JSON` : ""),
    );
  }
  if (r.notes.length) out.push("## Notes", r.notes.map((n) => `- ${n}`).join("\n"));
  return `${out.join("\n\n")}\n`;
}
