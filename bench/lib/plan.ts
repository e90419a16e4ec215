// bench/lib/plan.ts: what the benchmark measures. Every section is a list of routing
// configurations and the backends/modes to time for each; run.ts walks them in order and a
// cache makes a configuration that appears in two sections run once.
import type { Dtype } from "../../mod.ts";

/** One routing problem. renormalize/scale are fixed for the whole run (see RENORMALIZE, SCALE). */
export interface Config {
  experts: number;
  topk: number;
  tokens: number;
  dtype: Dtype;
  bias: boolean;
  renormalize: boolean;
  scale: number;
}

/** Kernels of this project, as a router `backend` (fast = warp on NVIDIA, gfx9 on AMD gfx9). */
export type KernelBackend = "warp" | "gfx9" | "ck" | "auto";
/** Every series in the results: our kernels, the host backend (wall clock) and the PyTorch peer. */
export type Series = KernelBackend | "host" | "torch";
/**
 * graph: R calls captured in one CUDA graph, graph replays timed with device events.
 * b2b:   R plain launches (or PyTorch eager calls) enqueued back to back between device events.
 * eager: PyTorch only: R plain eager calls (Python dispatch included) between device events.
 * wall:  host backend, wall clock (performance.now) around synchronous calls.
 */
export type Mode = "graph" | "b2b" | "eager" | "wall";

export const RENORMALIZE = true;
export const SCALE = 1;

export type SectionId = "floors" | "chart" | "grid40" | "small" | "bandwidth" | "sweep" | "overhead";
export const sectionIds: readonly SectionId[] = [
  "floors",
  "chart",
  "grid40",
  "small",
  "bandwidth",
  "sweep",
  "overhead",
];

export interface Section {
  id: SectionId;
  letter: string;
  title: string;
  configs: Config[];
  /** Our backends to time ("fast" is resolved per device to warp or gfx9). */
  backends: ("fast" | "ck" | "auto")[];
  /** Also time the host backend (wall clock) for configs with tokens <= hostMaxTokens. */
  host: boolean;
  /** Also ask the PyTorch peer for these configs. */
  torch: boolean;
}

export const configKey = (c: Config): string =>
  `E${c.experts}-k${c.topk}-T${c.tokens}-${c.dtype}${c.bias ? "-bias" : ""}${c.renormalize ? "" : "-raw"}${c.scale === 1 ? "" : `-s${c.scale}`}`;

export const elemBytes = (dtype: Dtype): number => (dtype === "f32" ? 4 : 2);
export const inputBytes = (c: Config): number => c.tokens * c.experts * elemBytes(c.dtype);
export const outputBytes = (c: Config): number => c.tokens * c.topk * 8; // fp32 weights + int32 indices
/** Bytes the issue's floor counts: logits read + weights and indices written. */
export const floorBytes = (c: Config): number => inputBytes(c) + outputBytes(c);

const cfg = (experts: number, topk: number, tokens: number, dtype: Dtype, bias = false): Config => ({
  experts,
  topk,
  tokens,
  dtype,
  bias,
  renormalize: RENORMALIZE,
  scale: SCALE,
});

function cross<T>(...lists: T[][]): T[][] {
  return lists.reduce<T[][]>((acc, list) => acc.flatMap((prefix) => list.map((x) => [...prefix, x])), [[]]);
}

export type Grid = "quick" | "full";

/** (chart) time vs tokens, one panel per E, k=8 bf16: the picture of the whole range. */
function chartSection(grid: Grid): Section {
  const experts = grid === "full" ? [64, 128, 256, 384, 512] : [128, 256];
  const tokens = grid === "full" ? [1, 16, 64, 256, 1024, 4096, 16384, 65536] : [1, 256, 4096, 65536];
  return {
    id: "chart",
    letter: "b",
    title: "time vs tokens (k=8, bf16): chart.svg",
    configs: cross(experts, tokens).map(([e, t]) => cfg(e as number, 8, t as number, "bf16")),
    backends: ["fast", "ck", "auto"],
    host: true,
    torch: true,
  };
}

/** (d) the 40-config grid of the MI300X comparison: fast path vs ck vs PyTorch. */
function grid40Section(grid: Grid): Section {
  const experts = [64, 128];
  const tokens = grid === "full" ? [256, 512, 1024, 2048, 4096] : [256, 4096];
  const ks = grid === "full" ? [4, 8] : [8];
  const dts: Dtype[] = grid === "full" ? ["f16", "bf16"] : ["bf16"];
  return {
    id: "grid40",
    letter: "d",
    title: "40-config grid: E {64,128} x T {256..4096} x k {4,8} x {f16,bf16}",
    // dtype outermost: consecutive configs share their uploaded inputs.
    configs: cross<number | Dtype>(dts, experts, tokens, ks).map(([d, e, t, k]) =>
      cfg(e as number, k as number, t as number, d as Dtype),
    ),
    backends: ["fast", "ck", "auto"],
    host: false,
    torch: true,
  };
}

/** (e) the small-batch latency target: T <= 256, E <= 512, k <= 8, bf16. */
function smallSection(grid: Grid): Section {
  const experts = grid === "full" ? [8, 16, 32, 64, 128, 160, 256, 384, 512] : [64, 256, 512];
  const tokens = grid === "full" ? [1, 16, 64, 256] : [1, 256];
  const ks = grid === "full" ? [1, 4, 8] : [8];
  return {
    id: "small",
    letter: "e",
    title: "small batches: T {1,16,64,256} x E {8..512} x k {1,4,8}, bf16",
    configs: cross(experts, ks, tokens).map(([e, k, t]) => cfg(e as number, k as number, t as number, "bf16")),
    backends: ["fast", "ck", "auto"],
    host: true,
    torch: true,
  };
}

export const bandwidthExperts = [128, 256, 384, 512];
export const BANDWIDTH_TOKENS = 65536;

/** (f) the bandwidth target: T=65536, k=8, bf16, with and without bias (+ an f32 row, information only). */
function bandwidthSection(grid: Grid): Section {
  const experts = grid === "full" ? bandwidthExperts : [256];
  const configs = experts.flatMap((e) => [
    cfg(e, 8, BANDWIDTH_TOKENS, "bf16"),
    cfg(e, 8, BANDWIDTH_TOKENS, "bf16", true),
  ]);
  if (grid === "full") configs.push(cfg(256, 8, BANDWIDTH_TOKENS, "f32"));
  return {
    id: "bandwidth",
    letter: "f",
    title: "bandwidth: T=65536, k=8, bf16, with/without bias",
    configs,
    backends: ["fast", "ck", "auto"],
    host: false,
    torch: true,
  };
}

export const sweepExperts = [
  1, 2, 3, 5, 8, 16, 31, 32, 33, 60, 64, 72, 96, 128, 160, 192, 255, 256, 257, 320, 384, 448, 512, 640, 768, 1000, 1024,
];
export const sweepKs = [1, 2, 4, 8, 16, 32];
export const sweepSmallTExperts = [1, 8, 32, 64, 128, 256, 384, 512, 1024];
export const sweepSmallTKs = [1, 8, 32];

/** (g) never slower than PyTorch: E 1..1024 x k 1..32 at T=4096, and a T=1 subset, bf16, auto. */
function sweepSection(grid: Grid): Section {
  const experts = grid === "full" ? sweepExperts : [1, 33, 256, 1024];
  const ks = grid === "full" ? sweepKs : [1, 8];
  const configs: Config[] = [];
  for (const e of experts) for (const k of ks) if (k <= e) configs.push(cfg(e, k, 4096, "bf16"));
  const smallE = grid === "full" ? sweepSmallTExperts : [8, 1024];
  const smallK = grid === "full" ? sweepSmallTKs : [8];
  for (const e of smallE) for (const k of smallK) if (k <= e) configs.push(cfg(e, k, 1, "bf16"));
  return {
    id: "sweep",
    letter: "g",
    title: "never slower than PyTorch: E 1..1024 x k 1..32, T=4096 (+ T=1 subset), bf16",
    configs,
    backends: ["auto"],
    host: false,
    torch: true,
  };
}

/** The measured sections, in run order ((a) floors and (h) overhead are not config lists). */
export function plan(grid: Grid): Section[] {
  return [chartSection(grid), grid40Section(grid), smallSection(grid), bandwidthSection(grid), sweepSection(grid)];
}

/** Host-route latency sizes of (h): E=256, k=8, bf16. */
export const hostRouteTokens = (grid: Grid): number[] => (grid === "full" ? [1, 16, 256, 4096] : [1, 256]);
