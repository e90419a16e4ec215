#!/usr/bin/env bun
// examples/route.ts: route a real model's router configuration and show what happened.
//   bun examples/route.ts                          DeepSeek-V3 preset, 4096 generated tokens
//   bun examples/route.ts --model kimi-k2 --dtype bf16
//   bun examples/route.ts --logits logits.npy --topk 8 --json
// Run with --help for every option. Exit codes: 0 ok, 1 runtime error (file, device, library),
// 2 usage error; errors go to stderr as one message that says what to do, without a stack trace.
import { writeFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import {
  backendNames,
  createRouter,
  DeviceBuffer,
  DeviceEvent,
  type Dtype,
  deviceCount,
  deviceInfo,
  encodeNpy,
  encodeSafetensors,
  type Logits,
  type LogitsTensor,
  libraryInfo,
  NoDeviceError,
  NotBuiltError,
  type Router,
  readLogitsFile,
  synchronize,
  TopkSigmoidError,
  toLogits,
  WrongArchError,
} from "../mod.ts";
import { generateBias, generateLogits } from "./lib/generate.ts";
import { defaultPreset, findPreset, type Preset, presets } from "./lib/presets.ts";
import { extremes, firstRoutes, formatMs, loadMap, loadStats, painter, stripAnsi, wantColor } from "./lib/report.ts";

/** A mistake in the command line: printed with a pointer to --help, exit code 2. */
class UsageError extends Error {}

const DEFAULT_TOKENS = 4096;
const DEFAULT_SEED = 42;
const MAX_GENERATED_ELEMENTS = 1 << 26; // 64 Mi logits (256 MiB as fp32)
const TIME_BUDGET_MS = 400;
const SHOWN_TOKENS = 4;

const presetLines = [
  "  name          experts  top-k  bias  renormalize  scale  model",
  ...presets.map(
    (p) =>
      `  ${p.name.padEnd(12)} ${String(p.experts).padStart(8)} ${String(p.topk).padStart(6)}  ${(p.bias ? "yes" : "no").padEnd(4)}` +
      `  ${(p.renormalize ? "yes" : "no").padEnd(11)} ${String(p.scale).padStart(6)}  ${p.title}`,
  ),
];

const help = `Usage: bun examples/route.ts [options]

Routes tokens with a real MoE model's sigmoid router (fused sigmoid + top-k) and prints the
backend and device, the time per call and a picture of the routing.

Options:
  -m, --model NAME     router preset (default ${defaultPreset}); see below
  -t, --tokens N       tokens to generate (default ${DEFAULT_TOKENS}); with --logits: route the first N rows
  -k, --topk N         experts per token, overriding the preset's; required with --logits
                       and no --model
  -d, --dtype TYPE     f32, f16 or bf16 (default f32 for generated logits; with --logits the file's
                       type, converted when given; bf16 bits saved in an .npy file as '<u2',
                       '<i2' or '<V2' need --dtype bf16: NumPy has no bfloat16)
  -b, --backend NAME   ${backendNames.join(", ")} (default auto: the best kernel for this machine)
  -l, --logits FILE    route logits from a NumPy .npy or safetensors file, shape [tokens, experts],
                       fp32, fp16 or bf16; without --model, E comes from the file, k from --topk
      --tensor NAME    safetensors: the tensor to read (default: the only 2-D tensor)
      --seed N         seed of the generated logits and correction bias (default ${DEFAULT_SEED})
      --save FILE      also write the logits that are routed to FILE (.npy or .safetensors)
      --json           print one JSON object (backend, weights, indices, load, timing) instead
  -h, --help           show this help

Presets (router settings from each model's config.json):
${presetLines.join("\n")}
  A preset with a bias uses a seeded, generated correction bias (real weights are not downloaded).

Examples:
  bun examples/route.ts
  bun examples/route.ts --model kimi-k2 --tokens 16384 --dtype bf16
  bun examples/route.ts --tokens 256 --save /tmp/logits.npy
  bun examples/route.ts --logits /tmp/logits.npy --topk 8
  bun examples/route.ts --logits r.safetensors --tensor layers.3.logits --model glm-4.5 --json

Environment: NO_COLOR turns colour off (FORCE_COLOR=1 forces it); TOPK_SIGMOID_LIB (a path)
or TOPK_SIGMOID_VARIANT (host, cuda, hip) picks the native library.
Exit status: 0 done, 1 a file, device or library problem, 2 a mistake in the options.`;

const dtypeAliases: Record<string, Dtype> = {
  f32: "f32",
  fp32: "f32",
  float32: "f32",
  f16: "f16",
  fp16: "f16",
  float16: "f16",
  half: "f16",
  bf16: "bf16",
  bfloat16: "bf16",
};

interface Options {
  preset: Preset | undefined;
  tokens: number | undefined;
  topk: number | undefined;
  dtype: Dtype | undefined;
  backend: (typeof backendNames)[number];
  logits: string | undefined;
  tensor: string | undefined;
  seed: number;
  save: string | undefined;
  json: boolean;
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max)
    throw new UsageError(`${flag} ${JSON.stringify(text)}: expected a whole number from ${min} to ${max}`);
  return value;
}

function parseOptions(argv: string[]): Options | "help" {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        model: { type: "string", short: "m" },
        tokens: { type: "string", short: "t" },
        topk: { type: "string", short: "k" },
        dtype: { type: "string", short: "d" },
        backend: { type: "string", short: "b" },
        logits: { type: "string", short: "l" },
        tensor: { type: "string" },
        seed: { type: "string" },
        save: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  }
  try {
    parsed = parse();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const v = parsed.values;
  if (v.help) return "help";
  let preset: Preset | undefined;
  if (v.model !== undefined) {
    preset = findPreset(v.model);
    if (!preset)
      throw new UsageError(
        `unknown model ${JSON.stringify(v.model)}; choose one of: ${presets.map((p) => p.name).join(", ")}`,
      );
  } else if (v.logits === undefined) {
    preset = findPreset(defaultPreset);
  }
  let dtype: Dtype | undefined;
  if (v.dtype !== undefined) {
    dtype = dtypeAliases[v.dtype.toLowerCase()];
    if (!dtype) throw new UsageError(`--dtype ${JSON.stringify(v.dtype)}: use f32, f16 or bf16`);
  }
  if (v.backend !== undefined && !(backendNames as readonly string[]).includes(v.backend))
    throw new UsageError(`--backend ${JSON.stringify(v.backend)}: use one of ${backendNames.join(", ")}`);
  if (v.tensor !== undefined && v.logits === undefined)
    throw new UsageError("--tensor names a tensor in a safetensors file: use it with --logits FILE");
  if (v.save !== undefined && !/\.(npy|safetensors)$/i.test(v.save))
    throw new UsageError(`--save ${JSON.stringify(v.save)}: the file name must end in .npy or .safetensors`);
  const topk = v.topk === undefined ? undefined : integer("--topk", v.topk, 1, 32);
  if (v.logits !== undefined && !preset && topk === undefined)
    throw new UsageError(
      "--logits without --model needs --topk N (experts per token, e.g. --topk 8), or a preset with --model NAME",
    );
  return {
    preset,
    tokens: v.tokens === undefined ? undefined : integer("--tokens", v.tokens, 1, 1 << 30),
    topk,
    dtype,
    backend: (v.backend ?? "auto") as Options["backend"],
    logits: v.logits,
    tensor: v.tensor,
    seed: v.seed === undefined ? DEFAULT_SEED : integer("--seed", v.seed, 0, 2 ** 31 - 1),
    save: v.save,
    json: v.json === true,
  };
}

interface Input {
  logits: Logits;
  dtype: Dtype;
  tokens: number;
  experts: number;
  source: Record<string, unknown>;
  /** One line describing where the logits came from. */
  describe: string;
}

function loadInput(o: Options): Input {
  if (o.logits === undefined) {
    const preset = o.preset as Preset;
    const tokens = o.tokens ?? DEFAULT_TOKENS;
    const limit = Math.floor(MAX_GENERATED_ELEMENTS / preset.experts);
    if (tokens > limit)
      throw new UsageError(
        `--tokens ${tokens}: at most ${limit} generated tokens for ${preset.experts} experts; route a larger file with --logits`,
      );
    const dtype = o.dtype ?? "f32";
    const values = generateLogits(tokens, preset.experts, o.seed);
    return {
      logits: dtype === "f32" ? values : toLogits(values, dtype),
      dtype,
      tokens,
      experts: preset.experts,
      source: { kind: "generated", seed: o.seed },
      describe: `generated (seed ${o.seed}, skewed normal)`,
    };
  }
  const file: LogitsTensor = readLogitsFile(o.logits, { dtype: o.dtype, tensor: o.tensor });
  if (file.tokens === 0)
    throw new TopkSigmoidError(
      `${o.logits}: the file holds 0 tokens (shape [${file.shape.join(", ")}]); save logits with at least one row`,
    );
  if (o.preset && file.experts !== o.preset.experts)
    throw new UsageError(
      `${o.logits} has ${file.experts} experts per token, but --model ${o.preset.name} has ${o.preset.experts}; ` +
        `pick the matching preset, or drop --model and pass --topk`,
    );
  let tokens = file.tokens;
  let logits = file.data;
  if (o.tokens !== undefined) {
    if (o.tokens > file.tokens)
      throw new UsageError(`--tokens ${o.tokens}: ${o.logits} holds only ${file.tokens} tokens`);
    tokens = o.tokens;
    logits = logits.subarray(0, tokens * file.experts);
  }
  const format = file.name === undefined ? "npy" : "safetensors";
  const what = [
    `${basename(o.logits)} (${format}${file.name !== undefined ? ` tensor ${file.name}` : ""}, stored ${file.storedAs}`,
    `shape [${file.shape.join(", ")}]${file.convertedFrom ? `, converted ${file.convertedFrom} -> ${file.dtype}` : ""})`,
  ].join(", ");
  return {
    logits,
    dtype: file.dtype,
    tokens,
    experts: file.experts,
    source: {
      kind: "file",
      path: o.logits,
      format,
      tensor: file.name ?? null,
      storedAs: file.storedAs,
      shape: file.shape,
      convertedFrom: file.convertedFrom ?? null,
    },
    describe: what,
  };
}

interface Timing {
  medianMs: number;
  calls: number;
  includesCopies: boolean;
  /** GPU backends: the kernel alone (routeDevice between device events), per call. */
  kernelMs?: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Warm-up, then the median of as many route() calls as fit in the time budget (5 to 200). */
function time(router: Router, input: Input, out: { weights: Float32Array; indices: Int32Array }): Timing {
  const opts = { tokens: input.tokens, out };
  router.route(input.logits, opts);
  let start = performance.now();
  router.route(input.logits, opts);
  const first = performance.now() - start;
  const calls = Math.max(5, Math.min(200, Math.floor(TIME_BUDGET_MS / Math.max(first, 1e-3))));
  const samples: number[] = [first];
  for (let i = 1; i < calls; i++) {
    start = performance.now();
    router.route(input.logits, opts);
    samples.push(performance.now() - start);
  }
  const timing: Timing = { medianMs: median(samples), calls, includesCopies: router.backend !== "host" };
  if (router.backend !== "host") timing.kernelMs = timeKernel(router, input, calls);
  return timing;
}

/** GPU only: logits already on the device, device outputs, timed with device events. */
function timeKernel(router: Router, input: Input, calls: number): number {
  const outBytes = input.tokens * router.topk * 4;
  using logits = DeviceBuffer.from(input.logits);
  using weights = DeviceBuffer.alloc(outBytes);
  using indices = DeviceBuffer.alloc(outBytes);
  using begin = DeviceEvent.create();
  using end = DeviceEvent.create();
  const out = { weights, indices };
  router.routeDevice(logits, input.tokens, out);
  synchronize();
  begin.record();
  for (let i = 0; i < calls; i++) router.routeDevice(logits, input.tokens, out);
  end.record();
  return end.elapsedSince(begin) / calls;
}

function deviceLine(router: Router): { text: string; json: Record<string, unknown> } {
  const lib = libraryInfo();
  const library = lib.path.replace(`${process.cwd()}/`, "");
  const gpus = deviceCount();
  if (router.backend === "host") {
    const cpus = navigator.hardwareConcurrency;
    const why =
      gpus > 0
        ? `--backend host; GPU ${deviceInfo().name} present`
        : lib.builtWith.cuda || lib.builtWith.hip
          ? "no GPU found"
          : "host-only build";
    return {
      text: `CPU, ${cpus} threads (${why}) · ${library}`,
      json: { kind: "host", cpuThreads: cpus, reason: why, library: lib.path, variant: lib.variant },
    };
  }
  const info = deviceInfo();
  return {
    text: `${info.name}, ${info.arch}, device ${info.ordinal} · ${library}`,
    json: { kind: "gpu", ...info, library: lib.path, variant: lib.variant },
  };
}

function save(path: string, input: Input, o: Options): void {
  const shape = [input.tokens, input.experts];
  const bytes = path.toLowerCase().endsWith(".npy")
    ? encodeNpy(input.logits, shape, input.dtype)
    : encodeSafetensors(
        { router_logits: { data: input.logits, dtype: input.dtype, shape } },
        { producer: "topk-sigmoid examples/route.ts", model: o.preset?.name ?? "", seed: String(o.seed) },
      );
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new TopkSigmoidError(`--save ${path}: cannot write it (${(e as Error).message}); check the directory`);
  }
}

function main(argv: string[]): void {
  const o = parseOptions(argv);
  if (o === "help") {
    console.log(help);
    return;
  }
  const input = loadInput(o);
  const topk = o.topk ?? (o.preset as Preset).topk;
  if (topk > input.experts)
    throw new UsageError(`--topk ${topk}: must be at most the number of experts (${input.experts})`);
  const preset = o.preset;
  const bias = preset?.bias ? generateBias(input.experts, o.seed) : undefined;
  if (o.save) save(o.save, input, o);
  using router = createRouter({
    experts: input.experts,
    topk,
    dtype: input.dtype,
    bias,
    renormalize: preset?.renormalize ?? false,
    scale: preset?.scale ?? 1,
    backend: o.backend,
  });
  const out = { weights: new Float32Array(input.tokens * topk), indices: new Int32Array(input.tokens * topk) };
  const timing = time(router, input, out);
  const result = router.route(input.logits, { tokens: input.tokens, out });
  const stats = loadStats(result.indices, input.tokens * topk, input.experts);
  const device = deviceLine(router);

  if (o.json) {
    const rows = <T extends Float32Array | Int32Array>(a: T) =>
      Array.from({ length: input.tokens }, (_, t) => Array.from(a.subarray(t * topk, (t + 1) * topk)));
    const report = {
      model: preset?.name ?? null,
      experts: input.experts,
      topk,
      dtype: input.dtype,
      tokens: input.tokens,
      renormalize: preset?.renormalize ?? false,
      scale: preset?.scale ?? 1,
      bias: bias ? { kind: "generated", seed: o.seed, values: Array.from(bias) } : null,
      logits: input.source,
      saved: o.save ?? null,
      backend: router.backend,
      device: device.json,
      timing,
      load: Array.from(stats.load),
      balance: {
        meanLoad: stats.mean,
        maxOverMean: stats.max / stats.mean,
        minOverMean: stats.min / stats.mean,
        idleExperts: stats.idle,
      },
      weights: rows(result.weights),
      indices: rows(result.indices),
    };
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }

  const paint = painter(wantColor());
  const flags = [
    `${input.experts} experts`,
    `top ${topk}${preset && o.topk !== undefined && o.topk !== preset.topk ? ` (preset: ${preset.topk})` : ""}`,
    bias ? "correction bias (generated, seeded)" : "no bias",
    ...(preset?.renormalize ? ["renormalize"] : []),
    ...((preset?.scale ?? 1) !== 1 ? [`scale ${preset?.scale}`] : []),
  ];
  const label = (s: string) => paint.dim(s.padEnd(9));
  // "  label     text", wrapped at 100 columns under the text: at " · " separators first, else at spaces.
  const field = (name: string, text: string, width = 100): string => {
    const room = width - 12;
    const visible = (t: string) => stripAnsi(t).length;
    const lines: string[] = [];
    let line = "";
    const add = (piece: string, joiner: string) => {
      if (line && visible(line) + joiner.length + visible(piece) > room) {
        lines.push(joiner === " · " ? `${line} ·` : line);
        line = piece;
      } else line = line ? `${line}${joiner}${piece}` : piece;
    };
    for (const chunk of text.split(" · ")) {
      if (visible(chunk) <= room) add(chunk, " · ");
      else for (const [i, word] of chunk.split(" ").entries()) add(word, i === 0 ? " · " : " ");
    }
    lines.push(line);
    return lines.map((l, i) => `  ${i === 0 ? label(name) : " ".repeat(9)} ${l}`).join("\n");
  };
  const perSecond = input.tokens / (timing.medianMs / 1000);
  const lines = [
    paint.bold(
      `topk-sigmoid route · ${preset ? `${preset.title} (--model ${preset.name})` : `${input.experts} experts from a file`}`,
    ),
    field("router", flags.join(" · ")),
    field(
      "logits",
      `${input.tokens} token${input.tokens === 1 ? "" : "s"} x ${input.experts} experts · ${input.dtype} · ${input.describe}`,
    ),
    field("backend", `${paint.bold(router.backend)} · ${device.text}`),
    field(
      "time",
      `${paint.bold(formatMs(timing.medianMs))} per route() call (median of ${timing.calls} after a warm-up;` +
        ` ${(perSecond / 1e6).toFixed(2)} M tokens/s${timing.includesCopies ? "; includes host<->device copies" : ""})`,
    ),
  ];
  if (timing.kernelMs !== undefined)
    lines.push(
      field("kernel", `${formatMs(timing.kernelMs)} per call on the device (routeDevice, timed with device events)`),
    );
  if (bias) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const b of bias) [lo, hi] = [Math.min(lo, b), Math.max(hi, b)];
    lines.push(
      field(
        "bias",
        `seeded stand-in for the model's e_score_correction_bias (not downloaded): seed ${o.seed},` +
          ` values ${lo.toFixed(3)}..${hi.toFixed(3)}`,
      ),
    );
  }
  if (preset?.caveat) lines.push(field("note", preset.caveat));
  if (o.save) lines.push(field("saved", `logits to ${o.save}`));
  lines.push(
    "",
    paint.bold("expert load") +
      paint.dim(`  tokens per expert, 64 a row; full block = busiest (${stats.max}), · = idle`) +
      (paint.hot("") ? paint.dim(", ") + paint.hot("yellow") + paint.dim(" = 2x mean or more") : ""),
    ...loadMap(stats, paint),
    "",
    ...extremes(stats, 3, paint),
    "",
    field(
      "balance",
      `max/mean ${paint.bold((stats.max / stats.mean).toFixed(2))} · min/mean ${(stats.min / stats.mean).toFixed(2)}` +
        ` · idle experts ${paint.bold(String(stats.idle))} of ${input.experts} · mean load` +
        ` ${stats.mean.toFixed(1)} tokens · (${input.tokens} tokens x ${topk} / ${input.experts} experts)`,
    ),
    "",
    paint.bold(`first ${Math.min(SHOWN_TOKENS, input.tokens)} tokens`) +
      paint.dim("  expert weight, best first (weights exclude the bias)"),
    ...firstRoutes(result.weights, result.indices, topk, input.tokens, input.experts, SHOWN_TOKENS, paint, 8),
  );
  console.log(lines.join("\n"));
}

const hintFor = (e: TopkSigmoidError): string => {
  if (e instanceof NotBuiltError || e instanceof NoDeviceError || e instanceof WrongArchError)
    return "\n(--backend auto, the default, picks a kernel that runs on this machine; --backend host always does)";
  return "";
};

// stdout closed early (e.g. piped into head): stop quietly.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
  if (e.code !== "EPIPE") throw e;
});

try {
  main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError) {
    console.error(`route.ts: ${e.message}\nRun 'bun examples/route.ts --help' for the options.`);
    process.exitCode = 2;
  } else if (e instanceof TopkSigmoidError) {
    console.error(`route.ts: ${e.message}${hintFor(e)}`);
    process.exitCode = 1;
  } else if ((e as NodeJS.ErrnoException).code === "EPIPE") {
    // stdout closed early (e.g. piped into head): nothing left to say.
  } else {
    throw e; // a bug: keep the stack trace
  }
}
