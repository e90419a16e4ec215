// tests/gpu_cases.ts: deterministic logits for the GPU suites: random rows mixed with
// adversarial ones (ties, NaN, +-inf, fp32-saturating values, -0/+0), in any dtype and stride.
import { type Dtype, floatToBf16Bits, floatToF16Bits, type Logits } from "../mod.ts";

/** mulberry32: small, fast, seedable. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, 17, 30, 40, -40, 1e30, -1e30];

/** One row's fp32 values: kind 0 random normal, 1 ties, 2 specials sprinkled, 3 saturating, 4 all NaN. */
function rowValues(r: () => number, experts: number, kind: number): number[] {
  const row = new Array<number>(experts);
  switch (kind) {
    case 1: {
      const levels = [r() * 4 - 2, r() * 4 - 2, r() * 4 - 2];
      for (let e = 0; e < experts; e++) row[e] = levels[Math.floor(r() * levels.length)] as number;
      return row;
    }
    case 2:
      for (let e = 0; e < experts; e++)
        row[e] = r() < 0.3 ? (special[Math.floor(r() * special.length)] as number) : gaussian(r);
      return row;
    case 3:
      for (let e = 0; e < experts; e++) row[e] = 16 + r() * 30; // sigmoid saturates to 1.0f
      return row;
    case 4:
      return row.fill(Number.NaN);
    default:
      for (let e = 0; e < experts; e++) row[e] = gaussian(r) * 2;
      return row;
  }
}

/** fp32 values in the dtype's memory form (16-bit dtypes as bit patterns). */
function inDtype(f32: Float32Array, dtype: Dtype): Logits {
  if (dtype === "f32") return f32;
  const convert = dtype === "bf16" ? floatToBf16Bits : floatToF16Bits;
  return Uint16Array.from(f32, (x) => convert(x));
}

/** Logits [tokens, experts] of random normal rows only (what a router sees), for the profiling tools. */
export function makeNormalLogits(seed: number, tokens: number, experts: number, dtype: Dtype): Logits {
  const r = rng(seed);
  const f32 = new Float32Array(tokens * experts);
  for (let i = 0; i < f32.length; i++) f32[i] = gaussian(r) * 2;
  return inDtype(f32, dtype);
}

/** Logits [tokens, stride] in the dtype's memory form; padding columns hold garbage. */
export function makeLogits(seed: number, tokens: number, experts: number, stride: number, dtype: Dtype): Logits {
  const r = rng(seed);
  const n = tokens * stride;
  const f32 = new Float32Array(n);
  for (let t = 0; t < tokens; t++) {
    const kindDraw = r();
    const kind = kindDraw < 0.8 ? 0 : kindDraw < 0.85 ? 1 : kindDraw < 0.93 ? 2 : kindDraw < 0.98 ? 3 : 4;
    const values = rowValues(r, experts, kind);
    const base = t * stride;
    for (let e = 0; e < experts; e++) f32[base + e] = values[e] as number;
    for (let e = experts; e < stride; e++) f32[base + e] = r() < 0.5 ? Number.NaN : 1e30; // must be ignored
  }
  return inDtype(f32, dtype);
}

export function makeBias(seed: number, experts: number): Float32Array {
  const r = rng(seed ^ 0x5bd1e995);
  const bias = new Float32Array(experts);
  // Large enough to reorder: sigmoid scores live in [0, 1].
  for (let e = 0; e < experts; e++) bias[e] = (r() - 0.5) * 0.6;
  if (experts > 3) bias[1] = bias[2] as number; // equal biases, so saturated scores tie
  return bias;
}

/** First difference between two results, as a readable string, or undefined if byte-identical. */
export function firstDifference(
  k: number,
  a: { weights: Float32Array; indices: Int32Array },
  b: { weights: Float32Array; indices: Int32Array },
): string | undefined {
  const wa = new Uint32Array(a.weights.buffer, a.weights.byteOffset, a.weights.length);
  const wb = new Uint32Array(b.weights.buffer, b.weights.byteOffset, b.weights.length);
  if (wa.length !== wb.length) return `lengths differ: ${wa.length} vs ${wb.length}`;
  for (let i = 0; i < wa.length; i++) {
    if (wa[i] !== wb[i] || a.indices[i] !== b.indices[i]) {
      const t = Math.floor(i / k);
      const row = (x: { weights: Float32Array; indices: Int32Array }) =>
        Array.from({ length: k }, (_, j) => `${x.indices[t * k + j]}:${x.weights[t * k + j]}`).join(" ");
      return `token ${t} rank ${i % k}: got [${row(a)}] expected [${row(b)}]`;
    }
  }
  return undefined;
}

/**
 * 16-bit logits [tokens, stride] built bit by bit, for the warp kernel's verified fast path
 * (hip/kernel_warp.hpp): besides random rows, the rows its checks exist for:
 * values repeated inside one lane's slice and across lanes, subnormals and the smallest normals
 * on top, rows with fewer positives than k (zeros of both signs), NaNs of both signs, infinities.
 */
export function makeLogits16Adversarial(
  seed: number,
  tokens: number,
  experts: number,
  stride: number,
  dtype: "bf16" | "f16",
): Uint16Array {
  const r = rng(seed);
  const bits = dtype === "bf16" ? floatToBf16Bits : floatToF16Bits;
  const minNormal = dtype === "bf16" ? 0x0080 : 0x0400;
  const posNaN = dtype === "bf16" ? 0x7fc1 : 0x7e01;
  const inf = dtype === "bf16" ? 0x7f80 : 0x7c00;
  const out = new Uint16Array(tokens * stride);
  const pick = (n: number) => Math.floor(r() * n);
  for (let t = 0; t < tokens; t++) {
    const row = out.subarray(t * stride, t * stride + experts);
    const kind = pick(10);
    for (let e = 0; e < experts; e++) row[e] = bits(gaussian(r) * 2);
    switch (kind) {
      case 1: {
        // The top value three or more times, often inside one lane's slice (adjacent experts).
        const top = bits(5 + r());
        const at = pick(experts - 4);
        const copies = 2 + pick(4);
        for (let c = 0; c < copies; c++) row[at + c] = top;
        if (r() < 0.5) row[pick(experts)] = top;
        break;
      }
      case 2: {
        // Few levels: ties everywhere, across lanes at the k-th place.
        const levels = [bits(r() * 4), bits(r() * 4), bits(-r())];
        for (let e = 0; e < experts; e++) row[e] = levels[pick(3)] as number;
        break;
      }
      case 3:
        // Subnormals and the smallest normals decide the top (positive and negative).
        for (let e = 0; e < experts; e++) row[e] = (r() < 0.3 ? 0x8000 : 0) | pick(minNormal * 2);
        break;
      case 4: {
        // Fewer positives than k: zeros of both signs and negatives fill the rest.
        for (let e = 0; e < experts; e++) row[e] = r() < 0.3 ? (r() < 0.5 ? 0x8000 : 0) : bits(-0.1 - r() * 3);
        const positives = pick(10);
        for (let p = 0; p < positives; p++) row[pick(experts)] = bits(r() * 3 + 0.01);
        break;
      }
      case 5:
        // Positive NaNs (they rank last) and infinities of both signs sprinkled in.
        for (let p = 0; p < 1 + pick(4); p++) row[pick(experts)] = posNaN + pick(8);
        for (let p = 0; p < pick(3); p++) row[pick(experts)] = (r() < 0.5 ? 0x8000 : 0) | inf;
        break;
      case 6:
        // Negative NaNs and negative infinity.
        for (let p = 0; p < 1 + pick(4); p++) row[pick(experts)] = 0x8000 | (posNaN + pick(8));
        row[pick(experts)] = 0x8000 | inf;
        break;
      case 7:
        row.fill(bits(r() * 2 - 1));
        break;
      default:
        break; // random normal rows (kinds 0, 8, 9)
    }
    for (let e = experts; e < stride; e++) out[t * stride + e] = r() < 0.5 ? posNaN : inf; // must be ignored
  }
  return out;
}

/**
 * A correction bias and logits [tokens, stride] for the warp kernel's bias prefilter
 * (hip/bias_prefilter.hpp), which ranks on a cheap score first and must still return the exact
 * result: biases equal or a few fp32 ulps apart, rows whose logits are solved so that
 * sigmoid(x) + bias lands within a few ulps of one value for a dozen or more experts (fp32
 * input keeps them that close; 16-bit inputs round them into coarser ties), rows of equal
 * logits (only the bias orders them), saturating rows, and NaN / infinity rows.
 * With `specials`, the bias itself holds +inf, -inf, NaN and +-1e30 at a few experts.
 */
export function makeBiasNearTies(
  seed: number,
  tokens: number,
  experts: number,
  stride: number,
  dtype: Dtype,
  specials = false,
): { logits: Logits; bias: Float32Array } {
  const r = rng(seed);
  const bias = new Float32Array(experts);
  const shared = 0.25;
  for (let e = 0; e < experts; e++) {
    const draw = r();
    // 2^-25 is one ulp of values in [0.25, 0.5): equal biases and biases one to four ulps apart.
    bias[e] = draw < 0.5 ? (r() - 0.5) * 0.6 : draw < 0.7 ? shared : shared + (1 + Math.floor(r() * 4)) * 2 ** -25;
  }
  if (specials && experts >= 12) {
    bias[3] = Number.POSITIVE_INFINITY;
    bias[5] = Number.NEGATIVE_INFINITY;
    bias[9] = Number.NaN;
    bias[10] = 1e30;
    bias[11] = -1e30;
  }
  const f32 = new Float32Array(tokens * stride);
  const pick = (n: number) => Math.floor(r() * n);
  for (let t = 0; t < tokens; t++) {
    const row = f32.subarray(t * stride, t * stride + experts);
    const kind = pick(8);
    for (let e = 0; e < experts; e++) row[e] = gaussian(r) * 2;
    if (kind === 1 || kind === 2) {
      // Near-ties: x = logit(target - bias) for many experts, then nudged by a few fp32 ulps.
      const target = 0.55 + r() * 0.4;
      for (let e = 0; e < experts; e++) row[e] = (row[e] as number) - 4;
      const count = 8 + pick(24);
      for (let c = 0; c < count; c++) {
        const e = pick(experts);
        const p = target - (bias[e] as number);
        if (!(p > 0 && p < 1)) continue;
        const x = Math.fround(Math.log(p / (1 - p)));
        const nudge = pick(7) - 3;
        const u = new Uint32Array(new Float32Array([x]).buffer)[0] as number;
        row[e] = new Float32Array(new Uint32Array([(u + (x === 0 ? 0 : nudge)) >>> 0]).buffer)[0] as number;
      }
    } else if (kind === 3) {
      row.fill(r() * 4 - 2); // equal logits: only the bias orders them
    } else if (kind === 4) {
      for (let e = 0; e < experts; e++) row[e] = 16 + r() * 30; // scores saturate to 1.0f
    } else if (kind === 5) {
      for (let p = 0; p < 1 + pick(4); p++) row[pick(experts)] = special[pick(special.length)] as number;
    }
    for (let e = experts; e < stride; e++) f32[t * stride + e] = r() < 0.5 ? Number.NaN : 1e30; // must be ignored
  }
  return { logits: inDtype(f32, dtype), bias };
}
