// tests/cli.test.ts: examples/route.ts as a user runs it (a child `bun` process), and the
// embedding example examples/moe_layer.ts. Checks output, --json, --logits with .npy and
// safetensors files written here, --topk/--tokens/--dtype, and that every mistake gives a non-zero
// exit, one message on stderr that says what to do, and no stack trace.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { presets } from "../examples/lib/presets.ts";
import { createRouter, type Dtype, deviceCount, encodeNpy, encodeSafetensors, type Logits, toLogits } from "../mod.ts";

const root = join(import.meta.dir, "..");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a script under the same bun, colour-neutral environment unless overridden. */
async function bun(script: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const base: Record<string, string | undefined> = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined };
  const proc = Bun.spawn([process.execPath, script, ...args], {
    cwd: root,
    env: { ...base, ...env } as Record<string, string>,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}
const route = (args: string[], env?: Record<string, string | undefined>) => bun("examples/route.ts", args, env);

interface JsonReport {
  model: string | null;
  experts: number;
  topk: number;
  dtype: Dtype;
  tokens: number;
  renormalize: boolean;
  scale: number;
  bias: { kind: string; seed: number; values: number[] } | null;
  logits: Record<string, unknown>;
  backend: string;
  device: Record<string, unknown>;
  timing: { medianMs: number; calls: number; includesCopies: boolean };
  load: number[];
  balance: { maxOverMean: number; idleExperts: number };
  weights: number[][];
  indices: number[][];
}

async function routeJson(args: string[]): Promise<JsonReport> {
  const r = await route([...args, "--json"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const lines = r.stdout.trimEnd().split("\n");
  expect(lines.length).toBe(1); // one JSON object, nothing else on stdout
  return JSON.parse(r.stdout) as JsonReport;
}

/** Rows are valid routes: k distinct experts in range, finite weights. */
function expectValidRoutes(report: JsonReport) {
  expect(report.indices.length).toBe(report.tokens);
  expect(report.weights.length).toBe(report.tokens);
  for (let t = 0; t < report.tokens; t++) {
    const row = report.indices[t] as number[];
    expect(row.length).toBe(report.topk);
    expect(new Set(row).size).toBe(report.topk);
    for (const e of row) expect(e >= 0 && e < report.experts).toBe(true);
    for (const w of report.weights[t] as number[]) expect(Number.isFinite(w)).toBe(true);
  }
  expect(report.load.reduce((a, b) => a + b, 0)).toBe(report.tokens * report.topk);
}

/** A user error: exit code, a message on stderr that matches, nothing on stdout, no stack trace. */
function expectUserError(r: Run, code: number, message: RegExp) {
  expect(r.stdout).toBe("");
  expect(r.code).toBe(code);
  expect(r.stderr).toMatch(/^route\.ts: /);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stderr).not.toMatch(/Bun v\d/);
}

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "topk-cli-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("route.ts: the report", () => {
  test("default run: DeepSeek-V3, 4096 tokens, a readable report without colour when piped", async () => {
    const r = await route([]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = r.stdout;
    expect(out).toContain("DeepSeek-V3");
    expect(out).toContain("4096 tokens x 256 experts");
    expect(out).toMatch(/backend\s+\w+/);
    expect(out).toMatch(/per route\(\) call \(median of \d+ after a warm-up/);
    expect(out).toContain("correction bias (generated, seeded)");
    expect(out).toContain("renormalize");
    expect(out).toContain("scale 2.5");
    expect(out).toMatch(/expert load/);
    expect(out).toMatch(/busiest\s+e\d{3} █+/);
    expect(out).toMatch(/max\/mean \d+\.\d\d/);
    expect(out).toMatch(/idle experts \d+ of 256/);
    expect(out).toMatch(/first 4 tokens/);
    expect(out).toMatch(/^\s+t0\s+(e\d{3} \d\.\d{3}\s*){8}$/m);
    expect(out).not.toContain("\x1b["); // stdout is a pipe: no ANSI
    for (const line of out.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
  });

  test("colour: FORCE_COLOR turns it on, NO_COLOR keeps it off", async () => {
    expect((await route(["--tokens", "32"], { FORCE_COLOR: "1" })).stdout).toContain("\x1b[");
    expect((await route(["--tokens", "32"], { NO_COLOR: "1" })).stdout).not.toContain("\x1b[");
  });

  test("--help lists every option and preset, exit 0", async () => {
    const r = await route(["--help"]);
    expect(r.code).toBe(0);
    for (const flag of ["--model", "--tokens", "--topk", "--dtype", "--backend", "--logits", "--tensor", "--json"])
      expect(r.stdout).toContain(flag);
    for (const p of presets) expect(r.stdout).toContain(p.name);
  });
});

describe("route.ts: presets and options", () => {
  test.each(presets.map((p) => [p.name, p] as const))("--model %s --json", async (_, preset) => {
    const report = await routeJson(["--model", preset.name, "--tokens", "48"]);
    expect(report.model).toBe(preset.name);
    expect([report.experts, report.topk, report.tokens]).toEqual([preset.experts, preset.topk, 48]);
    expect([report.renormalize, report.scale]).toEqual([preset.renormalize, preset.scale]);
    expect(report.bias === null).toBe(!preset.bias);
    expect(report.backend).toBeString();
    expect(report.timing.medianMs).toBeGreaterThan(0);
    expectValidRoutes(report);
    if (preset.renormalize)
      for (const row of report.weights)
        expect(Math.abs(row.reduce((a, b) => a + b, 0) - preset.scale)).toBeLessThan(1e-5 * preset.scale);
  });

  test("the JSON matches routing the same generated logits through the API", async () => {
    const report = await routeJson(["--model", "glm-4.5", "--tokens", "40", "--seed", "7"]);
    const again = await routeJson(["--model", "glm-4.5", "--tokens", "40", "--seed", "7"]);
    expect(again.indices).toEqual(report.indices); // seeded: reproducible
    expect(again.weights).toEqual(report.weights);
    const other = await routeJson(["--model", "glm-4.5", "--tokens", "40", "--seed", "8"]);
    expect(other.indices).not.toEqual(report.indices);
  });

  test("--topk overrides the preset's k", async () => {
    const report = await routeJson(["--model", "kimi-k2", "--topk", "3", "--tokens", "20"]);
    expect([report.experts, report.topk]).toEqual([384, 3]);
    expectValidRoutes(report);
    const text = await route(["--model", "kimi-k2", "--topk", "3", "--tokens", "20"]);
    expect(text.stdout).toContain("top 3 (preset: 8)");
  });

  test.each(["f16", "bf16", "bfloat16"])("--dtype %s", async (dtype) => {
    const report = await routeJson(["--model", "llama-4", "--dtype", dtype, "--tokens", "16"]);
    expect(report.dtype).toBe(dtype === "bfloat16" ? "bf16" : (dtype as Dtype));
    expectValidRoutes(report);
  });

  test("--backend host gives the same bytes as the default backend (a GPU kernel where there is one)", async () => {
    const host = await routeJson(["--backend", "host", "--tokens", "300", "--dtype", "bf16"]);
    expect(host.backend).toBe("host");
    expect(host.timing.includesCopies).toBe(false);
    const auto = await routeJson(["--tokens", "300", "--dtype", "bf16"]);
    expect(auto.indices).toEqual(host.indices);
    expect(auto.weights).toEqual(host.weights);
  });
});

describe("route.ts: --logits files", () => {
  const tokens = 24;
  const experts = 96;
  const topk = 6;
  const values = Float32Array.from({ length: tokens * experts }, (_, i) => Math.sin(i * 0.37) * 2 + ((i * 7) % 13) / 9);

  /** What the API says for these logits (no bias, no renormalize, scale 1: as --logits without --model). */
  function direct(data: Logits, dtype: Dtype, rows = tokens, k = topk) {
    using router = createRouter({ experts, topk: k, dtype, backend: "host" });
    const r = router.route(data.subarray(0, rows * experts) as Logits);
    const split = <T extends Float32Array | Int32Array>(a: T) =>
      Array.from({ length: rows }, (_, t) => Array.from(a.subarray(t * k, (t + 1) * k)));
    return { weights: split(r.weights), indices: split(r.indices) };
  }

  test.each(["f32", "f16"] as const)(".npy %s routes exactly like the array", async (dtype) => {
    const data = toLogits(values, dtype);
    const path = join(dir, `logits-${dtype}.npy`);
    writeFileSync(path, encodeNpy(data, [tokens, experts], dtype));
    const report = await routeJson(["--logits", path, "--topk", String(topk)]);
    expect(report.model).toBeNull();
    expect([report.tokens, report.experts, report.topk, report.dtype]).toEqual([tokens, experts, topk, dtype]);
    expect(report.logits).toMatchObject({ kind: "file", format: "npy", shape: [tokens, experts] });
    expect({ weights: report.weights, indices: report.indices }).toEqual(direct(data, dtype));
  });

  test(".npy of bf16 bits ('<u2') needs --dtype bf16, and then routes exactly", async () => {
    const data = toLogits(values, "bf16");
    const path = join(dir, "logits-bf16.npy");
    writeFileSync(path, encodeNpy(data, [tokens, experts], "bf16"));
    expectUserError(await route(["--logits", path, "--topk", "2"]), 1, /--dtype bf16/);
    const report = await routeJson(["--logits", path, "--topk", String(topk), "--dtype", "bf16"]);
    expect({ weights: report.weights, indices: report.indices }).toEqual(direct(data, "bf16"));
  });

  test("safetensors: the only 2-D tensor by default, --tensor to choose, bf16", async () => {
    const data = toLogits(values, "bf16");
    const path = join(dir, "router.safetensors");
    writeFileSync(
      path,
      encodeSafetensors({
        "layers.0.router_logits": { data, dtype: "bf16", shape: [tokens, experts] },
        "layers.0.gate.e_score_correction_bias": { data: values.slice(0, experts), dtype: "f32", shape: [experts] },
      }),
    );
    const report = await routeJson(["--logits", path, "--topk", String(topk)]);
    expect(report.dtype).toBe("bf16");
    expect(report.logits).toMatchObject({ format: "safetensors", tensor: "layers.0.router_logits", storedAs: "BF16" });
    expect({ weights: report.weights, indices: report.indices }).toEqual(direct(data, "bf16"));
    const named = await routeJson(["--logits", path, "--topk", String(topk), "--tensor", "layers.0.router_logits"]);
    expect(named.indices).toEqual(report.indices);
    const text = await route(["--logits", path, "--topk", "2"]);
    expect(text.code).toBe(0);
    expect(text.stdout.replace(/\s+/g, " ")).toContain(
      "router.safetensors (safetensors tensor layers.0.router_logits, stored BF16",
    );
  });

  test("safetensors with two 2-D tensors: the error lists them and says --tensor", async () => {
    const path = join(dir, "two.safetensors");
    writeFileSync(
      path,
      encodeSafetensors({
        a: { data: values, dtype: "f32", shape: [tokens, experts] },
        b: { data: values, dtype: "f32", shape: [tokens, experts] },
      }),
    );
    expectUserError(
      await route(["--logits", path, "--topk", "2"]),
      1,
      /a F32\[24, 96\], b F32\[24, 96\].*--tensor NAME/,
    );
    expectUserError(await route(["--logits", path, "--topk", "2", "--tensor", "c"]), 1, /no tensor named "c"/);
  });

  test("--tokens takes the first rows; --dtype converts; --model must match E", async () => {
    const path = join(dir, "logits-f32.npy");
    writeFileSync(path, encodeNpy(values, [tokens, experts], "f32"));
    const first = await routeJson(["--logits", path, "--topk", String(topk), "--tokens", "5"]);
    expect(first.tokens).toBe(5);
    expect(first.indices).toEqual(direct(values, "f32", 5).indices);
    const converted = await routeJson(["--logits", path, "--topk", String(topk), "--dtype", "bf16"]);
    expect(converted.logits).toMatchObject({ convertedFrom: "f32" });
    expect(converted.indices).toEqual(direct(toLogits(values, "bf16"), "bf16").indices);
    expectUserError(await route(["--logits", path, "--model", "deepseek-v3"]), 2, /96 experts.*deepseek-v3 has 256/);
    expectUserError(await route(["--logits", path, "--topk", "2", "--tokens", "25"]), 2, /holds only 24 tokens/);
  });

  test("--save writes logits that --logits routes to the same result (npy and safetensors, with --model)", async () => {
    for (const name of ["saved.npy", "saved.safetensors"]) {
      const path = join(dir, name);
      const generated = await routeJson(["--model", "minimax-m2", "--tokens", "30", "--dtype", "bf16", "--save", path]);
      const reread = await routeJson(["--model", "minimax-m2", "--logits", path, "--dtype", "bf16"]);
      expect(reread.tokens).toBe(30);
      expect(reread.bias?.values).toEqual(generated.bias?.values as number[]);
      expect(reread.indices).toEqual(generated.indices);
      expect(reread.weights).toEqual(generated.weights);
    }
  });
});

describe("route.ts: mistakes are clear errors", () => {
  const npyPath = () => join(dir, "err.npy");
  beforeAll(() => {
    writeFileSync(npyPath(), encodeNpy(new Float32Array(40), [4, 10], "f32"));
  });

  test.each([
    [["--model", "gpt-5"], /unknown model "gpt-5"; choose one of: deepseek-v3, kimi-k2/],
    [["--tokens", "abc"], /--tokens "abc": expected a whole number from 1/],
    [["--tokens", "0"], /--tokens "0": expected a whole number from 1/],
    [["--tokens", "1.5"], /--tokens "1.5"/],
    [["--tokens=-3"], /--tokens "-3"/],
    [["--tokens", "99999999"], /at most \d+ generated tokens for 256 experts/],
    [["--topk", "0"], /--topk "0": expected a whole number from 1 to 32/],
    [["--topk", "33"], /--topk "33"/],
    [["--dtype", "f64"], /--dtype "f64": use f32, f16 or bf16/],
    [["--backend", "cuda"], /--backend "cuda": use one of auto, gfx9, warp, ck, host/],
    [["--frobnicate"], /Unknown option '--frobnicate'/],
    [["extra"], /Unexpected argument 'extra'/],
    [["--tensor", "x"], /use it with --logits FILE/],
    [["--save", "out.csv"], /must end in \.npy or \.safetensors/],
    [["--logits", "x.npy"], /needs --topk N/],
  ] as const)("usage error %j: exit 2", async (args, message) => {
    const r = await route([...args]);
    expectUserError(r, 2, message);
    expect(r.stderr).toContain("--help");
  });

  test("a missing file", async () => {
    expectUserError(await route(["--logits", join(dir, "nope.npy"), "--topk", "2"]), 1, /no such file; check the path/);
  });

  test("a directory", async () => {
    expectUserError(await route(["--logits", dir, "--topk", "2"]), 1, /is a directory/);
  });

  test("--topk larger than the file's experts", async () => {
    expectUserError(await route(["--logits", npyPath(), "--topk", "11"]), 2, /at most the number of experts \(10\)/);
  });

  test("malformed files: truncated .npy, lying safetensors header, wrong dtype, wrong shape, not a logits file", async () => {
    const good = encodeNpy(new Float32Array(40), [4, 10], "f32");
    const cases: [string, Uint8Array, RegExp][] = [
      ["truncated.npy", good.subarray(0, good.length - 3), /truncated/],
      ["header-only.npy", good.subarray(0, 20), /truncated/],
      [
        "f64.npy",
        (() => {
          const f = good.slice();
          const at = new TextDecoder().decode(f).indexOf("<f4");
          f.set(new TextEncoder().encode("<f8"), at);
          return f;
        })(),
        /float64/,
      ],
      [
        "lies.safetensors",
        (() => {
          const f = encodeSafetensors({ x: { data: new Float32Array(40), dtype: "f32", shape: [4, 10] } });
          const text = new TextDecoder().decode(f);
          const at = text.indexOf("[4,10]");
          f.set(new TextEncoder().encode("[9,10]"), at);
          return f;
        })(),
        /needs 360 bytes, but its data_offsets span 160/,
      ],
      [
        "3d.safetensors",
        encodeSafetensors({ x: { data: new Float32Array(40), dtype: "f32", shape: [2, 2, 10] } }),
        /must be 2-D.*reshape/,
      ],
      ["notes.txt", new TextEncoder().encode("these are not logits\n"), /not a NumPy \.npy or safetensors file/],
    ];
    for (const [name, bytes, message] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const r = await route(["--logits", path, "--topk", "2"]);
      expectUserError(r, 1, message);
      expect(r.stderr).toContain(name);
    }
  });

  test.skipIf(deviceCount() > 0)("a GPU backend on a machine without one says what to do", async () => {
    const r = await route(["--backend", "warp", "--tokens", "8"]);
    expectUserError(r, 1, /--backend auto, the default, picks a kernel that runs on this machine/);
  });
});

describe("examples/moe_layer.ts", () => {
  test("runs the tiny MoE layer and prints a checksum", async () => {
    const r = await bun("examples/moe_layer.ts", []);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/host\s+route\(\): checksum [0-9a-f]{8}/);
    if (deviceCount() > 0) expect(r.stdout).toContain("identical to the host path");
    else expect(r.stdout).toContain("device path skipped");
  });
});
