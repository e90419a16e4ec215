// tests/host_reference.test.ts: the host backend against the independent fp64 reference
// (tests/reference.ts), through the public API (createRouter(... backend: "host")) and the raw
// FFI symbol topk_sigmoid_host, on random shapes and on hand-made adversarial rows whose
// expected results are written out here. Seeded: TOPK_SIGMOID_SEED=<n>|random reproduces or varies.
import { afterAll, describe, expect, test } from "bun:test";
import { bf16BitsToFloat, type Dtype, dtypes, f16BitsToFloat } from "../api/dtype.ts";
import { libraryInfo, setHostThreads } from "../api/library_info.ts";
import { native } from "../ffi/library.ts";
import {
  NativeArena,
  type Outputs,
  type Problem,
  problem,
  Rng,
  randomProblem,
  routeRaw,
  routeWithApi,
  sameBytes,
  suiteSeed,
} from "./helpers.ts";
import {
  checkRoute,
  decodeBf16,
  decodeF16,
  describeProblem,
  nearTieGroups,
  rankingKeys,
  rankOrder,
  SIGMOID_MAX_ULPS,
  score32,
} from "./reference.ts";

const arena = new NativeArena();
afterAll(() => {
  setHostThreads(0);
  arena.release();
});

const info = libraryInfo();
const dispatchIsHost = info.deviceCount === 0;

/** Fails with every problem listed and the seed that reproduces them. */
function expectClean(problems: string[], seed?: number) {
  if (problems.length === 0) return;
  const how = seed === undefined ? "" : `\n(reproduce with TOPK_SIGMOID_SEED=${seed})`;
  throw new Error(`${problems.length} mismatch(es):\n${problems.slice(0, 8).join("\n")}${how}`);
}

/** Runs p through the API and the raw symbol (and the dispatcher where it routes on the host). */
function runBoth(p: Problem): { api: Outputs; raw: Outputs; problems: string[] } {
  const api = routeWithApi(p, arena);
  const raw = routeRaw(p, arena);
  const problems = checkRoute(p, api).map((m) => `[public API] ${m}`);
  if (!sameBytes(api, raw))
    problems.push(`[raw topk_sigmoid_host] ${describeProblem(p)}: differs from the public API's bytes`);
  if (dispatchIsHost) {
    const dispatched = routeRaw(p, arena, "topk_sigmoid");
    if (!sameBytes(api, dispatched))
      problems.push(`[raw topk_sigmoid] ${describeProblem(p)}: dispatcher (host) differs from topk_sigmoid_host`);
  }
  return { api, raw, problems };
}

describe("host backend vs fp64 reference: random problems", () => {
  const seed = suiteSeed(0x70c5_1a3d);
  test(`random shapes, dtypes, bias, renormalize, scale (seed ${seed})`, () => {
    const rng = new Rng(seed);
    const problems: string[] = [];
    let covered = { f32: 0, f16: 0, bf16: 0, bias: 0, stride: 0, pool: 0, zero: 0 };
    for (let c = 0; c < 220 && problems.length === 0; c++) {
      const p = randomProblem(rng, c % 40 === 7 ? "pool" : c % 50 === 3 ? "empty" : "any");
      covered = {
        f32: covered.f32 + (p.dtype === "f32" ? 1 : 0),
        f16: covered.f16 + (p.dtype === "f16" ? 1 : 0),
        bf16: covered.bf16 + (p.dtype === "bf16" ? 1 : 0),
        bias: covered.bias + (p.bias ? 1 : 0),
        stride: covered.stride + (p.rowStride > p.experts ? 1 : 0),
        pool: covered.pool + (p.tokens * p.experts >= 65536 ? 1 : 0),
        zero: covered.zero + (p.tokens === 0 ? 1 : 0),
      };
      problems.push(...runBoth(p).problems.map((m) => `case ${c}: ${m}`));
    }
    expectClean(problems, seed);
    // the generator really produced what this test claims to cover
    for (const [what, n] of Object.entries(covered)) expect({ what, n: n > 0 }).toEqual({ what, n: true });
  }, 60_000);

  test("the worker pool gives the same bytes as one thread", () => {
    const rng = new Rng(suiteSeed(0xbeef));
    for (const dtype of dtypes) {
      const experts = 257;
      const values = Array.from({ length: 600 * experts }, () => rng.normal() * 2);
      const bias = Array.from({ length: experts }, () => rng.normal() * 0.1);
      const p = problem(values, { dtype, experts, k: 8, bias, renormalize: true, scale: 2.5 });
      setHostThreads(1);
      const one = routeRaw(p, arena);
      setHostThreads(3);
      const three = routeRaw(p, arena);
      setHostThreads(0);
      const auto = routeRaw(p, arena);
      expect(sameBytes(one, three)).toBe(true);
      expect(sameBytes(one, auto)).toBe(true);
      expectClean(checkRoute(p, one));
    }
  }, 30_000);
});

// ---- the reference itself ---------------------------------------------------------------------

describe("reference sanity", () => {
  test("16-bit decoders agree with api/dtype.ts on all 65536 bit patterns", () => {
    const bad: string[] = [];
    for (let bits = 0; bits < 0x10000; bits++) {
      if (!Object.is(decodeF16(bits), f16BitsToFloat(bits))) bad.push(`f16 0x${bits.toString(16)}`);
      if (!Object.is(decodeBf16(bits), bf16BitsToFloat(bits))) bad.push(`bf16 0x${bits.toString(16)}`);
    }
    expect(bad.slice(0, 10)).toEqual([]);
  });

  test("near ties are reported only where fp32 keys cannot be decided", () => {
    const groups = (x: number[], bias: number[] | null, k: number) => {
      const row = { x, bias };
      const keys = rankingKeys(row);
      return nearTieGroups(row, rankOrder(keys), keys, k);
    };
    // sigmoid(17) and sigmoid(30) are both 1.0f: undecidable from fp64
    expect(groups([17, 30], [0, 0], 1)).toEqual([{ start: 0, end: 2 }]);
    // 0.5 and sigmoid(1e-7) = 0.5 + 2.5e-8 round to the same fp32
    expect(groups([0, 1e-7, -5], [0, 0, 0], 2)).toEqual([{ start: 0, end: 2 }]);
    // identical logit and bias: an exact tie everywhere (index order), not a near tie
    expect(groups([2, 2, 1], [0.1, 0.1, 0], 2)).toEqual([]);
    // well separated keys
    expect(groups([1, 2, 3], [0, 0, 0], 3)).toEqual([]);
    // without bias the ranking is exact
    expect(groups([17, 30], null, 1)).toEqual([]);
    // a run that starts at or after rank k does not matter
    expect(groups([5, 17, 30], [1, 0, 0], 1)).toEqual([]);
  });
});

// ---- native sigmoid accuracy ------------------------------------------------------------------

test(`native sigmoid is within ${SIGMOID_MAX_ULPS} ulps of the correctly rounded fp32 sigmoid`, () => {
  // a sweep over fp32 bit patterns of both signs up to |x| = 105 (beyond it the score is 0 or 1)
  const stride = 4099;
  const top = 0x42d20000;
  const n = Math.floor(top / stride);
  const bits = new Uint32Array(2 * n);
  for (let i = 0; i < n; i++) {
    bits[2 * i] = i * stride;
    bits[2 * i + 1] = (i * stride) | 0x80000000;
  }
  const x = new Float32Array(bits.buffer);
  const logits = arena.logits(x);
  const weights = arena.f32(x.length);
  const indices = arena.i32(x.length);
  const lib = native();
  expect(lib.symbols.topk_sigmoid_host(logits, 0, x.length, 1, 1, null, 0, 1, 0, 1, weights, indices, null)).toBe(0);
  const f = new Float32Array(2);
  const u = new Uint32Array(f.buffer);
  let worst = 0;
  let worstAt = 0;
  for (let i = 0; i < x.length; i++) {
    f[0] = score32(x[i] as number);
    f[1] = weights[i] as number;
    const d = Math.abs((u[0] as number) - (u[1] as number));
    if (d > worst) {
      worst = d;
      worstAt = x[i] as number;
    }
  }
  expect({ worstUlps: worst <= SIGMOID_MAX_ULPS, at: worstAt, worst }).toEqual({ worstUlps: true, at: worstAt, worst });
  expect(indices.every((i) => i === 0)).toBe(true);
}, 30_000);

// ---- adversarial rows with written-out expectations -------------------------------------------

const S = {
  m1: 0.2689414213699951,
  0: 0.5,
  1: 0.7310585786300049,
  2: 0.8807970779778823,
  3: 0.9525741268224334,
  4: 0.9820137900379085,
  5: 0.9933071490757153,
} as const;
const inf = Number.POSITIVE_INFINITY;
const NaN_ = Number.NaN;

interface Expected {
  indices: number[][];
  weights: number[][];
}

/** Runs one hand-made case on every dtype listed (API, raw, reference) and checks the written result. */
function expectCase(
  name: string,
  rows: number[][],
  o: {
    k: number;
    bias?: number[];
    renormalize?: boolean;
    scale?: number;
    rowStride?: number;
    dtypes?: readonly Dtype[];
  },
  want: Expected,
) {
  for (const dtype of o.dtypes ?? dtypes) {
    const experts = (rows[0] as number[]).length;
    const stride = o.rowStride ?? experts;
    const values = new Float32Array(rows.length * stride).fill(Number.NaN); // padding is NaN garbage
    rows.forEach((r, t) => values.set(r, t * stride));
    const p = problem(values, {
      dtype,
      experts,
      tokens: rows.length,
      rowStride: stride,
      k: o.k,
      bias: o.bias,
      renormalize: o.renormalize,
      scale: o.scale,
    });
    const { api, raw, problems } = runBoth(p);
    const label = `${name} [${dtype}]`;
    expect({ label, indices: chunk(api.indices, o.k) }).toEqual({ label, indices: want.indices });
    const got = chunk(api.weights, o.k);
    want.weights.forEach((row, t) =>
      row.forEach((w, r) => {
        const g = got[t]?.[r] as number;
        if (!(Math.abs(g - w) <= 1e-6)) throw new Error(`${label}: row ${t} rank ${r} weight ${g}, expected ${w}`);
      }),
    );
    expect(sameBytes(api, raw)).toBe(true);
    expectClean(problems.map((m) => `${label}: ${m}`));
  }
}

const chunk = (a: ArrayLike<number>, k: number) =>
  Array.from({ length: a.length / k }, (_, t) => Array.from({ length: k }, (_, r) => a[t * k + r] as number));

describe("adversarial rows", () => {
  test("all equal: lowest indices, in index order", () => {
    expectCase(
      "all equal",
      [[2, 2, 2, 2, 2, 2, 2, 2]],
      { k: 3 },
      { indices: [[0, 1, 2]], weights: [[S[2], S[2], S[2]]] },
    );
    expectCase(
      "all equal, renormalized",
      [[2, 2, 2, 2, 2]],
      { k: 4, renormalize: true, scale: 2.5 },
      { indices: [[0, 1, 2, 3]], weights: [[0.625, 0.625, 0.625, 0.625]] },
    );
  });

  test("equal pair straddling the k boundary: the lower index gets in", () => {
    expectCase("straddle", [[5, 4, 1, 3, 3, 0]], { k: 3 }, { indices: [[0, 1, 3]], weights: [[S[5], S[4], S[3]]] });
    expectCase(
      "straddle, reversed roles",
      [[3, 5, 3, 4]],
      { k: 3 },
      { indices: [[1, 3, 0]], weights: [[S[5], S[4], S[3]]] },
    );
  });

  test("+inf / -inf / NaN: inf first (by index), NaN below -inf, NaN weight 0", () => {
    expectCase("infinities", [[-inf, 1, inf, NaN_, inf]], { k: 3 }, { indices: [[2, 4, 1]], weights: [[1, 1, S[1]]] });
    expectCase(
      "infinities, full",
      [[-inf, 1, inf, NaN_, inf]],
      { k: 5 },
      { indices: [[2, 4, 1, 0, 3]], weights: [[1, 1, S[1], 0, 0]] },
    );
    expectCase("NaN below -inf", [[NaN_, -inf, NaN_]], { k: 3 }, { indices: [[1, 0, 2]], weights: [[0, 0, 0]] });
  });

  test("all-NaN rows: indices by index, weights 0 (renormalize keeps 0)", () => {
    const rows = [
      [NaN_, NaN_, NaN_, NaN_],
      [NaN_, 1, NaN_, NaN_],
    ];
    const want = {
      indices: [
        [0, 1],
        [1, 0],
      ],
      weights: [
        [0, 0],
        [S[1], 0],
      ],
    };
    expectCase("all NaN", rows, { k: 2 }, want);
    expectCase(
      "all NaN, renormalized",
      rows,
      { k: 2, renormalize: true, scale: 2.5 },
      {
        indices: want.indices,
        weights: [
          [0, 0],
          [2.5, 0],
        ],
      },
    );
    expectCase(
      "all NaN with bias",
      [[NaN_, NaN_, NaN_]],
      { k: 2, bias: [0, 5, -5] },
      { indices: [[0, 1]], weights: [[0, 0]] },
    );
  });

  test("saturation: sigmoid(17) == sigmoid(30) == 1.0f", () => {
    // without bias the logit ranks: 30 beats 17
    expectCase("saturated, no bias", [[17, 30, 25]], { k: 3 }, { indices: [[1, 2, 0]], weights: [[1, 1, 1]] });
    // with an equal bias the fp32 keys tie at 1 + bias: index order
    expectCase(
      "saturated, equal bias",
      [[17, 30, 25]],
      { k: 3, bias: [0.5, 0.5, 0.5] },
      { indices: [[0, 1, 2]], weights: [[1, 1, 1]] },
    );
    expectCase(
      "saturated, equal bias, k=1",
      [[30, 17]],
      { k: 1, bias: [0.25, 0.25] },
      { indices: [[0]], weights: [[1]] },
    );
    expectCase("saturated, k=1", [[17, 30]], { k: 1, bias: [-0.125, -0.125] }, { indices: [[0]], weights: [[1]] });
    // f32 only: huge finite logits
    expectCase(
      "huge f32",
      [[3e38, -3e38, 1e30, 0]],
      { k: 4, dtypes: ["f32"] },
      { indices: [[0, 2, 3, 1]], weights: [[1, 1, 0.5, 0]] },
    );
  });

  test("bias reorders, and is never part of the weight", () => {
    expectCase(
      "promote",
      [[3, 2, 1, 0]],
      { k: 3, bias: [0, 0, 0, 1] },
      { indices: [[3, 0, 1]], weights: [[S[0], S[3], S[2]]] },
    );
    expectCase(
      "demote",
      [[3, 2, 1, 0]],
      { k: 4, bias: [-1, 0, 0, 0] },
      { indices: [[1, 2, 3, 0]], weights: [[S[2], S[1], S[0], S[3]]] },
    );
    const sum = S[0] + S[3];
    expectCase(
      "promote, renormalized",
      [[3, 2, 1, 0]],
      { k: 2, bias: [0, 0, 0, 1], renormalize: true, scale: 2 },
      { indices: [[3, 0]], weights: [[(2 * S[0]) / sum, (2 * S[3]) / sum]] },
    );
    // a NaN bias ranks its expert last, but its weight is still its score
    expectCase(
      "NaN bias",
      [[1, 2, 3]],
      { k: 3, bias: [0, NaN_, 0] },
      { indices: [[2, 0, 1]], weights: [[S[3], S[1], S[2]]] },
    );
    // +inf bias wins even for a -inf logit (weight 0); -inf bias sinks to the bottom above NaN
    expectCase(
      "infinite bias",
      [[-inf, 1, 2, NaN_]],
      { k: 4, bias: [inf, 0, -inf, 0] },
      { indices: [[0, 1, 2, 3]], weights: [[0, S[1], S[2], 0]] },
    );
  });

  test("-0 and +0 tie: lower index first", () => {
    expectCase("-0 first", [[-0, 0, -1]], { k: 2 }, { indices: [[0, 1]], weights: [[0.5, 0.5]] });
    expectCase("+0 first", [[0, -0, -1]], { k: 2 }, { indices: [[0, 1]], weights: [[0.5, 0.5]] });
    expectCase("-0 after a lower index", [[-1, -0, 0]], { k: 2 }, { indices: [[1, 2]], weights: [[0.5, 0.5]] });
    expectCase(
      "-0 with bias",
      [[-1, 0, -0]],
      { k: 2, bias: [0, 0.25, 0.25] },
      { indices: [[1, 2]], weights: [[0.5, 0.5]] },
    );
  });

  test("stride > E: NaN / huge garbage in the padding is never read", () => {
    // expectCase fills the padding with NaN; here it is huge values that would win if read
    for (const dtype of dtypes) {
      const E = 3;
      const stride = 8;
      const rows = [
        [1, 2, 3],
        [0, -1, 5],
        [NaN_, 4, 4],
      ];
      const values = new Float32Array(rows.length * stride);
      rows.forEach((r, t) => {
        values.set(r, t * stride);
        values.set([inf, 1e30, inf, 60000, 7], t * stride + E);
      });
      const p = problem(values, { dtype, experts: E, rowStride: stride, k: 2 });
      const { api, problems } = runBoth(p);
      expect({ dtype, indices: chunk(api.indices, 2) }).toEqual({
        dtype,
        indices: [
          [2, 1],
          [2, 0],
          [1, 2],
        ],
      });
      expectClean(problems);
    }
    expectCase(
      "NaN padding",
      [
        [1, 2, 3],
        [3, 2, 1],
      ],
      { k: 2, rowStride: 5 },
      {
        indices: [
          [2, 1],
          [0, 1],
        ],
        weights: [
          [S[3], S[2]],
          [S[3], S[2]],
        ],
      },
    );
  });

  test("renormalized subnormal scores: weights still sum to scale", () => {
    // sigmoid(-100) ~ 3.7e-44 is subnormal in fp32: only the sum and the range are decidable
    const p = problem([-100, -101, -99.5], { dtype: "f32", experts: 3, k: 3, renormalize: true, scale: 2 });
    const { api, problems } = runBoth(p);
    expectClean(problems);
    expect(Array.from(api.indices)).toEqual([2, 0, 1]);
    const total = api.weights.reduce((a, b) => a + b, 0);
    expect(Math.abs(total - 2)).toBeLessThan(1e-5);
    // scores that are exactly 0 in fp32 (e^-150 and below) renormalize to 0, not NaN
    expectCase(
      "zero scores",
      [[-200, -inf, -1e4]],
      { k: 3, renormalize: true },
      { indices: [[0, 2, 1]], weights: [[0, 0, 0]] },
    );
  });

  test("T = 0 and T = 1", () => {
    const empty = problem([], { dtype: "f32", experts: 4, tokens: 0, k: 2 });
    const { api, raw } = runBoth(empty);
    expect(api.weights.length + api.indices.length + raw.weights.length + raw.indices.length).toBe(0);
    expectCase("T=1, E=1", [[-3]], { k: 1, renormalize: true, scale: 3 }, { indices: [[0]], weights: [[3]] });
    expectCase(
      "T=1, k=E=32",
      [Array.from({ length: 32 }, (_, i) => (i % 4) - 2)],
      { k: 32 },
      {
        indices: [
          [
            3, 7, 11, 15, 19, 23, 27, 31, 2, 6, 10, 14, 18, 22, 26, 30, 1, 5, 9, 13, 17, 21, 25, 29, 0, 4, 8, 12, 16,
            20, 24, 28,
          ],
        ],
        weights: [[...Array(8).fill(S[1]), ...Array(8).fill(S[0]), ...Array(8).fill(S.m1), ...Array(8).fill(1 - S[2])]],
      },
    );
  });
});
