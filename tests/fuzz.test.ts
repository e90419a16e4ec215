// tests/fuzz.test.ts: seeded random argument combinations through the raw route symbols:
// garbage integers, huge values, NULL / valid / misaligned / overlapping pointer mixes over
// small exact-size buffers. The process must never crash; every call returns a known status;
// a failing status must be one the arguments actually deserve (a model of the ABI's rules,
// independent of the order the native code checks them in) and leave the outputs untouched;
// an OK call must produce the reference result. TOPK_SIGMOID_SEED=<n>|random varies it.
import type { Pointer } from "bun:ffi";
import { afterAll, expect, test } from "bun:test";
import { libraryInfo } from "../api/library_info.ts";
import { native } from "../ffi/library.ts";
import { Limits, Status } from "../ffi/status.ts";
import type { RouteEntry } from "../ffi/symbols.ts";
import { NativeArena, Rng, suiteSeed } from "./helpers.ts";
import { checkRoute, type RefDtype } from "./reference.ts";

const lib = native();
const info = libraryInfo();
const arena = new NativeArena();
afterAll(() => {
  lib.symbols.topk_sigmoid_host_set_threads(0);
  arena.release();
});

const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);
const I32_MAX = 2 ** 31 - 1;
const I32_MIN = -(2 ** 31);
const POISON = 0x5a;
const known = new Set<number>(Object.values(Status));
const dtypeNames: RefDtype[] = ["f32", "f16", "bf16"];

type PointerKind = "null" | "valid" | "misaligned";

interface Call {
  entry: RouteEntry;
  dtype: number;
  tokens: bigint;
  experts: number;
  rowStride: bigint;
  biasKind: PointerKind;
  biasLen: number;
  k: number;
  renormalize: number;
  scale: number;
  logitsKind: PointerKind;
  weightsKind: PointerKind;
  indicesKind: PointerKind;
  /** weights and indices placed in one region at these byte offsets (may overlap) */
  outputOffsets: [number, number];
}

const garbageI32 = (rng: Rng) => rng.pick([0, -1, 1, I32_MAX, I32_MIN, 32767, 32768, 32769, 65535, rng.u32() | 0]);
const garbageI64 = (rng: Rng): bigint =>
  rng.pick([
    -1n,
    0n,
    I64_MAX,
    I64_MIN,
    2n ** 40n,
    2n ** 62n,
    2n ** 59n,
    BigInt.asIntN(64, (BigInt(rng.u32()) << 32n) | BigInt(rng.u32())),
    -BigInt(rng.u32()),
  ]);

/**
 * A call that starts valid and then has each argument replaced by garbage with probability
 * `wild` (small: mostly single faults, whose status is then exact; large: pile-ups).
 */
function randomCall(rng: Rng, entries: RouteEntry[]): Call {
  const wild = rng.pick([0, 0.04, 0.1, 0.5]);
  const bad = () => rng.chance(wild);
  const experts = bad() ? garbageI32(rng) : rng.chance(0.85) ? rng.int(1, 64) : rng.int(65, 1100);
  const kMax = Math.min(Math.max(experts, 1), Limits.TOPK_SIGMOID_MAX_K);
  const k = bad() ? rng.pick([0, -1, 33, experts + 1, I32_MAX, I32_MIN, rng.u32() | 0]) : rng.int(1, kMax);
  const e = BigInt(experts);
  const rowStride = bad()
    ? rng.chance(0.3)
      ? e - 1n
      : garbageI64(rng)
    : rng.chance(0.6)
      ? e
      : e + BigInt(rng.int(1, 9));
  const tokens = bad() ? garbageI64(rng) : BigInt(rng.chance(0.1) ? 0 : rng.int(1, 5));
  const biasKind: PointerKind = rng.chance(0.4) ? "null" : bad() ? "misaligned" : "valid";
  const biasLen = bad() ? garbageI32(rng) : biasKind === "null" ? 0 : experts;
  const pointer = (): PointerKind => (bad() ? rng.pick(["null", "misaligned"] as const) : "valid");
  const n = 8 * 4;
  const outputOffsets: [number, number] = bad()
    ? rng.pick<[number, number]>([
        [0, 0],
        [0, 4],
        [8, 0],
        [0, n],
      ])
    : [0, -1];
  return {
    entry: rng.pick(entries),
    dtype: bad() ? garbageI32(rng) : rng.int(0, 2),
    tokens,
    experts,
    rowStride,
    biasKind,
    biasLen,
    k,
    renormalize: rng.chance(0.8) ? rng.int(0, 1) : garbageI32(rng),
    scale: bad()
      ? rng.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
      : rng.chance(0.9)
        ? rng.normal() * 3
        : rng.pick([0, -0, 3.4e38, 1e-45, -1e-30]),
    logitsKind: pointer(),
    weightsKind: pointer(),
    indicesKind: pointer(),
    outputOffsets,
  };
}

/** Statuses the argument rules allow ([] means the call must succeed), before pointer rules. */
function deservedByValues(c: Call): number[] {
  const out: number[] = [];
  const { experts, k } = c;
  if (!(c.dtype >= 0 && c.dtype <= 2)) out.push(Status.TS_ERR_INVALID_DTYPE);
  if (c.tokens < 0n) out.push(Status.TS_ERR_INVALID_ARGUMENT);
  if (experts < 1 || experts > Limits.TOPK_SIGMOID_MAX_EXPERTS) out.push(Status.TS_ERR_INVALID_EXPERTS);
  if (k < 1 || k > Math.min(Math.max(experts, 1), Limits.TOPK_SIGMOID_MAX_K)) out.push(Status.TS_ERR_INVALID_K);
  if (c.rowStride < BigInt(experts)) out.push(Status.TS_ERR_INVALID_STRIDE);
  const elem = c.dtype === 0 ? 4n : 2n;
  if (
    c.tokens > 0n &&
    c.rowStride > 0n &&
    k > 0 &&
    (c.tokens * c.rowStride * elem > I64_MAX || c.tokens * BigInt(k) * 4n > I64_MAX)
  )
    out.push(Status.TS_ERR_OVERFLOW);
  if (!Number.isFinite(c.scale)) out.push(Status.TS_ERR_INVALID_ARGUMENT);
  if (c.biasKind === "null" ? c.biasLen !== 0 : c.biasLen !== experts) out.push(Status.TS_ERR_INVALID_BIAS);
  return out;
}

/** Pointer rules, for calls that would touch memory (tokens > 0), on the actual placement. */
function deservedByPointers(c: Call, weightsAt: number, indicesAt: number): number[] {
  const out: number[] = [];
  if (c.logitsKind === "null" || c.weightsKind === "null" || c.indicesKind === "null")
    out.push(Status.TS_ERR_NULL_POINTER);
  if ([c.logitsKind, c.weightsKind, c.indicesKind, c.biasKind].includes("misaligned"))
    out.push(Status.TS_ERR_MISALIGNED);
  const bytes = Number(c.tokens) * c.k * 4;
  if (
    c.weightsKind !== "null" &&
    c.indicesKind !== "null" &&
    weightsAt < indicesAt + bytes &&
    indicesAt < weightsAt + bytes
  )
    out.push(Status.TS_ERR_INVALID_ARGUMENT);
  return out;
}

/** Fills `count` elements of a dtype with seeded logits (f32: mostly normal, some NaN; 16-bit: any bits). */
function logitsContent(count: number, elem: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const bytes = new Uint8Array(Math.max(count, 1) * elem);
  if (elem === 4) {
    const f = new Float32Array(bytes.buffer);
    for (let i = 0; i < f.length; i++) f[i] = r.chance(0.05) ? Number.NaN : r.normal() * 3;
  } else for (let i = 0; i < bytes.length; i++) bytes[i] = r.u32() & 0xff;
  return bytes.subarray(0, count * elem);
}

/**
 * Builds the buffers for a call: exact-size when the shape is small (so a call that passes
 * validation stays in bounds, and ASan sees any overrun), a token buffer otherwise.
 */
function materialise(c: Call, seed: number) {
  const smallShape =
    c.tokens >= 0n &&
    c.tokens <= 5n &&
    c.experts >= 1 &&
    c.experts <= 1100 &&
    c.rowStride >= 1n &&
    c.rowStride <= 1200n &&
    c.k >= 1 &&
    c.k <= 32;
  const elem = c.dtype === 0 ? 4 : 2;
  const logitsCount = smallShape && c.tokens > 0n ? (Number(c.tokens) - 1) * Number(c.rowStride) + c.experts : 16;
  const outCount = smallShape && c.tokens > 0n ? Number(c.tokens) * c.k : 8;
  // a NULL, an aligned pointer to exactly `content`, or the same one byte off
  const place = (kind: PointerKind, content: Uint8Array, align: number): Pointer | null => {
    if (kind === "null") return null;
    const b = arena.bytes(content.length + align);
    const at = kind === "misaligned" ? 1 : align;
    b.view.set(content, at);
    return (b.pointer + at) as Pointer;
  };
  const content = logitsContent(logitsCount, elem, seed);
  const logits = place(c.logitsKind, content, elem);
  const biasValues = Float32Array.from(
    { length: c.experts >= 1 && c.experts <= 1100 ? c.experts : 8 },
    (_, i) => ((i * 7919) % 13) * 0.01 - 0.05,
  );
  const bias = place(c.biasKind, new Uint8Array(biasValues.buffer), 4);
  // one poisoned region holds both outputs at their offsets (indices right after weights by default)
  const outBytes = outCount * 4;
  const shift = (kind: PointerKind) => (kind === "misaligned" ? 2 : 0);
  const weightsAt = c.outputOffsets[0] + shift(c.weightsKind);
  const indicesAt = (c.outputOffsets[1] < 0 ? outBytes : c.outputOffsets[1]) + shift(c.indicesKind);
  const region = arena.bytes(Math.max(weightsAt, indicesAt) + outBytes + 16);
  region.view.fill(POISON);
  const view = region.view;
  return {
    logits,
    bias,
    weights: c.weightsKind === "null" ? null : ((region.pointer + weightsAt) as Pointer),
    indices: c.indicesKind === "null" ? null : ((region.pointer + indicesAt) as Pointer),
    weightsAt,
    indicesAt,
    untouched: () => view.every((b) => b === POISON),
    results: () => ({
      weights: new Float32Array(view.slice(weightsAt, weightsAt + outBytes).buffer),
      indices: new Int32Array(view.slice(indicesAt, indicesAt + outBytes).buffer),
    }),
    logitsValues: () =>
      elem === 4 ? new Float32Array(content.slice().buffer) : new Uint16Array(content.slice().buffer),
    biasValues: c.biasKind === "null" ? null : biasValues,
    smallShape,
  };
}

test("fuzz: raw route symbols never crash and return the status the arguments deserve", () => {
  const seed = suiteSeed(0xf022_5eed);
  const rng = new Rng(seed);
  const entries: RouteEntry[] = ["topk_sigmoid_host", "topk_sigmoid_host", "topk_sigmoid_host"];
  // the dispatcher and GPU entry points take device pointers where a device exists
  if (info.deviceCount === 0) entries.push("topk_sigmoid", "topk_sigmoid_warp", "topk_sigmoid_gfx9", "topk_sigmoid_ck");
  const gpuEntry = (e: RouteEntry) => e === "topk_sigmoid_warp" || e === "topk_sigmoid_gfx9" || e === "topk_sigmoid_ck";
  const failures: string[] = [];
  const stats = { ok: 0, failed: 0, routed: 0 };
  const CALLS = 4000;
  for (let n = 0; n < CALLS && failures.length < 5; n++) {
    const c = randomCall(rng, entries);
    const m = materialise(c, n);
    let rules = deservedByValues(c);
    if (rules.length === 0 && c.tokens > 0n) {
      // A call that passes validation reads and writes memory: it must have real buffers.
      if (!m.smallShape) c.logitsKind = "null";
      rules = deservedByPointers(c, m.weightsAt, m.indicesAt);
    }
    const logits = c.logitsKind === "null" ? null : m.logits;
    const status = lib.symbols[c.entry](
      logits,
      c.dtype,
      c.tokens,
      c.experts,
      c.rowStride,
      m.bias,
      c.biasLen,
      c.k,
      c.renormalize,
      c.scale,
      m.weights,
      m.indices,
      null,
    );
    const message = lib.symbols.topk_sigmoid_last_error()?.toString() ?? "";
    const show = () =>
      `call ${n} (seed ${seed}): ${c.entry}(dtype=${c.dtype}, tokens=${c.tokens}, experts=${c.experts}, stride=${c.rowStride}, bias=${c.biasKind}/${c.biasLen}, k=${c.k}, renorm=${c.renormalize}, scale=${c.scale}, logits=${c.logitsKind}, weights=${c.weightsKind}@${c.outputOffsets[0]}, indices=${c.indicesKind}@${c.outputOffsets[1]}) -> ${status} "${message}"`;
    if (!known.has(status)) {
      failures.push(`${show()}: unknown status`);
      continue;
    }
    if (lib.symbols.topk_sigmoid_status_name(status)?.toString() === "TS_ERR_UNKNOWN")
      failures.push(`${show()}: status has no name`);
    const allowed = gpuEntry(c.entry) ? [...rules, Status.TS_ERR_NOT_BUILT, Status.TS_ERR_NO_DEVICE] : rules;
    if (status !== 0) {
      stats.failed++;
      if (!allowed.includes(status)) failures.push(`${show()}: expected one of [${rules.join(", ") || "OK"}]`);
      if (!m.untouched()) failures.push(`${show()}: failed but wrote to the outputs`);
      if (!/^topk_sigmoid\w*: ./.test(message))
        failures.push(`${show()}: message does not name the entry point and the problem`);
      continue;
    }
    stats.ok++;
    if (rules.length > 0) failures.push(`${show()}: succeeded, but the arguments deserve [${rules.join(", ")}]`);
    if (message !== "") failures.push(`${show()}: OK but the last error is not cleared`);
    if (c.tokens === 0n) {
      if (!m.untouched()) failures.push(`${show()}: T = 0 wrote to the outputs`);
      continue;
    }
    stats.routed++;
    const problem = {
      logits: m.logitsValues(),
      dtype: dtypeNames[c.dtype] as RefDtype,
      tokens: Number(c.tokens),
      experts: c.experts,
      rowStride: Number(c.rowStride),
      bias: m.biasValues,
      k: c.k,
      renormalize: c.renormalize !== 0,
      scale: c.scale,
    };
    failures.push(...checkRoute(problem, m.results()).map((p) => `call ${n} (seed ${seed}): ${p}`));
  }
  if (failures.length > 0) throw new Error(`${failures.length} fuzz failure(s):\n${failures.join("\n")}`);
  // the mix really exercised both sides
  expect(stats.routed).toBeGreaterThan(CALLS / 10);
  expect(stats.failed).toBeGreaterThan(CALLS / 4);
}, 30_000);

test("fuzz: small non-route symbols with garbage integers", () => {
  const rng = new Rng(suiteSeed(0x51de));
  const out = new Int32Array(1);
  for (let n = 0; n < 500; n++) {
    const v = garbageI32(rng);
    const name = lib.symbols.topk_sigmoid_status_name(v)?.toString() ?? "";
    expect(name).toBe(
      (Object.entries(Status).find(([, code]) => code === v)?.[0] as string | undefined) ?? "TS_ERR_UNKNOWN",
    );
    const d = lib.symbols.topk_sigmoid_dispatch_backend(v, out);
    expect(known.has(d)).toBe(true);
    const t = lib.symbols.topk_sigmoid_host_set_threads(v);
    expect(t).toBe(v >= 0 && v <= 1024 ? 0 : Status.TS_ERR_INVALID_ARGUMENT);
  }
  expect(lib.symbols.topk_sigmoid_host_set_threads(0)).toBe(0);
  const count = new Int32Array([-1]);
  expect(lib.symbols.topk_sigmoid_device_count(count)).toBe(0);
  expect(count[0]).toBe(info.deviceCount);
  expect(lib.symbols.topk_sigmoid_device_count(null)).toBe(Status.TS_ERR_NULL_POINTER);
});
