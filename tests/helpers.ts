// tests/helpers.ts: shared pieces of the host test suites: a seeded PRNG, exact-size native
// buffers (ASan-checked in the sanitizer run), random routing problems, and the two ways of
// running one (public API and raw FFI symbol).
import { dlopen, FFIType, type Pointer, ptr, toArrayBuffer } from "bun:ffi";
import { type Dtype, dtypes, toLogits } from "../api/dtype.ts";
import { createRouter } from "../api/router.ts";
import { native } from "../ffi/library.ts";
import { DtypeCode, Status } from "../ffi/status.ts";
import type { RouteEntry } from "../ffi/symbols.ts";
import type { RouteProblem } from "./reference.ts";

// ---- seeded PRNG ------------------------------------------------------------------------------

/** The suite seed: $TOPK_SIGMOID_SEED (a number, or "random"), else a fixed one. */
export function suiteSeed(fallback: number): number {
  const env = process.env.TOPK_SIGMOID_SEED;
  if (!env) return fallback >>> 0;
  if (env === "random") return (Math.random() * 2 ** 32) >>> 0;
  const n = Number(env);
  if (!Number.isInteger(n)) throw new Error(`TOPK_SIGMOID_SEED=${env}: use an integer or "random"`);
  return n >>> 0;
}

/** mulberry32: small, fast, good enough for test data, and reproducible from one 32-bit seed. */
export class Rng {
  #state: number;
  constructor(readonly seed: number) {
    this.#state = seed >>> 0;
  }
  /** uniform in [0, 2^32) */
  u32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** uniform in [0, 1) */
  float(): number {
    return this.u32() / 2 ** 32;
  }
  /** integer in [lo, hi] */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)] as T;
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  /** standard normal (Box-Muller) */
  normal(): number {
    const u = 1 - this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.float());
  }
}

// ---- native buffers ---------------------------------------------------------------------------

/**
 * Exact-size buffers for the native calls. In the sanitizer run (libasan in LD_PRELOAD) they
 * come from ASan's malloc, so a read or write one element past the end is a reported
 * heap-buffer-overflow; otherwise they are plain typed arrays.
 */
export class NativeArena {
  static readonly asanPath = (process.env.LD_PRELOAD ?? "").split(/[:\s]+/).find((p) => /libasan\.so/.test(p));
  static #asan: { malloc: (n: number) => Pointer | null; free: (p: Pointer) => void } | undefined;
  #pointers: Pointer[] = [];
  #keep: ArrayBufferView[] = [];

  static get sanitizing(): boolean {
    return NativeArena.asanPath !== undefined;
  }

  static #allocator() {
    if (!NativeArena.#asan && NativeArena.asanPath) {
      const lib = dlopen(NativeArena.asanPath, {
        malloc: { args: [FFIType.u64], returns: FFIType.ptr },
        free: { args: [FFIType.ptr], returns: FFIType.void },
      });
      NativeArena.#asan = { malloc: (n) => lib.symbols.malloc(n) as Pointer | null, free: (p) => lib.symbols.free(p) };
    }
    return NativeArena.#asan;
  }

  /** `bytes` (> 0) bytes; returns a byte view and its address. */
  bytes(bytes: number): { view: Uint8Array; pointer: Pointer } {
    if (bytes <= 0) throw new RangeError("NativeArena.bytes: size must be > 0");
    const asan = NativeArena.#allocator();
    if (asan) {
      const pointer = asan.malloc(bytes);
      if (!pointer) throw new Error(`malloc(${bytes}) failed`);
      this.#pointers.push(pointer);
      const view = new Uint8Array(toArrayBuffer(pointer, 0, bytes));
      this.#keep.push(view);
      return { view, pointer };
    }
    const view = new Uint8Array(bytes);
    this.#keep.push(view);
    return { view, pointer: ptr(view) };
  }

  f32(length: number): Float32Array {
    const { view } = this.bytes(Math.max(1, length) * 4);
    return new Float32Array(view.buffer, view.byteOffset, Math.max(1, length)).subarray(0, length);
  }
  i32(length: number): Int32Array {
    const { view } = this.bytes(Math.max(1, length) * 4);
    return new Int32Array(view.buffer, view.byteOffset, Math.max(1, length)).subarray(0, length);
  }
  u16(length: number): Uint16Array {
    const { view } = this.bytes(Math.max(1, length) * 2);
    return new Uint16Array(view.buffer, view.byteOffset, Math.max(1, length)).subarray(0, length);
  }
  /** A copy of logits in exact-size native memory. */
  logits(values: Float32Array | Uint16Array): Float32Array | Uint16Array {
    const out = values instanceof Float32Array ? this.f32(values.length) : this.u16(values.length);
    out.set(values);
    return out;
  }

  /** Frees everything this arena handed out. Views must not be used afterwards. */
  release(): void {
    const asan = NativeArena.#asan;
    if (asan) for (const p of this.#pointers) asan.free(p);
    this.#pointers = [];
    this.#keep = [];
  }
}

// ---- routing problems -------------------------------------------------------------------------

/** A routing problem with its logits already in the dtype's in-memory form. */
export interface Problem extends RouteProblem {
  logits: Float32Array | Uint16Array;
  bias: Float32Array | null;
}

/** Builds a problem from fp32 row values (converted to the dtype with api/dtype.ts toLogits). */
export function problem(
  values: ArrayLike<number>,
  o: {
    dtype: Dtype;
    experts: number;
    tokens?: number;
    rowStride?: number;
    k: number;
    bias?: ArrayLike<number> | null;
    renormalize?: boolean;
    scale?: number;
  },
): Problem {
  const rowStride = o.rowStride ?? o.experts;
  const tokens = o.tokens ?? Math.ceil(values.length / rowStride);
  return {
    logits: toLogits(values, o.dtype),
    dtype: o.dtype,
    tokens,
    experts: o.experts,
    rowStride,
    bias: o.bias ? Float32Array.from(o.bias) : null,
    k: o.k,
    renormalize: o.renormalize ?? false,
    scale: o.scale ?? 1,
  };
}

export interface Outputs {
  weights: Float32Array;
  indices: Int32Array;
}

/** Runs a problem through the public API (createRouter(... backend: "host").route). */
export function routeWithApi(p: Problem, arena?: NativeArena): Outputs {
  const router = createRouter({
    experts: p.experts,
    topk: p.k,
    dtype: p.dtype,
    bias: p.bias ?? undefined,
    renormalize: p.renormalize,
    scale: p.scale,
    rowStride: p.rowStride,
    backend: "host",
  });
  const logits = arena && p.logits.length > 0 ? arena.logits(p.logits) : p.logits;
  const out = arena ? { weights: arena.f32(p.tokens * p.k), indices: arena.i32(p.tokens * p.k) } : undefined;
  const result = router.route(logits, { tokens: p.tokens, out });
  if (result.backend !== "host") throw new Error(`router ran backend ${result.backend}, expected host`);
  return { weights: result.weights.slice(0, p.tokens * p.k), indices: result.indices.slice(0, p.tokens * p.k) };
}

/** Runs a problem through a raw route symbol; throws on a non-OK status. */
export function routeRaw(p: Problem, arena: NativeArena, entry: RouteEntry = "topk_sigmoid_host"): Outputs {
  const lib = native();
  const n = p.tokens * p.k;
  const logits = p.logits.length > 0 ? arena.logits(p.logits) : null;
  const bias = p.bias ? arena.f32(p.bias.length) : null;
  if (bias && p.bias) bias.set(p.bias);
  const weights = n > 0 ? arena.f32(n) : null;
  const indices = n > 0 ? arena.i32(n) : null;
  const status = lib.symbols[entry](
    logits,
    DtypeCode[p.dtype],
    p.tokens,
    p.experts,
    p.rowStride,
    bias,
    bias ? p.experts : 0,
    p.k,
    p.renormalize ? 1 : 0,
    p.scale,
    weights,
    indices,
    null,
  );
  if (status !== Status.TS_OK)
    throw new Error(`${entry} returned ${status}: ${lib.symbols.topk_sigmoid_last_error()?.toString()}`);
  return { weights: Float32Array.from(weights ?? []), indices: Int32Array.from(indices ?? []) };
}

/** Byte-level equality of two outputs (weights compared as bits, so -0/+0 and NaN count). */
export function sameBytes(a: Outputs, b: Outputs): boolean {
  if (a.weights.length !== b.weights.length || a.indices.length !== b.indices.length) return false;
  const wa = new Uint32Array(a.weights.buffer, a.weights.byteOffset, a.weights.length);
  const wb = new Uint32Array(b.weights.buffer, b.weights.byteOffset, b.weights.length);
  return wa.every((v, i) => v === wb[i]) && a.indices.every((v, i) => v === b.indices[i]);
}

// ---- random problems (host_reference.test.ts) --------------------------------------------------------------------------

export const SHAPES = [
  1, 2, 3, 5, 7, 8, 16, 31, 32, 33, 63, 64, 100, 128, 160, 255, 256, 257, 384, 512, 1000, 1024, 1025, 2048, 3000, 4096,
];
const SCALES = [1, 1, 2.5, 0.5, -1.5, 0, 1e-3, 16];
const GARBAGE = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e30, -1e30, 3.4e38, 65504, 1e9];

type Fill = "normal" | "ties" | "narrow" | "spiky" | "rawbits";

function randomValue(rng: Rng, fill: Fill, sigma: number): number {
  switch (fill) {
    case "normal":
      return rng.normal() * sigma;
    case "ties":
      return rng.int(-3, 3) * 0.5;
    case "narrow":
      return 1 + rng.normal() * 1e-6;
    case "spiky":
      return rng.chance(0.1)
        ? rng.pick([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 40, -40, 17, 30, -0, 0])
        : rng.normal() * sigma;
    case "rawbits":
      return 0; // filled as raw bits below
  }
}

/**
 * A random routing problem: E from 1 to 4096 (many non powers of two), k from 1 to min(E, 32),
 * T from 0 up to a budget of elements, stride > E with garbage padding, every dtype, logits that
 * are smooth, tied, nearly equal, spiky (inf, NaN, saturating) or raw bit patterns, bias kinds,
 * renormalize and scale. `shape` forces a T = 0 call or one large enough for the worker pool.
 */
export function randomProblem(rng: Rng, shape: "any" | "empty" | "pool" = "any"): Problem {
  const experts = rng.chance(0.6) ? rng.pick(SHAPES) : rng.int(1, 4096);
  const kMax = Math.min(experts, 32);
  const k = rng.chance(0.25) ? kMax : rng.chance(0.15) ? 1 : rng.int(1, kMax);
  const rowStride = rng.chance(0.6) ? experts : experts + rng.int(1, 40);
  const tokens =
    shape === "empty"
      ? 0
      : shape === "pool" // rows * experts >= 65536: the host pool splits the rows across threads
        ? Math.ceil(66_000 / experts) + rng.int(0, 8)
        : rng.chance(0.05)
          ? 0
          : rng.chance(0.15)
            ? 1
            : rng.int(2, Math.max(2, Math.floor(20_000 / rowStride)));
  const dtype = rng.pick(dtypes);
  const fill = rng.pick<Fill>(["normal", "normal", "ties", "narrow", "spiky", "rawbits"]);
  const sigma = rng.pick([0.05, 1, 3, 8]);
  // the last row may end right after its experts (no trailing padding)
  const length = tokens === 0 ? 0 : rng.chance(0.5) ? tokens * rowStride : (tokens - 1) * rowStride + experts;
  const values = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const inRow = i % rowStride < experts;
    values[i] = inRow ? randomValue(rng, fill, sigma) : rng.pick(GARBAGE);
  }
  const biasKind = rng.pick(["none", "none", "small", "discrete", "large"] as const);
  const bias =
    biasKind === "none"
      ? null
      : Array.from({ length: experts }, () =>
          biasKind === "small"
            ? rng.normal() * 0.05
            : biasKind === "discrete"
              ? rng.pick([0, 0.25, -0.5])
              : rng.normal() * 2,
        );
  const p = problem(values, {
    dtype,
    experts,
    tokens,
    rowStride,
    k,
    bias,
    renormalize: rng.chance(0.5),
    scale: rng.chance(0.8) ? rng.pick(SCALES) : rng.normal() * 4,
  });
  if (fill === "rawbits") {
    if (p.logits instanceof Uint16Array) {
      for (let i = 0; i < length; i++) if (i % rowStride < experts) p.logits[i] = rng.u32() & 0xffff;
    } else {
      const bits = new Uint32Array(p.logits.buffer, p.logits.byteOffset, p.logits.length);
      for (let i = 0; i < length; i++) if (i % rowStride < experts) bits[i] = rng.u32();
    }
  } else if (p.logits instanceof Uint16Array) {
    // 16-bit padding also gets raw garbage bits (NaN payloads, infinities, anything)
    for (let i = 0; i < length; i++) if (i % rowStride >= experts && rng.chance(0.5)) p.logits[i] = rng.u32() & 0xffff;
  }
  return p;
}
