// tests/dpp_model.test.ts: the gfx9 DPP arg-max (hip/dpp_steps.h through crosslane_dpp.hpp's
// reduction) on the CPU model of DPP lane semantics (tests/dpp_model.ts).
//
// Why the structured cases are a proof and not just samples: with `old` = 0 (the identity of the
// max) every step computes v'[n] = max(v[n], v[src(n)]) or leaves v[n] as it is, with src fixed by
// the table, so the result lane ends with the max over a FIXED set of lanes, whatever the data.
// The one-hot cases show every one of the 64 lanes is in that set; the model rejects any step
// that would write a lane with an undefined source; so the u32 max is right for every input. The
// u64 max is the u32 max of the high words, then of the low words of their holders, which is the
// lexicographic = unsigned 64-bit max. Ties, NaN, empty lanes and thousands of random waves then
// check the same thing end to end through the key packing of semantics.h: the winning key decodes
// to the expected (value, lowest index), computed independently with tests/reference.ts.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  ctrlFromName,
  ctrlName,
  type DppStep,
  type DppTable,
  DppUndefinedError,
  dataflow,
  dppSource,
  key32,
  key64,
  keyIndex,
  loadDppTable,
  ord16,
  ord32,
  parseDppSteps,
  STEPS_HEADER,
  updateDpp,
  WAVE,
  waveMax32,
  waveMax64,
} from "./dpp_model.ts";
import { Rng, suiteSeed } from "./helpers.ts";
import { compareKeys, decodeBf16, decodeF16, rankOrder } from "./reference.ts";

const table = loadDppTable();
/** Generous: the heaviest test runs about 2 s here, CI machines may be several times slower. */
const TIMEOUT_MS = 60_000;
const seed = suiteSeed(0x0d99f00d);
const lanes = (f: (n: number) => bigint) => Array.from({ length: WAVE }, (_, n) => f(n));
const step = (ctrl: number, rowMask = 0xf, bankMask = 0xf, boundCtrl = true): DppStep => ({
  ctrl,
  rowMask,
  bankMask,
  boundCtrl,
});
const ids = lanes((n) => BigInt(n + 100)); // lane n holds n + 100: sources are visible, 0 is not a lane
const OLD = lanes(() => 7n);

// ---- the table file ---------------------------------------------------------------------------

describe("hip/dpp_steps.h", () => {
  test(
    "parses, and every step's comment is its DPP_CTRL's assembler spelling",
    () => {
      expect(table.steps.length).toBeGreaterThan(0);
      expect(table.old).toBe(0n);
      for (const s of table.steps) {
        expect(s.comment).toBe(ctrlName(s.ctrl));
        expect(s.rowMask).toBeGreaterThanOrEqual(1);
        expect(s.rowMask).toBeLessThanOrEqual(15);
        expect(s.bankMask).toBeGreaterThanOrEqual(1);
        expect(s.bankMask).toBeLessThanOrEqual(15);
      }
    },
    TIMEOUT_MS,
  );

  test(
    "uses the row operations the issue names: quad_perm, row_shr, row_bcast:15, row_bcast:31",
    () => {
      const names = table.steps.map((s) => ctrlName(s.ctrl));
      expect(names.some((n) => n.startsWith("quad_perm"))).toBe(true);
      expect(names.some((n) => n.startsWith("row_shr"))).toBe(true);
      expect(names).toContain("row_bcast:15");
      expect(names).toContain("row_bcast:31");
    },
    TIMEOUT_MS,
  );

  test(
    "the parser rejects what the preprocessor would not read as the table",
    () => {
      const text = readFileSync(STEPS_HEADER, "utf8");
      const first = /TS_DPP_STEP\((0x[0-9a-f]+),/.exec(text)?.[1] as string;
      expect(() => parseDppSteps(text.replace(`TS_DPP_STEP(${first},`, `TS_DPP_STEP(${first}y,`))).toThrow();
      expect(() => parseDppSteps(text.replace(`TS_DPP_STEP(${first},`, `TS_DPP_STEP(${first}, 0xf,`))).toThrow();
      expect(() =>
        parseDppSteps(text.replace("#define TS_DPP_WAVE_MAX_STEPS", "#define TS_DPP_WAVE_MAX_STEPS junk")),
      ).toThrow();
      expect(() =>
        parseDppSteps(text.replace(/#define TS_DPP_RESULT_LANE .*/, "#define TS_DPP_RESULT_LANE 64")),
      ).toThrow();
    },
    TIMEOUT_MS,
  );

  test(
    "crosslane_dpp.hpp expands this table and reads TS_DPP_RESULT_LANE (no second copy of the steps)",
    () => {
      const hpp = readFileSync(join(import.meta.dir, "..", "hip", "crosslane_dpp.hpp"), "utf8");
      expect(hpp).toContain('#include "dpp_steps.h"');
      expect(hpp).toContain("TS_DPP_WAVE_MAX_STEPS");
      expect(hpp).toContain("TS_DPP_RESULT_LANE");
      expect(hpp).toContain("TS_DPP_OLD");
      expect(hpp).not.toMatch(/update_dpp\([^)]*0x1[0-4][0-9a-f]/); // no literal DPP_CTRL outside the table
    },
    TIMEOUT_MS,
  );
});

// ---- the lane model against the ISA text ------------------------------------------------------

describe("DPP lane semantics (model vs. the ISA's DPP_CTRL table)", () => {
  test(
    "spellings round-trip for every gfx9 DPP_CTRL; reserved codes are refused",
    () => {
      const valid: number[] = [];
      for (let c = 0; c <= 0x1ff; c++) {
        try {
          ctrlName(c);
          valid.push(c);
        } catch {
          expect(() => dppSource(c, 0)).toThrow();
        }
      }
      expect(valid.length).toBe(256 + 15 * 3 + 4 + 4);
      for (const c of valid) expect(ctrlFromName(ctrlName(c))).toBe(c);
      expect(ctrlName(0xe4)).toBe("quad_perm:[0,1,2,3]");
    },
    TIMEOUT_MS,
  );

  test(
    "quad_perm:[1,0,3,2] swaps neighbours, quad_perm:[2,3,0,1] swaps pairs",
    () => {
      expect(updateDpp(OLD, ids, step(0xb1))).toEqual(lanes((n) => BigInt((n ^ 1) + 100)));
      expect(updateDpp(OLD, ids, step(0x4e))).toEqual(lanes((n) => BigInt((n ^ 2) + 100)));
    },
    TIMEOUT_MS,
  );

  test(
    "row_shr:k reads lane n-k inside the row; the first k lanes of a row are out of range",
    () => {
      for (const k of [1, 4, 8, 15]) {
        expect(updateDpp(OLD, ids, step(0x110 + k, 0xf, 0xf, true))).toEqual(
          lanes((n) => ((n & 15) >= k ? BigInt(n - k + 100) : 0n)),
        );
        expect(updateDpp(OLD, ids, step(0x110 + k, 0xf, 0xf, false))).toEqual(
          lanes((n) => ((n & 15) >= k ? BigInt(n - k + 100) : 7n)),
        );
      }
    },
    TIMEOUT_MS,
  );

  test(
    "row_shl, row_ror, row_mirror, row_half_mirror, wave shifts and rotates",
    () => {
      expect(updateDpp(OLD, ids, step(0x101))).toEqual(lanes((n) => ((n & 15) < 15 ? BigInt(n + 101) : 0n)));
      expect(updateDpp(OLD, ids, step(0x121))).toEqual(lanes((n) => BigInt((n & ~15) + (((n & 15) + 15) & 15) + 100)));
      expect(updateDpp(OLD, ids, step(0x140))).toEqual(lanes((n) => BigInt((n & ~15) + 15 - (n & 15) + 100)));
      expect(updateDpp(OLD, ids, step(0x141))).toEqual(lanes((n) => BigInt((n & ~7) + 7 - (n & 7) + 100)));
      expect(updateDpp(OLD, ids, step(0x138))).toEqual(lanes((n) => (n > 0 ? BigInt(n + 99) : 0n)));
      expect(updateDpp(OLD, ids, step(0x13c))).toEqual(lanes((n) => BigInt(((n + 63) % 64) + 100)));
      expect(updateDpp(OLD, ids, step(0x130, 0xf, 0xf, false))).toEqual(lanes((n) => (n < 63 ? BigInt(n + 101) : 7n)));
      expect(updateDpp(OLD, ids, step(0x134))).toEqual(lanes((n) => BigInt(((n + 1) % 64) + 100)));
    },
    TIMEOUT_MS,
  );

  test(
    "row_bcast:15 with row_mask 0xa: rows 1 and 3 take lanes 15 and 47, rows 0 and 2 keep old",
    () => {
      const out = updateDpp(OLD, ids, step(0x142, 0xa, 0xf, false));
      expect(out).toEqual(lanes((n) => (n >> 4 === 1 ? 115n : n >> 4 === 3 ? 147n : 7n)));
      // row 2 (lanes 32-47) would take lane 31
      expect(updateDpp(OLD, ids, step(0x142, 0x4, 0xf, false))).toEqual(lanes((n) => (n >> 4 === 2 ? 131n : 7n)));
    },
    TIMEOUT_MS,
  );

  test(
    "row_bcast:31 with row_mask 0xc: rows 2 and 3 take lane 31",
    () => {
      expect(updateDpp(OLD, ids, step(0x143, 0xc, 0xf, false))).toEqual(lanes((n) => (n >= 32 ? 131n : 7n)));
    },
    TIMEOUT_MS,
  );

  test(
    "broadcasts into rows with no defined source are rejected, whatever bound_ctrl says",
    () => {
      for (const bc of [true, false]) {
        expect(() => updateDpp(OLD, ids, step(0x142, 0xb, 0xf, bc))).toThrow(DppUndefinedError);
        expect(() => updateDpp(OLD, ids, step(0x143, 0xe, 0xf, bc))).toThrow(DppUndefinedError);
      }
    },
    TIMEOUT_MS,
  );

  test(
    "bank_mask b enables lanes 4b..4b+3 of every row; row_mask r enables lanes 16r..16r+15",
    () => {
      expect(updateDpp(OLD, ids, step(0xe4, 0xf, 0x1))).toEqual(lanes((n) => ((n & 15) < 4 ? BigInt(n + 100) : 7n)));
      expect(updateDpp(OLD, ids, step(0xe4, 0xf, 0x8))).toEqual(lanes((n) => ((n & 15) >= 12 ? BigInt(n + 100) : 7n)));
      expect(updateDpp(OLD, ids, step(0xe4, 0x2, 0xf))).toEqual(lanes((n) => (n >> 4 === 1 ? BigInt(n + 100) : 7n)));
      // masks gate the write only, not the fetch: a disabled lane is still a valid source
      expect(updateDpp(OLD, ids, step(0x111, 0xf, 0x2))).toEqual(
        lanes((n) => ((n & 15) >> 2 === 1 ? BigInt(n + 99) : 7n)),
      );
    },
    TIMEOUT_MS,
  );
});

// ---- the reduction ----------------------------------------------------------------------------

type Width = "u32" | "u64";
/** One lane's best entry (value and expert index), or null for an empty lane (key 0). */
interface Entry {
  /** u32: 16-bit float bits; u64: an fp32 number */
  value: number;
  index: number;
}
interface WaveCase {
  name: string;
  entries: (Entry | null)[];
}

const V = 16; // lane n owns experts [16n, 16n + 16) (the gfx9 kernel's V for E up to 1024)
const FORMAT16 = ["bf16", "f16"] as const;

function keyOf(width: Width, e: Entry | null, format16: "bf16" | "f16"): bigint {
  if (!e) return 0n;
  return width === "u32" ? key32(ord16(e.value, format16), e.index) : key64(ord32(e.value), e.index);
}

function decoded(width: Width, e: Entry, format16: "bf16" | "f16"): number {
  if (width === "u64") return e.value;
  return format16 === "bf16" ? decodeBf16(e.value) : decodeF16(e.value);
}

/** Runs one case through the model; returns a failure message or null. */
function check(t: DppTable, width: Width, c: WaveCase, format16: "bf16" | "f16" = "bf16"): string | null {
  const keys = c.entries.map((e) => keyOf(width, e, format16));
  let got: bigint;
  try {
    got = width === "u32" ? waveMax32(t, keys) : waveMax64(t, keys);
  } catch (err) {
    if (err instanceof DppUndefinedError) return `${c.name}: ${err.message}`;
    throw err;
  }
  // Independent expectation: the routing order of tests/reference.ts on the decoded values.
  let best = -1;
  c.entries.forEach((e, n) => {
    if (!e) return;
    const b = best >= 0 ? (c.entries[best] as Entry) : null;
    if (!b || compareKeys(decoded(width, e, format16), e.index, decoded(width, b, format16), b.index) < 0) best = n;
  });
  const want = best >= 0 ? (keys[best] as bigint) : 0n;
  if (got !== want)
    return `${c.name} (${width}${width === "u32" ? ` ${format16}` : ""}): got key 0x${got.toString(16)}, want 0x${want.toString(16)} (lane ${best})`;
  if (best >= 0 && keyIndex(got) !== (c.entries[best] as Entry).index)
    return `${c.name}: decoded index ${keyIndex(got)}`;
  return null;
}

/** Value pools, in routing order: top > high > low, plus the special ones. */
const VALUES = {
  u32: {
    top: 0x4000 /* bf16 2.0 */,
    high: 0x3f80 /* 1.0 */,
    low: 0xbf80 /* -1.0 */,
    nan: 0x7fc1,
    ninf: 0xff80,
    pzero: 0,
    nzero: 0x8000,
  },
  u64: { top: 2, high: 1, low: -1, nan: Number.NaN, ninf: Number.NEGATIVE_INFINITY, pzero: 0, nzero: -0 },
} as const;
const F16_VALUES = {
  top: 0x4000 /* 2.0 */,
  high: 0x3c00,
  low: 0xbc00,
  nan: 0x7e01,
  ninf: 0xfc00,
  pzero: 0,
  nzero: 0x8000,
};

function pools(width: Width, format16: "bf16" | "f16") {
  return width === "u64" ? VALUES.u64 : format16 === "bf16" ? VALUES.u32 : F16_VALUES;
}

/** The structured cases: empty, one-hot in every lane, ties of every lane pair, NaN. */
function structuredCases(width: Width, format16: "bf16" | "f16", rng: Rng): WaveCase[] {
  const p = pools(width, format16);
  const at = (n: number, value: number): Entry => ({ value, index: n * V + rng.int(0, V - 1) });
  const backgrounds: Record<string, (n: number) => Entry | null> = {
    empty: () => null,
    low: (n) => at(n, p.low),
    mixed: (n) => (rng.chance(0.3) ? null : at(n, rng.pick([p.low, p.high, p.nan, p.ninf, p.pzero, p.nzero]))),
    nan: (n) => at(n, p.nan),
  };
  const cases: WaveCase[] = [{ name: "all lanes empty", entries: Array(WAVE).fill(null) }];
  for (const [bg, fill] of Object.entries(backgrounds)) {
    for (let hot = 0; hot < WAVE; hot++) {
      const entries = Array.from({ length: WAVE }, (_, n) => (n === hot ? at(n, p.top) : fill(n)));
      cases.push({ name: `one-hot lane ${hot} over ${bg}`, entries });
    }
  }
  // Ties of the maximum between every pair of lanes: across rows and within rows. The lower lane
  // holds the lower expert index, so it must win.
  for (let a = 0; a < WAVE; a++) {
    for (let b = a + 1; b < WAVE; b++) {
      const fill = rng.pick(Object.values(backgrounds));
      const entries = Array.from({ length: WAVE }, (_, n) => (n === a || n === b ? at(n, p.top) : fill(n)));
      cases.push({ name: `tie of lanes ${a} and ${b}`, entries });
    }
  }
  // All lanes tied: the lowest index (lane 0's) wins; -0 and +0 are one value.
  cases.push({ name: "all lanes tie", entries: Array.from({ length: WAVE }, (_, n) => at(n, p.top)) });
  cases.push({
    name: "-0 and +0 tie",
    entries: Array.from({ length: WAVE }, (_, n) => at(n, n % 2 ? p.pzero : p.nzero)),
  });
  // NaN ranks below -inf; NaNs among themselves by index.
  cases.push({ name: "all NaN", entries: Array.from({ length: WAVE }, (_, n) => at(n, p.nan)) });
  for (let n0 = 0; n0 < WAVE; n0++) {
    cases.push({
      name: `-inf in lane ${n0} among NaN`,
      entries: Array.from({ length: WAVE }, (_, n) => at(n, n === n0 ? p.ninf : p.nan)),
    });
    cases.push({
      name: `one NaN in lane ${n0}, the rest empty`,
      entries: Array.from({ length: WAVE }, (_, n) => (n === n0 ? at(n, p.nan) : null)),
    });
  }
  return cases;
}

function randomValue(width: Width, format16: "bf16" | "f16", rng: Rng): number {
  const p = pools(width, format16);
  if (rng.chance(0.4)) return rng.pick(Object.values(p)); // few distinct values: ties
  if (width === "u64") {
    if (rng.chance(0.1)) return rng.pick([Number.POSITIVE_INFINITY, 1e-45, -1e-45, 3.4028234663852886e38]);
    return Math.fround(rng.normal() * 4);
  }
  return rng.chance(0.5) ? rng.int(0, 0xffff) : rng.pick([0x3f80, 0x3f81, 0x3f7f, 0xbf80, 0x7f80, 0x0001, 0x8001]);
}

function randomCases(width: Width, format16: "bf16" | "f16", rng: Rng, count: number): WaveCase[] {
  return Array.from({ length: count }, (_, i) => {
    const empty = rng.pick([0, 0.1, 0.5, 0.95]);
    const entries = Array.from({ length: WAVE }, (_, n) =>
      rng.chance(empty) ? null : { value: randomValue(width, format16, rng), index: n * V + rng.int(0, V - 1) },
    );
    return { name: `random wave ${i}`, entries };
  });
}

function failures(t: DppTable, width: Width, cases: WaveCase[], format16: "bf16" | "f16" = "bf16"): string[] {
  return cases.map((c) => check(t, width, c, format16)).filter((m): m is string => m !== null);
}

function expectNone(list: string[]) {
  if (list.length > 0) throw new Error(`${list.length} failure(s), seed ${seed}:\n${list.slice(0, 8).join("\n")}`);
}

const RANDOM_WAVES = 4000;

describe("the wave64 arg-max of the step table", () => {
  for (const width of ["u32", "u64"] as const) {
    for (const format16 of width === "u32" ? FORMAT16 : (["bf16"] as const)) {
      const label = width === "u32" ? `u32 keys (${format16})` : "u64 keys (fp32)";
      test(
        `${label}: empty, one-hot in all 64 lanes, ties of all 2016 lane pairs, NaN`,
        () => {
          const cases = structuredCases(width, format16, new Rng(seed));
          expect(cases.length).toBe(1 + 4 * 64 + 2016 + 2 + 1 + 2 * 64); // 2404
          expectNone(failures(table, width, cases, format16));
        },
        TIMEOUT_MS,
      );
      test(
        `${label}: ${RANDOM_WAVES} random waves`,
        () => {
          expectNone(failures(table, width, randomCases(width, format16, new Rng(seed + 1), RANDOM_WAVES), format16));
        },
        TIMEOUT_MS,
      );
    }
  }

  test(
    "u64: ties of the high word are settled by the low word (index) across every pair of rows",
    () => {
      const list: string[] = [];
      for (let ra = 0; ra < 4; ra++) {
        for (let rb = 0; rb < 4; rb++) {
          for (const a of [ra * 16, ra * 16 + 7, ra * 16 + 15]) {
            for (const b of [rb * 16, rb * 16 + 8, rb * 16 + 15]) {
              if (a === b) continue;
              const entries = Array.from({ length: WAVE }, (_, n): Entry | null =>
                n === a || n === b ? { value: 3.5, index: n * V + 3 } : n % 3 ? { value: 3, index: n * V } : null,
              );
              const msg = check(table, "u64", { name: `hi-word tie lanes ${a}, ${b}`, entries });
              if (msg) list.push(msg);
            }
          }
        }
      }
      expectNone(list);
    },
    TIMEOUT_MS,
  );
});

// ---- what zero-injection and the masks may and may not do -------------------------------------

function mutated(f: (steps: DppStep[]) => DppStep[], extra: Partial<DppTable> = {}): DppTable {
  return { ...table, steps: f(table.steps.map((s) => ({ ...s }))), ...extra };
}

/** Failures of the structured cases (u32 and u64), stopping at `limit`. */
function structuredFailures(t: DppTable, limit = 1): number {
  const rng = new Rng(seed);
  let n = 0;
  for (const width of ["u32", "u64"] as const) {
    for (const c of structuredCases(width, "bf16", rng)) {
      if (check(t, width, c) !== null && ++n >= limit) return n;
    }
  }
  return n;
}

const ALL_LANES = (1n << 64n) - 1n;

describe("data flow of the table (data-independent)", () => {
  test(
    "every one of the 64 lanes reaches the result lane, and no `old` operand does",
    () => {
      expect(dataflow(table)).toEqual({ lanes: ALL_LANES, oldReaches: false });
    },
    TIMEOUT_MS,
  );

  test(
    "so neither bound_ctrl nor `old` can change the result: flipped, cleared, or old = 0xffff",
    () => {
      const flipped = mutated((s) => s.map((x) => ({ ...x, boundCtrl: !x.boundCtrl })));
      const cleared = mutated((s) => s.map((x) => ({ ...x, boundCtrl: false })), { old: 0xffffn });
      for (const t of [flipped, cleared, mutated((s) => s, { old: 0xffffn })]) {
        expect(dataflow(t)).toEqual({ lanes: ALL_LANES, oldReaches: false });
        expect(structuredFailures(t, Number.POSITIVE_INFINITY)).toBe(0);
      }
    },
    TIMEOUT_MS,
  );
});

describe("the model catches a broken table", () => {
  test(
    "dropping row_bcast:31 fails (rows 0-1 never reach lane 63)",
    () => {
      const t = mutated((s) => s.filter((x) => ctrlName(x.ctrl) !== "row_bcast:31"));
      expect(structuredFailures(t)).toBeGreaterThan(0);
      expect(dataflow(t).lanes).toBe(ALL_LANES - 0xffffffffn);
    },
    TIMEOUT_MS,
  );

  test(
    "dropping any single step fails (every step is needed)",
    () => {
      for (let i = 0; i < table.steps.length; i++) {
        const t = mutated((s) => s.filter((_, j) => j !== i));
        expect(structuredFailures(t)).toBeGreaterThan(0);
        expect(dataflow(t).lanes).not.toBe(ALL_LANES);
      }
    },
    TIMEOUT_MS,
  );

  test(
    "running the broadcasts in the other order fails",
    () => {
      const swapped = mutated((s) => {
        const i15 = s.findIndex((x) => x.ctrl === 0x142);
        const i31 = s.findIndex((x) => x.ctrl === 0x143);
        [s[i15], s[i31]] = [s[i31] as DppStep, s[i15] as DppStep];
        return s;
      });
      expect(structuredFailures(swapped)).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );

  test(
    "reading a lane other than the one the table fills fails",
    () => {
      expect(structuredFailures(mutated((s) => s, { resultLane: 47 }))).toBeGreaterThan(0);
      expect(structuredFailures(mutated((s) => s, { resultLane: 31 }))).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );

  test(
    "opening the broadcast row masks to rows without a defined source is refused",
    () => {
      for (const ctrl of [0x142, 0x143]) {
        const t = mutated((s) => s.map((x) => (x.ctrl === ctrl ? { ...x, rowMask: 0xf } : x)));
        expect(structuredFailures(t)).toBeGreaterThan(0);
        expect(() => dataflow(t)).toThrow(DppUndefinedError);
      }
    },
    TIMEOUT_MS,
  );

  test(
    "a table whose result lane is fed through a masked lane depends on `old`, and the model sees it",
    () => {
      // row_bcast:15 into rows 1 and 3 only; reading lane 47 (row 2, not written) picks up `old`.
      const t = mutated((s) => s.filter((x) => x.ctrl !== 0x143), { resultLane: 47, old: 0xffffn });
      expect(dataflow(t).oldReaches).toBe(true);
      expect(structuredFailures(t)).toBeGreaterThan(0);
    },
    TIMEOUT_MS,
  );
});

// ---- the policy inside the kernel template ----------------------------------------------------

describe("ts_warp_kernel<DppPolicy, *, 64, V, false> round loop on the model", () => {
  // Mirrors kernel_warp.hpp for one token: lane l owns experts [l*V, l*V + V), sorted descending;
  // each round is the group max of the lanes' heads (the model), lane r keeps round r's winner,
  // and the lane whose head won pops it.
  function route(width: Width, keysOfExperts: bigint[], k: number): number[] {
    const experts = keysOfExperts.length;
    const v = experts <= 64 * 8 ? 8 : 16; // launch_gfx9
    const lists = Array.from({ length: WAVE }, (_, l) =>
      Array.from({ length: v }, (_, j) => (l * v + j < experts ? (keysOfExperts[l * v + j] as bigint) : 0n)).sort(
        (a, b) => (a > b ? -1 : a < b ? 1 : 0),
      ),
    );
    const mine = new Array<bigint>(WAVE).fill(0n);
    for (let r = 0; r < k; r++) {
      const heads = lists.map((list) => list[0] as bigint);
      const winner = width === "u32" ? waveMax32(table, heads) : waveMax64(table, heads);
      mine[r] = winner;
      for (const list of lists) {
        if (list[0] === winner) {
          list.shift();
          list.push(0n);
        }
      }
    }
    return mine.slice(0, k).map(keyIndex);
  }

  test(
    "bf16 (u32 keys) and fp32 (u64 keys) rows up to 1024 experts match the reference order",
    () => {
      const rng = new Rng(seed + 2);
      const list: string[] = [];
      for (let i = 0; i < 120; i++) {
        const experts = rng.pick([1, 7, 64, 100, 160, 256, 384, 512, 513, 777, 1024]);
        const k = rng.int(1, Math.min(experts, 32));
        const width: Width = i % 2 ? "u32" : "u64";
        const values = Array.from({ length: experts }, () => randomValue(width, "bf16", rng));
        const keys = values.map((x, e) => keyOf(width, { value: x, index: e }, "bf16"));
        const order = rankOrder(Float64Array.from(values, (x) => (width === "u32" ? decodeBf16(x) : x)));
        const want = Array.from(order.slice(0, k));
        const got = route(width, keys, k);
        if (got.join() !== want.join())
          list.push(`${width} E=${experts} k=${k}: got ${got.join()} want ${want.join()}`);
      }
      expectNone(list);
    },
    TIMEOUT_MS,
  );
});
