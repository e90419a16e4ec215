// tests/errors.test.ts: every bad argument, through the TypeScript API (Error classes from
// ffi/errors.ts) and through the raw FFI symbols (status code + topk_sigmoid_last_error()).
// Every failing call must name the problem and leave the outputs exactly as they were.
import type { Pointer } from "bun:ffi";
import { afterAll, describe, expect, test } from "bun:test";
import { DeviceBuffer, deviceInfo, setDevice } from "../api/device.ts";
import { toLogits } from "../api/dtype.ts";
import { libraryInfo, setHostThreads } from "../api/library_info.ts";
import { createRouter } from "../api/router.ts";
import {
  InvalidArgumentError,
  InvalidBiasError,
  InvalidDeviceError,
  InvalidDtypeError,
  InvalidExpertsError,
  InvalidKError,
  InvalidStrideError,
  MisalignedError,
  NoDeviceError,
  NotBuiltError,
  NullPointerError,
  OverflowError,
  TopkSigmoidError,
  ValidationError,
} from "../ffi/errors.ts";
import { check, native } from "../ffi/library.ts";
import { Status, type StatusName } from "../ffi/status.ts";
import type { RouteEntry } from "../ffi/symbols.ts";
import { NativeArena } from "./helpers.ts";
import { checkRoute } from "./reference.ts";

const lib = native();
const info = libraryInfo();
const arena = new NativeArena();
afterAll(() => arena.release());

const POISON_BYTE = 0xa5;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

// ---- raw FFI ----------------------------------------------------------------------------------

/** Arguments of one route call, in ABI order. Pointers are typed arrays, raw addresses or null. */
interface Args {
  logits: NodeJS.TypedArray | Pointer | null;
  dtype: number;
  tokens: number | bigint;
  experts: number;
  rowStride: number | bigint;
  bias: NodeJS.TypedArray | Pointer | null;
  biasLen: number;
  k: number;
  renormalize: number;
  scale: number;
  weights: NodeJS.TypedArray | Pointer | null;
  indices: NodeJS.TypedArray | Pointer | null;
}

const call = (entry: RouteEntry, a: Args): number =>
  lib.symbols[entry](
    a.logits,
    a.dtype,
    a.tokens,
    a.experts,
    a.rowStride,
    a.bias,
    a.biasLen,
    a.k,
    a.renormalize,
    a.scale,
    a.weights,
    a.indices,
    null,
  );
const lastError = () => lib.symbols.topk_sigmoid_last_error()?.toString() ?? "";

/**
 * A valid call (T=2, E=8, k=2, f32, bias) over exact-size buffers, plus one byte region that
 * holds the outputs with room to place them anywhere (misaligned, overlapping). All output
 * bytes are poisoned so a test can see that nothing was written.
 */
function fixture() {
  const T = 2;
  const E = 8;
  const k = 2;
  const logits = arena.f32(T * E);
  logits.set([0.5, -1, 3, 2, 0, 1, -2, 2.5, 1, 1, 0, 4, -3, 2, 9, -9]);
  const bias = arena.f32(E);
  bias.set([0, 0.1, 0, 0, 0, 0, 0, 0]);
  // outputs: one poisoned region of 64 bytes + room for misalignment/overlap
  const out = arena.bytes(T * k * 4 * 2 + 64);
  out.view.fill(POISON_BYTE);
  const weightsAt = (byteOffset: number) => (out.pointer + byteOffset) as Pointer;
  const args: Args = {
    logits,
    dtype: 0,
    tokens: T,
    experts: E,
    rowStride: E,
    bias,
    biasLen: E,
    k,
    renormalize: 0,
    scale: 1,
    weights: weightsAt(0),
    indices: weightsAt(T * k * 4),
  };
  const untouched = () => out.view.every((b) => b === POISON_BYTE);
  return { T, E, k, logits, bias, out, weightsAt, args, untouched };
}

interface Case {
  name: string;
  change: (a: Args, f: ReturnType<typeof fixture>) => Partial<Args>;
  status: StatusName;
  message: RegExp;
  errorClass: typeof TopkSigmoidError;
}

const cases: Case[] = [
  {
    name: "logits NULL",
    change: () => ({ logits: null }),
    status: "TS_ERR_NULL_POINTER",
    message: /logits is NULL/,
    errorClass: NullPointerError,
  },
  {
    name: "weights NULL",
    change: () => ({ weights: null }),
    status: "TS_ERR_NULL_POINTER",
    message: /weights is NULL/,
    errorClass: NullPointerError,
  },
  {
    name: "indices NULL",
    change: () => ({ indices: null }),
    status: "TS_ERR_NULL_POINTER",
    message: /indices is NULL/,
    errorClass: NullPointerError,
  },
  {
    name: "dtype 3",
    change: () => ({ dtype: 3 }),
    status: "TS_ERR_INVALID_DTYPE",
    message: /dtype 3 is not one of f32 \(0\), f16 \(1\), bf16 \(2\)/,
    errorClass: InvalidDtypeError,
  },
  {
    name: "dtype -1",
    change: () => ({ dtype: -1 }),
    status: "TS_ERR_INVALID_DTYPE",
    message: /dtype -1\b/,
    errorClass: InvalidDtypeError,
  },
  {
    name: "dtype INT32_MAX",
    change: () => ({ dtype: 0x7fffffff }),
    status: "TS_ERR_INVALID_DTYPE",
    message: /dtype 2147483647\b/,
    errorClass: InvalidDtypeError,
  },
  {
    name: "k = 0",
    change: () => ({ k: 0 }),
    status: "TS_ERR_INVALID_K",
    message: /k = 0 is out of range.*1\.\.8/,
    errorClass: InvalidKError,
  },
  {
    name: "k = -1",
    change: () => ({ k: -1 }),
    status: "TS_ERR_INVALID_K",
    message: /k = -1 is out of range/,
    errorClass: InvalidKError,
  },
  {
    name: "k > E",
    change: () => ({ k: 9 }),
    status: "TS_ERR_INVALID_K",
    message: /k = 9 is out of range.*1\.\.8/,
    errorClass: InvalidKError,
  },
  {
    name: "k > 32",
    change: () => ({ experts: 64, rowStride: 64, tokens: 0, k: 33, bias: null, biasLen: 0 }),
    status: "TS_ERR_INVALID_K",
    message: /k = 33 is out of range.*1\.\.32/,
    errorClass: InvalidKError,
  },
  {
    name: "E = 0",
    change: () => ({ experts: 0, k: 1, biasLen: 0, bias: null }),
    status: "TS_ERR_INVALID_EXPERTS",
    message: /experts = 0 is out of range 1\.\.32768/,
    errorClass: InvalidExpertsError,
  },
  {
    name: "E < 0",
    change: () => ({ experts: -8 }),
    status: "TS_ERR_INVALID_EXPERTS",
    message: /experts = -8 is out of range/,
    errorClass: InvalidExpertsError,
  },
  {
    name: "E > 32768",
    change: () => ({ experts: 32769, rowStride: 32769, tokens: 0, bias: null, biasLen: 0 }),
    status: "TS_ERR_INVALID_EXPERTS",
    message: /experts = 32769 is out of range 1\.\.32768/,
    errorClass: InvalidExpertsError,
  },
  {
    name: "stride < E",
    change: () => ({ rowStride: 7 }),
    status: "TS_ERR_INVALID_STRIDE",
    message: /row_stride = 7 is less than experts = 8/,
    errorClass: InvalidStrideError,
  },
  {
    name: "stride < 0",
    change: () => ({ rowStride: -8 }),
    status: "TS_ERR_INVALID_STRIDE",
    message: /row_stride = -8 is less than experts = 8/,
    errorClass: InvalidStrideError,
  },
  {
    name: "T * stride overflows",
    change: () => ({ tokens: 2 ** 40, rowStride: 2 ** 22 }),
    status: "TS_ERR_OVERFLOW",
    message: /tokens \(1099511627776\) \* row_stride \(4194304\) \* 4 bytes overflows/,
    errorClass: OverflowError,
  },
  {
    name: "T * stride overflows (int64 max stride)",
    change: () => ({ tokens: 2, rowStride: I64_MAX }),
    status: "TS_ERR_OVERFLOW",
    message: /overflows 64 bits/,
    errorClass: OverflowError,
  },
  {
    name: "T * k outputs overflow",
    change: () => ({ dtype: 1, experts: 4, rowStride: 4, k: 4, bias: null, biasLen: 0, tokens: 2n ** 59n }),
    status: "TS_ERR_OVERFLOW",
    message: /tokens \(576460752303423488\) \* k \(4\) outputs overflow/,
    errorClass: OverflowError,
  },
  {
    name: "T < 0",
    change: () => ({ tokens: -1 }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /tokens = -1; it must be >= 0/,
    errorClass: InvalidArgumentError,
  },
  {
    name: "T = INT64_MIN",
    change: () => ({ tokens: I64_MIN }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /tokens = -9223372036854775808/,
    errorClass: InvalidArgumentError,
  },
  {
    name: "bias length < E",
    change: () => ({ biasLen: 7 }),
    status: "TS_ERR_INVALID_BIAS",
    message: /bias has 7 elements; it must have experts = 8/,
    errorClass: InvalidBiasError,
  },
  {
    name: "bias length > E",
    change: () => ({ biasLen: 9 }),
    status: "TS_ERR_INVALID_BIAS",
    message: /bias has 9 elements/,
    errorClass: InvalidBiasError,
  },
  {
    name: "bias with length 0",
    change: () => ({ biasLen: 0 }),
    status: "TS_ERR_INVALID_BIAS",
    message: /bias has 0 elements/,
    errorClass: InvalidBiasError,
  },
  {
    name: "bias NULL with a length",
    change: () => ({ bias: null }),
    status: "TS_ERR_INVALID_BIAS",
    message: /bias is NULL but bias_len = 8/,
    errorClass: InvalidBiasError,
  },
  {
    name: "scale NaN",
    change: () => ({ scale: Number.NaN }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /scale = -?nan; it must be a finite number/,
    errorClass: InvalidArgumentError,
  },
  {
    name: "scale +inf",
    change: () => ({ scale: Number.POSITIVE_INFINITY }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /scale = inf; it must be a finite/,
    errorClass: InvalidArgumentError,
  },
  {
    name: "scale -inf",
    change: () => ({ scale: Number.NEGATIVE_INFINITY }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /scale = -inf/,
    errorClass: InvalidArgumentError,
  },
  {
    name: "f32 logits misaligned",
    change: () => {
      const b = arena.bytes(2 * 8 * 4 + 2);
      return { logits: (b.pointer + 2) as Pointer };
    },
    status: "TS_ERR_MISALIGNED",
    message: /logits 0x[0-9a-f]+ is not aligned to its 4-byte f32 elements/,
    errorClass: MisalignedError,
  },
  {
    name: "bf16 logits misaligned",
    change: () => {
      const b = arena.bytes(2 * 8 * 2 + 1);
      return { logits: (b.pointer + 1) as Pointer, dtype: 2 };
    },
    status: "TS_ERR_MISALIGNED",
    message: /logits 0x[0-9a-f]+ is not aligned to its 2-byte bf16 elements/,
    errorClass: MisalignedError,
  },
  {
    name: "weights misaligned",
    change: (_a, f) => ({ weights: f.weightsAt(1) }),
    status: "TS_ERR_MISALIGNED",
    message: /weights 0x[0-9a-f]+ is not 4-byte aligned/,
    errorClass: MisalignedError,
  },
  {
    name: "indices misaligned",
    change: (_a, f) => ({ indices: f.weightsAt(18) }),
    status: "TS_ERR_MISALIGNED",
    message: /indices 0x[0-9a-f]+ is not 4-byte aligned/,
    errorClass: MisalignedError,
  },
  {
    name: "bias misaligned",
    change: () => {
      const b = arena.bytes(8 * 4 + 2);
      return { bias: (b.pointer + 2) as Pointer };
    },
    status: "TS_ERR_MISALIGNED",
    message: /bias 0x[0-9a-f]+ is not 4-byte aligned/,
    errorClass: MisalignedError,
  },
  {
    name: "weights == indices",
    change: (_a, f) => ({ indices: f.weightsAt(0) }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /weights and indices overlap/,
    errorClass: InvalidArgumentError,
  },
  {
    name: "indices overlap the end of weights",
    change: (_a, f) => ({ indices: f.weightsAt(12) }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /weights and indices overlap/,
    errorClass: InvalidArgumentError,
  },
  {
    name: "weights overlap the end of indices",
    change: (_a, f) => ({ indices: f.weightsAt(4), weights: f.weightsAt(8) }),
    status: "TS_ERR_INVALID_ARGUMENT",
    message: /overlap/,
    errorClass: InvalidArgumentError,
  },
];

/** Route entries whose validation runs on host pointers here: host always; the dispatcher when it routes on the host; GPU entries that can run here. */
function validatingEntries(): RouteEntry[] {
  const entries: RouteEntry[] = ["topk_sigmoid_host"];
  if (info.deviceCount === 0) entries.push("topk_sigmoid");
  else {
    entries.push("topk_sigmoid");
    for (const e of ["topk_sigmoid_warp", "topk_sigmoid_gfx9", "topk_sigmoid_ck"] as const) {
      const f = fixture();
      if (call(e, { ...f.args, tokens: 0, logits: null, weights: null, indices: null, bias: null, biasLen: 0 }) === 0)
        entries.push(e);
    }
  }
  return entries;
}

describe("raw FFI: bad arguments", () => {
  for (const entry of validatingEntries()) {
    for (const c of cases) {
      test(`${entry}: ${c.name} -> ${c.status}`, () => {
        const f = fixture();
        const args = { ...f.args, ...c.change(f.args, f) };
        const logitsBefore = Float32Array.from(f.logits);
        const status = call(entry, args);
        const message = lastError();
        expect({ status: status, message }).toEqual({
          status: Status[c.status],
          message: expect.stringMatching(c.message),
        });
        // the message says which entry point complained
        expect(message).toMatch(/^topk_sigmoid\w*: /);
        if (entry !== "topk_sigmoid") expect(message.startsWith(`${entry}: `)).toBe(true);
        expect(f.untouched()).toBe(true);
        expect(Array.from(f.logits)).toEqual(Array.from(logitsBefore));
        // the TS wrapper turns the status into the named class carrying the native message
        let thrown: unknown;
        try {
          check(status);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).toBeInstanceOf(c.errorClass);
        expect((thrown as TopkSigmoidError).message).toBe(message);
        expect((thrown as TopkSigmoidError).statusName).toBe(c.status);
      });
    }

    test(`${entry}: positive controls (valid calls succeed and clear the last error)`, () => {
      const f = fixture();
      // a failing call first, so the clearing is visible
      expect(call(entry, { ...f.args, k: 0 })).toBe(Status.TS_ERR_INVALID_K);
      expect(lastError()).not.toBe("");
      // T = 0 with every pointer NULL is a valid no-op
      expect(call(entry, { ...f.args, tokens: 0, logits: null, weights: null, indices: null })).toBe(0);
      expect(lastError()).toBe("");
      expect(f.untouched()).toBe(true);
      if (entry !== "topk_sigmoid_host" && !(entry === "topk_sigmoid" && info.deviceCount === 0)) return; // device pointers needed
      // weights and indices adjacent (not overlapping) is fine, and gives the right answer
      expect(call(entry, f.args)).toBe(0);
      expect(lastError()).toBe("");
      const weights = new Float32Array(f.out.view.buffer, f.out.view.byteOffset, f.T * f.k);
      const indices = new Int32Array(f.out.view.buffer, f.out.view.byteOffset + f.T * f.k * 4, f.T * f.k);
      expect(Array.from(indices)).toEqual([2, 7, 6, 3]);
      const problem = {
        logits: f.logits,
        dtype: "f32" as const,
        tokens: f.T,
        experts: f.E,
        rowStride: f.E,
        bias: f.bias,
        k: f.k,
        renormalize: false,
        scale: 1,
      };
      expect(checkRoute(problem, { weights, indices })).toEqual([]);
      // the bytes after the outputs are still poison
      expect(f.out.view.subarray(f.T * f.k * 8).every((b) => b === POISON_BYTE)).toBe(true);
    });
  }
});

describe("raw FFI: GPU entry points without a GPU", () => {
  const gpuEntries = ["topk_sigmoid_warp", "topk_sigmoid_gfx9", "topk_sigmoid_ck"] as const;
  const { cuda, hip } = info.builtWith;
  for (const entry of gpuEntries) {
    test(`${entry} says why it cannot run (built with cuda=${cuda} hip=${hip}, ${info.deviceCount} devices)`, () => {
      if (info.deviceCount > 0) {
        // covered by the validation table above where the kernel runs here; nothing to refuse
        expect(info.builtWith.cuda || info.builtWith.hip).toBe(true);
        return;
      }
      const f = fixture();
      const status = call(entry, f.args);
      const message = lastError();
      expect(f.untouched()).toBe(true);
      if (!cuda && !hip) {
        expect(status).toBe(Status.TS_ERR_NOT_BUILT);
        expect(message).toStartWith(`${entry}: `);
        expect(message).toMatch(/nvcc/);
        expect(message).toMatch(/hipcc/);
        expect(message).toMatch(/bun run build/);
      } else {
        // a GPU build on a machine without a device; the AMD-only kernel in a CUDA-only build
        // may say it was not built for this toolchain instead
        const allowed: number[] = [Status.TS_ERR_NO_DEVICE];
        if (entry === "topk_sigmoid_gfx9" && !hip) allowed.push(Status.TS_ERR_NOT_BUILT);
        if (entry === "topk_sigmoid_warp" && !cuda) allowed.push(Status.TS_ERR_NOT_BUILT);
        expect(allowed).toContain(status);
        expect(message).toStartWith(`${entry}: `);
        expect(message.length).toBeGreaterThan(entry.length + 10);
      }
    });
  }

  test("topk_sigmoid_dispatch_backend: NULL out pointer, and host dispatch without a device", () => {
    expect(lib.symbols.topk_sigmoid_dispatch_backend(8, null)).toBe(Status.TS_ERR_NULL_POINTER);
    expect(lastError()).toMatch(/backend is NULL/);
    if (info.deviceCount === 0) {
      const out = new Int32Array([-7]);
      expect(lib.symbols.topk_sigmoid_dispatch_backend(256, out)).toBe(0);
      expect(out[0]).toBe(0);
    }
  });

  test("topk_sigmoid_host_set_threads rejects negative and absurd counts", () => {
    expect(lib.symbols.topk_sigmoid_host_set_threads(-1)).toBe(Status.TS_ERR_INVALID_ARGUMENT);
    expect(lastError()).toMatch(/threads = -1/);
    expect(lib.symbols.topk_sigmoid_host_set_threads(100000)).toBe(Status.TS_ERR_INVALID_ARGUMENT);
    expect(lastError()).toMatch(/threads = 100000/);
    expect(lib.symbols.topk_sigmoid_host_set_threads(0)).toBe(0);
  });
});

// ---- TypeScript API ---------------------------------------------------------------------------

function thrownBy(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw, but the call returned normally");
}

describe("TS API: router configuration (zod, once at createRouter)", () => {
  const good = { experts: 8, topk: 2, backend: "host" as const };
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ["experts 0", { experts: 0 }, /experts/],
    ["experts > 32768", { experts: 32769 }, /experts/],
    ["experts not an integer", { experts: 7.5 }, /experts/],
    ["topk 0", { topk: 0 }, /topk/],
    ["topk > experts", { topk: 9 }, /topk \(9\) must be <= experts \(8\)/],
    ["topk > 32", { experts: 64, topk: 33 }, /topk/],
    ["dtype f64", { dtype: "f64" }, /dtype/],
    ["bias length", { bias: new Float32Array(7) }, /bias has 7 values; it needs one per expert \(8\)/],
    ["rowStride < experts", { rowStride: 7 }, /rowStride \(7\) must be >= experts \(8\)/],
    ["rowStride 0", { rowStride: 0 }, /rowStride/],
    ["scale NaN", { scale: Number.NaN }, /scale/],
    ["scale Infinity", { scale: Number.POSITIVE_INFINITY }, /scale/],
    ["renormalize not a boolean", { renormalize: 1 }, /renormalize/],
    ["unknown backend", { backend: "tpu" }, /backend/],
  ];
  for (const [name, change, message] of bad) {
    test(`${name} -> ValidationError naming it`, () => {
      const e = thrownBy(() => createRouter({ ...good, ...change } as never));
      expect(e).toBeInstanceOf(ValidationError);
      expect(e.message).toMatch(/^invalid router config: /);
      expect(e.message).toMatch(message);
    });
  }
  test("several problems are all listed", () => {
    const e = thrownBy(() => createRouter({ experts: 8, topk: 9, rowStride: 4, backend: "host" }));
    expect(e.message).toMatch(/topk/);
    expect(e.message).toMatch(/rowStride/);
  });
});

describe("TS API: route() arguments", () => {
  const E = 8;
  const k = 2;
  const router = createRouter({ experts: E, topk: k, backend: "host" });
  const bf16 = createRouter({ experts: E, topk: k, dtype: "bf16", backend: "host" });
  const strided = createRouter({ experts: E, topk: k, rowStride: 10, backend: "host" });
  const poisoned = (n: number) => ({ weights: new Float32Array(n).fill(-77), indices: new Int32Array(n).fill(-77) });
  const untouched = (o: { weights: Float32Array; indices: Int32Array }) =>
    o.weights.every((w) => w === -77) && o.indices.every((i) => i === -77);

  const cases: [string, () => unknown, RegExp, { weights: Float32Array; indices: Int32Array }?][] = [];
  const add = (name: string, fn: (out: ReturnType<typeof poisoned>) => unknown, message: RegExp) => {
    const out = poisoned(8);
    cases.push([name, () => fn(out), message, out]);
  };
  add(
    "Float32Array logits for a bf16 router",
    (out) => bf16.route(new Float32Array(2 * E), { out }),
    /logits for dtype bf16 must be a Uint16Array of raw bits/,
  );
  add(
    "Uint16Array logits for an f32 router",
    (out) => router.route(new Uint16Array(2 * E), { out }),
    /logits for dtype f32 must be a Float32Array/,
  );
  add("null logits", (out) => router.route(null as never, { out }), /logits for dtype f32 must be a Float32Array/);
  add("a plain array as logits", (out) => router.route([1, 2, 3] as never, { out }), /Float32Array/);
  add(
    "length not a multiple of the stride",
    (out) => router.route(new Float32Array(2 * E + 3), { out }),
    /19 elements, not a multiple of rowStride 8; pass options.tokens/,
  );
  add(
    "short logits for the given tokens",
    (out) => router.route(new Float32Array(2 * E), { tokens: 3, out }),
    /logits has 16 elements; 3 tokens with rowStride 8 and 8 experts need 24/,
  );
  add(
    "short strided logits",
    (out) => strided.route(new Float32Array(17), { tokens: 2, out }),
    /logits has 17 elements; 2 tokens with rowStride 10 and 8 experts need 18/,
  );
  add(
    "negative tokens",
    (out) => router.route(new Float32Array(2 * E), { tokens: -1, out }),
    /tokens must be a non-negative integer, got -1/,
  );
  add(
    "fractional tokens",
    (out) => router.route(new Float32Array(2 * E), { tokens: 1.5, out }),
    /tokens must be a non-negative integer, got 1.5/,
  );
  add(
    "short out buffers",
    (out) => router.route(new Float32Array(8 * E), { out }),
    /out buffers hold 8 weights and 8 indices; 8 tokens x topk 2 need 16 each/,
  );
  cases.push([
    "out buffers of the wrong type",
    () =>
      router.route(new Float32Array(E), { out: { weights: new Float64Array(4), indices: new Int32Array(4) } as never }),
    /out.weights must be a Float32Array and out.indices an Int32Array/,
  ]);
  for (const [name, fn, message, out] of cases) {
    test(`${name} -> ValidationError, outputs untouched`, () => {
      const e = thrownBy(fn);
      expect(e).toBeInstanceOf(ValidationError);
      expect(e).toBeInstanceOf(TopkSigmoidError);
      expect(e.message).toMatch(message);
      if (out) expect(untouched(out)).toBe(true);
    });
  }

  test("a good call after all that still works (positive control)", () => {
    const out = poisoned(4);
    const r = router.route(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1, 0]), { out });
    expect(Array.from(r.indices)).toEqual([7, 6, 0, 1]);
    expect(r.weights).toBe(out.weights);
  });

  test("bf16 short buffer through toLogits", () => {
    const e = thrownBy(() => bf16.route(toLogits([1, 2, 3], "bf16"), { tokens: 1 }));
    expect(e).toBeInstanceOf(ValidationError);
    expect(e.message).toMatch(/logits has 3 elements; 1 tokens with rowStride 8 and 8 experts need 8/);
  });

  test("routeDevice on a host router -> NoDeviceError", () => {
    const e = thrownBy(() => router.routeDevice({} as never, 1, {} as never));
    expect(e).toBeInstanceOf(NoDeviceError);
    expect(e.message).toMatch(/routeDevice needs a GPU backend/);
  });

  test("setHostThreads(-1) -> InvalidArgumentError with the native message", () => {
    const e = thrownBy(() => setHostThreads(-1));
    expect(e).toBeInstanceOf(InvalidArgumentError);
    expect((e as TopkSigmoidError).status).toBe(Status.TS_ERR_INVALID_ARGUMENT);
    expect(e.message).toMatch(/topk_sigmoid_host_set_threads: threads = -1; use 0 \(auto\) or 1\.\.1024/);
  });
});

describe("TS API: GPU backends and device calls on this library", () => {
  const { cuda, hip } = info.builtWith;
  for (const backend of ["warp", "gfx9", "ck"] as const) {
    test(`createRouter({ backend: "${backend}" }) says why it cannot run`, () => {
      if (info.deviceCount > 0) {
        // a device is present: the router either builds or refuses with a device-specific reason
        try {
          createRouter({ experts: 8, topk: 2, backend }).dispose();
        } catch (e) {
          expect(e).toBeInstanceOf(TopkSigmoidError);
          expect((e as TopkSigmoidError).statusName).toMatch(/TS_ERR_(WRONG_ARCH|NOT_BUILT|UNSUPPORTED)/);
        }
        return;
      }
      const e = thrownBy(() => createRouter({ experts: 8, topk: 2, backend }));
      if (!cuda && !hip) {
        expect(e).toBeInstanceOf(NotBuiltError);
        expect(e.message).toMatch(/install nvcc \(CUDA\) or hipcc \(ROCm\) and run 'bun run build'/);
      } else {
        const ok =
          e instanceof NoDeviceError ||
          (e instanceof NotBuiltError && (backend === "gfx9" ? !hip : backend === "warp" ? !cuda : false));
        expect({ backend, error: e.name, ok }).toEqual({ backend, error: e.name, ok: true });
      }
    });
  }

  test("device memory and device selection without a device", () => {
    if (info.deviceCount > 0) {
      expect(thrownBy(() => setDevice(info.deviceCount + 7))).toBeInstanceOf(InvalidDeviceError);
      return;
    }
    expect(thrownBy(() => DeviceBuffer.alloc(0))).toBeInstanceOf(ValidationError);
    const alloc = thrownBy(() => DeviceBuffer.alloc(64));
    expect(alloc).toBeInstanceOf(info.builtWith.cuda || info.builtWith.hip ? NoDeviceError : NotBuiltError);
    expect(thrownBy(() => setDevice(0))).toBeInstanceOf(InvalidDeviceError);
    const di = thrownBy(() => deviceInfo(3));
    expect(di).toBeInstanceOf(InvalidDeviceError);
    expect(di.message).toMatch(/device 3 does not exist/);
  });
});
