// bench/lib/torch.ts: runs bench/torch_peer.py once per bench run (Bun.spawn, JSON on stdin,
// JSON on stdout, its progress passed through on stderr) and turns its reply into Measurements.
import { join } from "node:path";
import type { BenchOptions } from "./options.ts";
import { type Config, configKey } from "./plan.ts";
import type { Measurement, TorchInfo } from "./results.ts";
import { callsFor, estimateUs, slotsFor, workingSetBytes } from "./rotation.ts";

interface PeerTiming {
  us?: number;
  samples_us?: number[];
  calls?: number;
  slots?: number;
  error?: string;
}
/** One line of the peer's JSON Lines reply (see bench/torch_peer.py). */
interface PeerLine {
  type?: "info" | "copy" | "result" | "done";
  error?: string;
  torch?: string;
  cuda?: string | null;
  python?: string;
  device?: string;
  l2_bytes?: number | null;
  tb_per_s?: number;
  key?: string;
  graph?: PeerTiming;
  eager?: PeerTiming;
  truncated?: boolean;
  elapsed_s?: number;
}

export interface TorchRun {
  info: TorchInfo;
  copyTBps: number | null;
  l2Bytes: number | null;
  measurements: Measurement[];
  notes: string[];
}

export interface TorchJob {
  key: string;
  experts: number;
  topk: number;
  tokens: number;
  dtype: string;
  bias: boolean;
  renormalize: boolean;
  scale: number;
  slots: number;
  /** Calls per graph-replay sample (a multiple of slots). */
  calls: number;
  /** Calls per plain-eager sample: at most EAGER_MAX_CALLS (Python dispatch dominates small T). */
  eager_calls: number;
}

/** Plain eager runs at ~50 us of Python per call: keep its samples short. */
export const EAGER_MAX_CALLS = 64;

/** The peer's job for a config: the same rotation as our kernels, calls sized for PyTorch's speed. */
export function torchJob(c: Config, o: BenchOptions): TorchJob {
  const slots = slotsFor(c, o);
  const calls = callsFor(slots, estimateUs(c, "torch"), o);
  return { key: configKey(c), ...c, slots, calls, eager_calls: Math.min(calls, EAGER_MAX_CALLS) };
}

export const peerPath = join(import.meta.dir, "..", "torch_peer.py");

async function readAll(stream: ReadableStream<Uint8Array> | undefined): Promise<string> {
  return stream ? await new Response(stream).text() : "";
}

/**
 * Runs the peer. `probe` only asks for versions (the dry run). Never throws: a missing python,
 * torch or CUDA, a crash or a timeout come back as info.ok = false with the reason.
 */
export async function runTorchPeer(
  configs: Config[],
  o: BenchOptions,
  probe: boolean,
  log: (m: string) => void,
): Promise<TorchRun> {
  const request = {
    probe,
    copy: true,
    repeats: o.repeats,
    warmup: o.warmup,
    modes: ["graph", "eager"],
    seed: o.seed,
    deadline_s: Math.max(10, o.torchTimeoutS - 20),
    jobs: probe ? [] : configs.map((c) => torchJob(c, o)),
  };
  const fail = (error: string): TorchRun => ({
    info: { ok: false, error },
    copyTBps: null,
    l2Bytes: null,
    measurements: [],
    notes: [`PyTorch peer: ${error}`],
  });
  const t0 = performance.now();
  let proc: ReturnType<typeof Bun.spawn<"pipe", "pipe", "inherit">>;
  try {
    proc = Bun.spawn([o.python, peerPath], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
  } catch (e) {
    return fail(`could not start ${o.python}: ${(e as Error).message}`);
  }
  proc.stdin.write(JSON.stringify(request));
  await proc.stdin.end();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill();
  }, o.torchTimeoutS * 1000);
  const [text, code] = await Promise.all([readAll(proc.stdout), proc.exited]);
  clearTimeout(timer);
  const lines: PeerLine[] = [];
  for (const raw of text.split("\n")) {
    if (!raw.trim()) continue;
    try {
      lines.push(JSON.parse(raw) as PeerLine);
    } catch {
      // not ours (a library printing to stdout): ignore
    }
  }
  const info = lines.find((l) => l.type === "info");
  const done = lines.find((l) => l.type === "done");
  const errorLine = lines.find((l) => l.error && l.type === undefined);
  if (!info) {
    const why =
      errorLine?.error ??
      (timedOut
        ? `killed after --torch-timeout ${o.torchTimeoutS} s`
        : `exit code ${code}, no JSON on stdout${text ? `: ${text.slice(0, 300)}` : ""}`);
    return { ...fail(why), info: { ok: false, error: why, torch: errorLine?.torch, python: errorLine?.python } };
  }
  const notes: string[] = [];
  if (timedOut) notes.push(`PyTorch peer killed after --torch-timeout ${o.torchTimeoutS} s: results so far kept`);
  else if (!done) notes.push(`PyTorch peer ended early (exit code ${code})${errorLine ? `: ${errorLine.error}` : ""}`);
  if (done?.truncated) notes.push("PyTorch peer stopped at its deadline: some torch columns are empty");
  const copy = lines.find((l) => l.type === "copy");
  if (copy?.error) notes.push(`copy bandwidth failed: ${copy.error}`);
  const byKey = new Map(configs.map((c) => [configKey(c), c]));
  const measurements: Measurement[] = [];
  for (const r of lines) {
    if (r.type !== "result" || !r.key) continue;
    const config = byKey.get(r.key);
    if (!config) continue;
    for (const [mode, t] of [
      ["graph", r.graph],
      ["eager", r.eager],
    ] as const) {
      if (!t && !r.error) continue;
      const slots = t?.slots ?? slotsFor(config, o);
      measurements.push({
        key: r.key,
        config,
        series: "torch",
        mode,
        us: t?.us ?? Number.NaN,
        samplesUs: t?.samples_us ?? [],
        callsPerSample: t?.calls ?? 0,
        slots,
        workingSetBytes: workingSetBytes(config, slots),
        ...(r.error || t?.error ? { error: r.error ?? t?.error } : {}),
      });
    }
  }
  const elapsed = done?.elapsed_s ?? (performance.now() - t0) / 1000;
  log(
    `PyTorch ${info.torch} (CUDA ${info.cuda}) on ${info.device}: ${measurements.length} timings in ${elapsed.toFixed(0)} s`,
  );
  return {
    info: {
      ok: true,
      torch: info.torch,
      cuda: info.cuda ?? null,
      device: info.device,
      python: info.python,
      elapsedS: elapsed,
    },
    copyTBps: copy?.tb_per_s ?? null,
    l2Bytes: info.l2_bytes ?? null,
    measurements,
    notes,
  };
}
