// bench/lib/results.ts: the JSON written to bench-<date>.json (schema "topk-sigmoid-bench/1").
// Flat and self-describing: every timing is one Measurement; sections refer to configurations by
// their key; targets carry their verdict. bench/README.md documents every field.
import type { Config, Mode, SectionId, Series } from "./plan.ts";

export const SCHEMA = "topk-sigmoid-bench/1";

export interface Measurement {
  /** configKey(config), e.g. "E256-k8-T65536-bf16-bias". */
  key: string;
  config: Config;
  /** warp | gfx9 | ck | auto | host | torch. */
  series: Series;
  /** graph | b2b | eager (PyTorch plain eager) | wall (host backend). */
  mode: Mode;
  /** Median over samples, microseconds per call. */
  us: number;
  /** Every timed sample, microseconds per call (sample time / callsPerSample). */
  samplesUs: number[];
  callsPerSample: number;
  /** Rotating input buffers (1 = no rotation). */
  slots: number;
  /** slots x (input + outputs) bytes. */
  workingSetBytes: number;
  /** For auto: the backend the dispatcher ran. */
  ran?: string;
  /** Set when this measurement failed; us is NaN (written as null). */
  error?: string;
}

export interface Floors {
  /** Empty one-block kernel, per launch, N captured in a graph (median of samples). */
  launchGraphUs: number | null;
  /** Empty kernel, plain launches back to back (host launch rate), per launch. */
  launchB2bUs: number | null;
  launchSamplesUs: number[];
  /** Device-to-device copy bandwidth, TB/s counting read + write. */
  copyTBps: number | null;
  copySource: "torch" | "option" | null;
  /** L2 size reported by PyTorch (bytes), for reference. */
  l2Bytes: number | null;
}

export interface TargetResult {
  id: string;
  description: string;
  /** What was measured, in the unit of threshold. */
  value: number | null;
  threshold: number;
  /** "<=" or ">=" (value op threshold means MET). */
  op: "<=" | ">=";
  unit: string;
  status: "MET" | "MISSED" | "NOT MEASURED";
  detail: string;
}

export interface OverheadResult {
  tokens: number;
  experts: number;
  topk: number;
  /** Per-call medians (us) of each tinybench task: the median over the rounds of each round's p50 (p99). */
  tasks: { name: string; usPerCall: number; p99UsPerCall: number; samples: number; callsPerIteration: number }[];
  /** Rounds of the four tasks, forward and reversed in turn (bench/lib/overhead.ts says why). */
  rounds?: number;
  /** Each round's routeDevice(fast) p50 - raw symbol p50, us per call. */
  differencesUs?: number[];
  /** The median of differencesUs: routeDevice(warp) - raw topk_sigmoid_warp, us per call. */
  differenceUs: number | null;
}

export interface HostRouteResult {
  tokens: number;
  experts: number;
  topk: number;
  dtype: string;
  /** router.route() on the host backend (zod check included), us per call, tinybench median. */
  routeUs: number;
  routeP99Us: number;
  /** The raw topk_sigmoid_host symbol on the same arrays, us per call. */
  rawUs: number;
}

export interface TorchInfo {
  ok: boolean;
  error?: string;
  torch?: string;
  cuda?: string | null;
  device?: string;
  python?: string;
  elapsedS?: number;
}

export interface BenchResults {
  schema: typeof SCHEMA;
  /** ISO time the run started. */
  date: string;
  command: string;
  grid: "quick" | "full";
  dryRun: boolean;
  options: Record<string, unknown>;
  git: { commit: string | null; dirty: boolean | null };
  host: { bun: string; platform: string; cpus: number; cpuModel: string };
  library: { path: string; variant: string; deviceCount: number } | null;
  device: {
    name: string;
    arch: string;
    vendor: string;
    multiprocessors: number;
    totalMemory: number;
    fastBackend: string;
    dispatchBackend: string;
    /** Kernels launched as programmatic dependent launches (deviceInfo().dependentLaunch). */
    dependentLaunch: boolean;
  } | null;
  torch: TorchInfo | null;
  floors: Floors;
  /** Every configuration of the run, by key (configKey). */
  configs: Record<string, Config>;
  /** Per section, in run order: the config keys it covers and its run time in seconds. */
  sections: { id: SectionId; title: string; keys: string[]; seconds: number }[];
  measurements: Measurement[];
  overhead: OverheadResult | null;
  hostRoute: HostRouteResult[];
  targets: TargetResult[];
  /** What a dry run would have measured. */
  plan?: { section: SectionId; configs: number; measurements: number; torchJobs: number; estimatedS: number }[];
  notes: string[];
  elapsedS: number;
}
