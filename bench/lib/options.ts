// bench/lib/options.ts: command-line options of bench/run.ts (no dependencies; --help prints them).
import { join } from "node:path";
import { type Grid, type SectionId, sectionIds } from "./plan.ts";

export interface BenchOptions {
  grid: Grid;
  outDir: string;
  torch: boolean;
  dryRun: boolean;
  /** Timed samples per measurement (each sample = one graph replay or one batch of R launches). */
  repeats: number;
  /** Untimed graph replays / batches before the timed ones. */
  warmup: number;
  /** Aim for this many microseconds of GPU work per sample (sets R, the calls per sample). */
  sampleUs: number;
  /** Rotate inputs until the working set reaches this many MiB (L2 is 50-60 MB on H100/H200). */
  rotateMiB: number;
  /** At most this many rotating input buffers (and so calls per captured graph, at least). */
  maxSlots: number;
  /** At most this many calls per sample. */
  maxCalls: number;
  /** Host backend (wall clock) only for tokens <= this. */
  hostMaxTokens: number;
  /** Modes for our kernels; the targets use graph. */
  modes: ("graph" | "b2b")[];
  /** Sections to run (default all). */
  only: Set<SectionId>;
  python: string;
  torchTimeoutS: number;
  /** Copy bandwidth (TB/s, read + write) to use when the PyTorch script cannot measure it. */
  copyTBps: number | undefined;
  /** tinybench time budget per task, ms (section h). */
  tinybenchMs: number;
  /** Library seed for makeLogits / makeBias. */
  seed: number;
  /** Re-render the summary and chart from this results JSON; measure nothing. */
  reportFrom: string | undefined;
}

export const usage = `bun run bench [options]      (bun bench/run.ts)

Grid:
  --full                 everything (default): floors, chart grid, 40-config grid, T<=256 grid,
                         bandwidth, never-slower-than-torch sweep, TS call overhead
  --quick                a small grid of every section for smoke runs (< 1 min on a GPU)
  --only a,b,...         run only these sections: ${sectionIds.join(", ")}
  --dry-run              no GPU needed: host-side parts only (host route latency, the PyTorch
                         probe), prints the plan and what it would measure, writes the outputs

Output:
  --out DIR              results folder (default bench/results/): bench-<date>.json,
                         summary-<date>.md, chart.svg. On the GPU machine: --out $OUT
  --report FILE.json     measure nothing: re-evaluate the targets and rewrite the summary
                         and chart.svg (into --out) from an earlier run's JSON

PyTorch peer (bench/torch_peer.py, also measures the copy bandwidth):
  --no-torch             do not run it (bytes floor only with --copy-tbps)
  --python PATH          interpreter (default: python3)
  --torch-timeout S      kill the peer after S seconds, keeping its results so far (240)
  --copy-tbps X          copy bandwidth (TB/s, read+write) when the peer cannot measure it

Timing (defaults: full / quick):
  --repeats N            timed samples per measurement, median reported (15 / 7)
  --warmup N             untimed samples first (3 / 2)
  --sample-us US         GPU time aimed at per sample; sets R = calls per sample (200)
  --rotate-mib M         rotate inputs until the working set is >= M MiB, beyond L2 (128)
  --max-slots N          most rotating input buffers (256)
  --max-calls N          most calls per sample (512)
  --modes graph,b2b      modes for our kernels (both)
  --host-max-tokens T    host backend (wall clock) for T <= this (256)
  --tinybench-ms MS      tinybench time per task in section h (500 / 200)
  --seed N               input seed (1)
`;

export class UsageError extends Error {}

export function parseOptions(argv: string[], root: string): BenchOptions & { help: boolean } {
  const quick = argv.includes("--quick");
  const o: BenchOptions & { help: boolean } = {
    help: false,
    grid: quick ? "quick" : "full",
    outDir: join(root, "bench", "results"),
    torch: true,
    dryRun: false,
    repeats: quick ? 7 : 15,
    warmup: quick ? 2 : 3,
    sampleUs: 200,
    rotateMiB: 128,
    maxSlots: 256,
    maxCalls: 512,
    hostMaxTokens: 256,
    modes: ["graph", "b2b"],
    only: new Set(sectionIds),
    python: "python3",
    torchTimeoutS: 240,
    copyTBps: undefined,
    tinybenchMs: quick ? 200 : 500,
    seed: 1,
    reportFrom: undefined,
  };
  const positive = (name: string, v: string | undefined, integer = true): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
      throw new UsageError(`${name} needs a positive ${integer ? "integer" : "number"}, got ${v ?? "nothing"}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = () => argv[++i];
    switch (a) {
      case "--help":
      case "-h":
        o.help = true;
        break;
      case "--quick":
        break; // read above (it sets defaults)
      case "--full":
        if (quick) throw new UsageError("--full and --quick together");
        break;
      case "--dry-run":
        o.dryRun = true;
        break;
      case "--no-torch":
        o.torch = false;
        break;
      case "--out": {
        const v = next();
        if (!v) throw new UsageError("--out needs a folder");
        o.outDir = v;
        break;
      }
      case "--report": {
        const v = next();
        if (!v) throw new UsageError("--report needs a results JSON file");
        o.reportFrom = v;
        break;
      }
      case "--only": {
        const v = next() ?? "";
        const ids = v.split(",").filter(Boolean);
        const bad = ids.filter((id) => !sectionIds.includes(id as SectionId));
        if (ids.length === 0 || bad.length)
          throw new UsageError(`--only takes a comma list of ${sectionIds.join(", ")}; got ${v || "nothing"}`);
        o.only = new Set(ids as SectionId[]);
        break;
      }
      case "--modes": {
        const v = next() ?? "";
        const modes = v.split(",").filter(Boolean);
        if (modes.length === 0 || modes.some((m) => m !== "graph" && m !== "b2b"))
          throw new UsageError(`--modes takes graph, b2b or graph,b2b; got ${v || "nothing"}`);
        o.modes = [...new Set(modes)] as ("graph" | "b2b")[];
        break;
      }
      case "--python": {
        const v = next();
        if (!v) throw new UsageError("--python needs a path");
        o.python = v;
        break;
      }
      case "--repeats":
        o.repeats = positive(a, next());
        break;
      case "--warmup": {
        const v = next();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new UsageError(`--warmup needs an integer >= 0, got ${v}`);
        o.warmup = n;
        break;
      }
      case "--sample-us":
        o.sampleUs = positive(a, next(), false);
        break;
      case "--rotate-mib":
        o.rotateMiB = positive(a, next(), false);
        break;
      case "--max-slots":
        o.maxSlots = positive(a, next());
        break;
      case "--max-calls":
        o.maxCalls = positive(a, next());
        break;
      case "--host-max-tokens":
        o.hostMaxTokens = positive(a, next());
        break;
      case "--torch-timeout":
        o.torchTimeoutS = positive(a, next(), false);
        break;
      case "--copy-tbps":
        o.copyTBps = positive(a, next(), false);
        break;
      case "--tinybench-ms":
        o.tinybenchMs = positive(a, next(), false);
        break;
      case "--seed":
        o.seed = positive(a, next());
        break;
      default:
        throw new UsageError(`unknown option ${a} (--help lists them)`);
    }
  }
  if (o.maxCalls < o.maxSlots) o.maxCalls = o.maxSlots; // a graph must visit every slot once
  return o;
}
