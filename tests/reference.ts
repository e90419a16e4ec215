// tests/reference.ts: an independent fp64 reference of the routing semantics (DESIGN.md,
// "Semantics"), written from the contract and not from hip/semantics.h: the sigmoid is the
// textbook 1 / (1 + e^-x) in fp64, 16-bit inputs are decoded here with their own code, and
// ordering is a plain comparison sort.
//
// What an fp64 reference can and cannot decide:
//  - Without a bias the ranking key is the logit itself, which fp64 holds exactly, so the
//    chosen indices must match the native result exactly, always.
//  - With a bias the key is score + bias in fp32, where the native score comes from a fp32
//    polynomial that may differ from the correctly rounded score by a couple of ulps. Keys that
//    are within a few fp32 ulps of each other ("near ties") can therefore legitimately come out
//    in either order; nearTieGroups() reports those rank ranges so tests accept any order
//    (and, at the k boundary, any choice) inside them, and nothing else.
//  - Weights are compared with a tolerance (1e-6 relative to scale), except that weights built
//    from subnormal fp32 scores and then renormalised are ill-conditioned (a 1-ulp change of a
//    subnormal is a large relative change); checkRoute then checks only their sum and range.

export type RefDtype = "f32" | "f16" | "bf16";

/** How many fp32 ulps the native sigmoid may differ from the correctly rounded one. */
export const SIGMOID_MAX_ULPS = 2;
/** Absolute weight tolerance, as a fraction of |scale|. */
export const WEIGHT_TOLERANCE = 1e-6;

// ---- exact decoding of the inputs -------------------------------------------------------------

const f32Scratch = new DataView(new ArrayBuffer(4));

/** The fp64 value of fp16 bits (exact). */
export function decodeF16(bits: number): number {
  const negative = (bits & 0x8000) !== 0;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  let magnitude: number;
  if (exponent === 0x1f) magnitude = fraction === 0 ? Number.POSITIVE_INFINITY : Number.NaN;
  else if (exponent === 0) magnitude = fraction * 2 ** -24;
  else magnitude = (1024 + fraction) * 2 ** (exponent - 25);
  return negative ? -magnitude : magnitude;
}

/** The fp64 value of bf16 bits (exact): the top half of an fp32. */
export function decodeBf16(bits: number): number {
  f32Scratch.setUint32(0, (bits & 0xffff) * 0x10000);
  return f32Scratch.getFloat32(0);
}

/** Decoded logits of one dtype as fp64 values (f32 values are taken as they are). */
export function decodeLogits(raw: ArrayLike<number>, dtype: RefDtype): Float64Array {
  const out = new Float64Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] as number;
    out[i] = dtype === "f32" ? v : dtype === "f16" ? decodeF16(v) : decodeBf16(v);
  }
  return out;
}

// ---- fp32 helpers -----------------------------------------------------------------------------

/** Spacing of fp32 numbers at |v| (2^-149 in the subnormal range). */
export function ulp32(v: number): number {
  const a = Math.abs(Math.fround(v));
  if (!Number.isFinite(a)) return Number.POSITIVE_INFINITY;
  f32Scratch.setFloat32(0, a);
  const exponent = f32Scratch.getUint32(0) >>> 23;
  return exponent === 0 ? 2 ** -149 : 2 ** (exponent - 150);
}

/** sigmoid in fp64, evaluated so that nothing overflows. NaN in, NaN out. */
export function sigmoid64(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** The routed score of a logit as an fp32 number: the correctly rounded sigmoid; 0 for NaN. */
export function score32(x: number): number {
  return Number.isNaN(x) ? 0 : Math.fround(sigmoid64(x));
}

// ---- ranking ----------------------------------------------------------------------------------

/** Routing order on keys: higher first, equal keys by lower index, NaN last (NaNs by index). */
export function compareKeys(ka: number, a: number, kb: number, b: number): number {
  const nanA = Number.isNaN(ka);
  const nanB = Number.isNaN(kb);
  if (nanA || nanB) {
    if (nanA && nanB) return a - b;
    return nanA ? 1 : -1;
  }
  if (ka > kb) return -1;
  if (ka < kb) return 1; // -0 and +0 compare equal here
  return a - b;
}

/** One row's problem: decoded logits (fp64, exact) and the optional fp32 bias. */
export interface RowInput {
  x: Float64Array | readonly number[];
  bias?: ArrayLike<number> | null;
}

/**
 * The ranking key of each expert: the logit itself without bias (exact), or the fp32 sum of
 * the correctly rounded fp32 score and the bias with one.
 */
export function rankingKeys(row: RowInput): Float64Array {
  const { x, bias } = row;
  const keys = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) {
    const v = x[e] as number;
    keys[e] = bias ? (Number.isNaN(v) ? Number.NaN : Math.fround(Math.fround(sigmoid64(v)) + (bias[e] as number))) : v;
  }
  return keys;
}

/** All expert indices of a row in routing order. */
export function rankOrder(keys: Float64Array): Int32Array {
  const order = Int32Array.from({ length: keys.length }, (_, i) => i);
  order.sort((a, b) => compareKeys(keys[a] as number, a, keys[b] as number, b));
  return order;
}

/** A range of ranks [start, end) whose order an fp64 reference cannot decide. */
export interface NearTieGroup {
  start: number;
  end: number;
}

/**
 * Near ties at fp32 precision, for rows ranked with a bias. Each finite key carries an
 * uncertainty: the native fp32 score may be SIGMOID_MAX_ULPS ulps off the correctly rounded one
 * (plus one ulp of slack), and the fp32 add rounds once more. Experts whose uncertainty
 * intervals overlap may come out in either order natively, and so may everything between them.
 * A group is a maximal run of ranks that no cut separates, where ranks r and r+1 are cut apart
 * when every interval at or above r lies strictly above every interval below it. A group whose
 * members all share one logit value and one bias is an exact tie in every implementation
 * (index order) and is not reported. NaN and infinite keys are exact (they come from NaN
 * inputs or infinite biases) and never group. Only groups that reach into the first `limit`
 * ranks are returned. Without a bias there are never near ties: returns [].
 */
export function nearTieGroups(row: RowInput, order: Int32Array, keys: Float64Array, limit: number): NearTieGroup[] {
  const { x, bias } = row;
  if (!bias) return [];
  const n = order.length;
  const lo = new Float64Array(n);
  const hi = new Float64Array(n);
  const finite = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    const e = order[r] as number;
    const key = keys[e] as number;
    if (!Number.isFinite(key)) continue;
    const s = (SIGMOID_MAX_ULPS + 1) * ulp32(sigmoid64(x[e] as number)) + ulp32(key);
    lo[r] = key - s;
    hi[r] = key + s;
    finite[r] = 1;
  }
  // suffix maximum of the upper bounds of finite keys
  const sufHi = new Float64Array(n + 1).fill(Number.NEGATIVE_INFINITY);
  for (let r = n - 1; r >= 0; r--)
    sufHi[r] = Math.max(sufHi[r + 1] as number, finite[r] ? (hi[r] as number) : Number.NEGATIVE_INFINITY);
  const identical = (a: number, b: number) => x[a] === x[b] && bias[a] === bias[b];
  const groups: NearTieGroup[] = [];
  let start = 0;
  let prefLo = Number.POSITIVE_INFINITY;
  for (let r = 0; r < n; r++) {
    prefLo = finite[r] ? Math.min(prefLo, lo[r] as number) : Number.POSITIVE_INFINITY;
    const cut = r + 1 === n || !finite[r] || !finite[r + 1] || prefLo > (sufHi[r + 1] as number);
    if (!cut) continue;
    const end = r + 1;
    if (end - start >= 2) {
      let same = true;
      for (let i = start + 1; i < end && same; i++) same = identical(order[start] as number, order[i] as number);
      if (!same) groups.push({ start, end });
    }
    if (end >= limit) break;
    start = end;
    prefLo = Number.POSITIVE_INFINITY;
  }
  return groups;
}

// ---- weights ----------------------------------------------------------------------------------

/** Expected final weights (fp64) of the chosen experts, in the given order. */
export function expectedWeights(
  x: Float64Array | readonly number[],
  chosen: ArrayLike<number>,
  renormalize: boolean,
  scale: number,
): { weights: Float64Array; sum: number } {
  const weights = new Float64Array(chosen.length);
  let sum = 0;
  for (let r = 0; r < chosen.length; r++) {
    const w = score32(x[chosen[r] as number] as number);
    weights[r] = w;
    sum += w;
  }
  for (let r = 0; r < chosen.length; r++) {
    const w = weights[r] as number;
    weights[r] = (renormalize && sum !== 0 ? w / sum : w) * scale;
  }
  return { weights, sum };
}

/** A renormalised row whose scores are all tiny cannot be checked to 1e-6 (subnormal scores). */
export const illConditioned = (renormalize: boolean, sum: number) => renormalize && sum > 0 && sum < 2 ** -100;

// ---- whole problems ---------------------------------------------------------------------------

/** One routing call, as the native ABI sees it. Logits hold f32 values or 16-bit raw bits. */
export interface RouteProblem {
  logits: ArrayLike<number>;
  dtype: RefDtype;
  tokens: number;
  experts: number;
  rowStride: number;
  bias?: ArrayLike<number> | null;
  k: number;
  renormalize: boolean;
  scale: number;
}

export interface RouteOutputs {
  weights: ArrayLike<number>;
  indices: ArrayLike<number>;
}

/** Decoded logits of row t (the first `experts` elements; padding is never read). */
export function rowOf(p: RouteProblem, t: number): Float64Array {
  const begin = t * p.rowStride;
  const raw = new Float64Array(p.experts);
  for (let e = 0; e < p.experts; e++) raw[e] = p.logits[begin + e] as number;
  return decodeLogits(raw, p.dtype);
}

export interface ReferenceRow {
  x: Float64Array;
  keys: Float64Array;
  order: Int32Array;
  indices: Int32Array;
  weights: Float64Array;
  sum: number;
  nearTies: NearTieGroup[];
}

/** The reference result of row t. */
export function referenceRow(p: RouteProblem, t: number): ReferenceRow {
  const x = rowOf(p, t);
  const row = { x, bias: p.bias ?? null };
  const keys = rankingKeys(row);
  const order = rankOrder(keys);
  const indices = order.slice(0, p.k);
  const { weights, sum } = expectedWeights(x, indices, p.renormalize, Math.fround(p.scale));
  return { x, keys, order, indices, weights, sum, nearTies: nearTieGroups(row, order, keys, p.k) };
}

/** The reference result of a whole call (indices in rank order; weights fp64). */
export function referenceRoute(p: RouteProblem): { indices: Int32Array; weights: Float64Array } {
  const indices = new Int32Array(p.tokens * p.k);
  const weights = new Float64Array(p.tokens * p.k);
  for (let t = 0; t < p.tokens; t++) {
    const r = referenceRow(p, t);
    indices.set(r.indices, t * p.k);
    weights.set(r.weights, t * p.k);
  }
  return { indices, weights };
}

const fmt = (v: number) => (Object.is(v, -0) ? "-0" : String(v));

/** Describes a problem compactly for failure messages. */
export function describeProblem(p: RouteProblem): string {
  return `dtype=${p.dtype} T=${p.tokens} E=${p.experts} stride=${p.rowStride} k=${p.k} bias=${p.bias ? "yes" : "no"} renormalize=${p.renormalize} scale=${fmt(p.scale)}`;
}

/**
 * Checks native outputs against the reference. Returns readable problems (empty: all good),
 * at most `maxReports` of them.
 *  - indices: distinct, in range, and equal to the reference, except inside near-tie groups
 *    (bias only), where each rank must hold a member of its group;
 *  - weights: within WEIGHT_TOLERANCE * |scale| (plus one fp32 ulp of the weight, which only
 *    matters for subnormal results) of the expected weight of the index actually chosen; ill-conditioned renormalised rows: each weight within [0, 1] * scale and their
 *    sum within 1e-5 of scale.
 */
export function checkRoute(p: RouteProblem, out: RouteOutputs, maxReports = 5): string[] {
  const problems: string[] = [];
  const k = p.k;
  const scale = Math.fround(p.scale); // the ABI takes scale as an fp32
  const tol = WEIGHT_TOLERANCE * Math.abs(scale);
  const report = (t: number, what: string, ref?: ReferenceRow) => {
    if (problems.length >= maxReports) return;
    const got = Array.from({ length: k }, (_, r) => `${out.indices[t * k + r]}:${out.weights[t * k + r]}`);
    const want = ref ? Array.from(ref.indices, (i, r) => `${i}:${ref.weights[r]}`) : [];
    problems.push(
      `${describeProblem(p)} row ${t}: ${what}\n    got      ${got.join(" ")}\n    expected ${want.join(" ")}` +
        (ref?.nearTies.length ? `\n    near ties ${ref.nearTies.map((g) => `[${g.start},${g.end})`).join(" ")}` : ""),
    );
  };
  for (let t = 0; t < p.tokens && problems.length < maxReports; t++) {
    const ref = referenceRow(p, t);
    const got = Int32Array.from({ length: k }, (_, r) => out.indices[t * k + r] as number);
    const seen = new Set<number>();
    let indicesOk = true;
    for (let r = 0; r < k; r++) {
      const i = got[r] as number;
      if (!Number.isInteger(i) || i < 0 || i >= p.experts || seen.has(i)) {
        report(t, `rank ${r}: index ${i} is out of range or repeated`, ref);
        indicesOk = false;
        break;
      }
      seen.add(i);
    }
    if (!indicesOk) continue;
    // rank r may hold any member of its near-tie group; outside groups it must be exact
    const groupOf = new Int32Array(p.experts).fill(-1);
    for (const [g, group] of ref.nearTies.entries())
      for (let r = group.start; r < group.end; r++) groupOf[ref.order[r] as number] = g;
    for (let r = 0; r < k; r++) {
      const want = ref.indices[r] as number;
      const have = got[r] as number;
      if (have === want) continue;
      const g = groupOf[want] as number;
      if (g >= 0 && groupOf[have] === g) continue;
      report(t, `rank ${r}: index ${have}, expected ${want}`, ref);
      indicesOk = false;
      break;
    }
    if (!indicesOk) continue;
    const { weights, sum } = expectedWeights(ref.x, got, p.renormalize, scale);
    if (illConditioned(p.renormalize, sum)) {
      let total = 0;
      for (let r = 0; r < k; r++) {
        const w = out.weights[t * k + r] as number;
        total += w;
        if (
          !Number.isFinite(w) ||
          Math.abs(w) > Math.abs(scale) * (1 + 1e-6) ||
          (w !== 0 && Math.sign(w) !== Math.sign(scale))
        )
          report(t, `rank ${r}: weight ${w} outside [0, scale] (renormalised subnormal scores)`, ref);
      }
      if (Math.abs(total - scale) > 1e-5 * Math.abs(scale) + k * ulp32(scale))
        report(t, `renormalised weights sum to ${total}, expected scale ${scale}`, ref);
      continue;
    }
    for (let r = 0; r < k; r++) {
      const w = out.weights[t * k + r] as number;
      const want = weights[r] as number;
      // plus one fp32 ulp of the result: a subnormal scale quantises the weights themselves
      if (!(Math.abs(w - want) <= tol + ulp32(want))) {
        report(t, `rank ${r} (expert ${got[r]}): weight ${w}, expected ${want} (tolerance ${tol})`, ref);
        break;
      }
    }
  }
  return problems;
}
