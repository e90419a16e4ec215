// tests/dpp_model.ts: a CPU model of gfx9 wave64 DPP lane semantics, driven by the step table the
// device code compiles from (hip/dpp_steps.h, parsed here from the file itself), and the same
// reduction crosslane_dpp.hpp builds from it (DppPolicy::Group<64>::max for u32 and u64 keys).
// tests/dpp_model.test.ts runs it; tools/check_gfx9_isa.ts uses the parser and the spellings.
//
// What the model relies on, and where it comes from:
//  - DPP_CTRL encodings and lane functions: AMD CDNA4 ISA reference, ch. 13 "Microcode Formats",
//    §13.3.9 DPP, Table 93 "DPP Fields" and Table 94 "DPP_CTRL Enumeration"; the same codes as
//    LLVM's llvm::AMDGPU::DPP::DppCtrl (QUAD_PERM 0x00-0xFF, ROW_SHL 0x101-, ROW_SHR 0x111-,
//    ROW_ROR 0x121-, WAVE_SHL1 0x130, WAVE_ROL1 0x134, WAVE_SHR1 0x138, WAVE_ROR1 0x13C,
//    ROW_MIRROR 0x140, ROW_HALF_MIRROR 0x141, BCAST15 0x142, BCAST31 0x143), and
//    tools/check_gfx9_isa.ts checks that LLVM's disassembler prints ctrlName() for every encoded
//    step of the shipped code objects. Per destination lane n (a row is 16 lanes):
//      quad_perm  pix[n] = pix[(n & 0x3c) + dpp_cntl[n%4*2+1 : n%4*2]]
//      row_shl:k  if ((n & 0xf) < 16 - k) pix[n + k] else bound_ctrl
//      row_shr:k  if ((n & 0xf) >= k) pix[n - k] else bound_ctrl
//      row_ror:k  if ((n & 0xf) >= k) pix[n - k] else pix[n + 16 - k]
//      wave_shl:1 if (n < 63) pix[n + 1] else bound_ctrl;   wave_rol:1 ... else pix[0]
//      wave_shr:1 if (n > 0) pix[n - 1] else bound_ctrl;    wave_ror:1 ... else pix[63]
//      row_mirror pix[15 - (n & 0xf)], row_half_mirror pix[7 - (n & 7)] (within the row / half
//        row: "mirror threads within row", as the ISA describes them)
//      row_bcast:15  if (n > 15) pix[(n & 0x30) - 1]   ("broadcast 15th thread of each row to next row")
//      row_bcast:31  if (n > 31) pix[(n & 0x20) - 1]   ("broadcast thread 31 to rows 2 and 3")
//    (the table prints "n & 0x30 - 1"; the intended (n & 0x30) - 1 is what the description says
//    and what gem5's Vega model, src/arch/amdgpu/vega/insts/inst_util.hh, implements).
//    The broadcasts define no source for lanes 0-15 (row_bcast:15) and 0-31 (row_bcast:31): the
//    model REJECTS a step that writes such a lane, whatever bound_ctrl says, so the table can never
//    lean on behaviour the ISA leaves open (LLVM's own wave reductions use the same masks, 0xa and
//    0xc).
//  - ROW_MASK / BANK_MASK (same table): "Applies to the VGPR destination write only, does not
//    impact the thread mask when fetching source VGPR data"; row r = lanes 16r..16r+15 ("28==0:
//    lanes[15:0] are disabled"), bank b = lanes 4b..4b+3 of every row ("24==0: lanes[0:3, 16:19,
//    32:35, 48:51] are disabled").
//  - BC (bound_ctrl): "0 = do not write when source is out of range, 1 = write" (writes zero:
//    llvm/docs/AMDGPUModifierSyntax.rst, "Accessing data from an invalid lane will return zero").
//    LLVM spells BC = 1 bound_ctrl:0 in older releases and bound_ctrl:1 in LLVM 15 (as the
//    disassembly of this build shows); the checker accepts both.
//  - llvm.amdgcn.update.dpp(old, src, dpp_ctrl, row_mask, bank_mask, bound_ctrl) "should be
//    equivalent to v_mov_b32 <dest> <old>; v_mov_b32 <dest> <src> <dpp_ctrl> <row_mask>
//    <bank_mask> <bound_ctrl>" (LLVM's intrinsic description), so a lane not written (masked out,
//    or out of range without bound_ctrl) reads back `old`. __builtin_amdgcn_mov_dpp has no `old`
//    (undefined there), which is why the device uses update_dpp. The compiler then fuses each
//    update_dpp + max into one v_max_u32_dpp (GCNDPPCombine: full masks with bound_ctrl, or
//    `old` = the identity of the op), which keeps these semantics; the checker requires it.
//  - EXEC: not modelled. The gfx9 kernel calls max() with all 64 lanes active (256-thread blocks,
//    the token loop exits per wavefront), so no source lane is disabled.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const WAVE = 64;
export const STEPS_HEADER = join(import.meta.dir, "..", "hip", "dpp_steps.h");

/** One TS_DPP_STEP(dpp_ctrl, row_mask, bank_mask, bound_ctrl) of hip/dpp_steps.h. */
export interface DppStep {
  ctrl: number;
  rowMask: number;
  bankMask: number;
  boundCtrl: boolean;
  /** the assembler spelling written in the header's comment on that line, if any */
  comment?: string;
}

/** The table as the device code sees it. */
export interface DppTable {
  steps: DppStep[];
  /** TS_DPP_OLD: the `old` operand of every update_dpp (the identity of the max) */
  old: bigint;
  /** TS_DPP_RESULT_LANE: the lane v_readlane reads after the last step */
  resultLane: number;
}

function cInteger(text: string, what: string): number {
  const t = text.trim();
  if (t === "true") return 1;
  if (t === "false") return 0;
  const m = /^(0[xX][0-9a-fA-F]+|[1-9][0-9]*|0)[uU]?$/.exec(t);
  if (!m) throw new Error(`dpp_steps.h: ${what}: "${t}" is not an integer literal`);
  return Number.parseInt(m[1] as string, (m[1] as string).toLowerCase().startsWith("0x") ? 16 : 10);
}

/** The body of `#define NAME ...` after line splicing (translation phase 2), as one logical line. */
function defineBody(text: string, name: string): string {
  const spliced = text.replace(/\\\r?\n/g, "");
  const m = new RegExp(`^[ \\t]*#[ \\t]*define[ \\t]+${name}\\b(.*)$`, "m").exec(spliced);
  if (!m) throw new Error(`dpp_steps.h: no #define ${name}`);
  return m[1] as string;
}

/** The body without comments (a // comment runs to the end of the logical line, as in C). */
const uncommented = (body: string) => body.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/.*$/, "");

/**
 * Parses hip/dpp_steps.h the way the preprocessor reads the parts the device uses:
 * TS_DPP_WAVE_MAX_STEPS must be nothing but TS_DPP_STEP(a, b, c, d) invocations with integer
 * literals, whitespace and comments (a comment right after a step is kept as its spelling);
 * TS_DPP_OLD and TS_DPP_RESULT_LANE integer literals.
 */
export function parseDppSteps(text: string): DppTable {
  const body = defineBody(text, "TS_DPP_WAVE_MAX_STEPS");
  const steps: DppStep[] = [];
  const token = /\s+|\/\*([\s\S]*?)\*\/|\/\/.*$|TS_DPP_STEP\s*\(([^()]*)\)/y;
  let commentFor: DppStep | undefined;
  for (let at = 0; at < body.length; ) {
    token.lastIndex = at;
    const m = token.exec(body);
    if (!m) throw new Error(`dpp_steps.h: unexpected text in TS_DPP_WAVE_MAX_STEPS: ${body.slice(at).trim()}`);
    at = token.lastIndex;
    if (m[1] !== undefined) {
      if (commentFor && commentFor.comment === undefined) commentFor.comment = m[1].trim();
      commentFor = undefined;
    } else if (m[2] !== undefined) {
      const args = m[2].split(",");
      if (args.length !== 4) throw new Error(`dpp_steps.h: TS_DPP_STEP(${m[2]}) needs 4 arguments`);
      const [ctrl, rowMask, bankMask, bound] = args.map((a, i) =>
        cInteger(a, `argument ${i + 1} of TS_DPP_STEP(${m[2]})`),
      ) as [number, number, number, number];
      if (bound !== 0 && bound !== 1) throw new Error(`dpp_steps.h: bound_ctrl must be 0 or 1 in TS_DPP_STEP(${m[2]})`);
      commentFor = { ctrl, rowMask, bankMask, boundCtrl: bound === 1 };
      steps.push(commentFor);
    } else if (m[0].startsWith("//")) {
      commentFor = undefined;
    }
  }
  if (steps.length === 0) throw new Error("dpp_steps.h: TS_DPP_WAVE_MAX_STEPS has no steps");
  const literal = (name: string) => cInteger(uncommented(defineBody(text, name)), name);
  const resultLane = literal("TS_DPP_RESULT_LANE");
  if (resultLane < 0 || resultLane >= WAVE)
    throw new Error(`dpp_steps.h: TS_DPP_RESULT_LANE ${resultLane} is not a lane`);
  return { steps, old: BigInt(literal("TS_DPP_OLD")), resultLane };
}

let cached: DppTable | undefined;
/** The table of hip/dpp_steps.h (parsed once). */
export function loadDppTable(): DppTable {
  cached ??= parseDppSteps(readFileSync(STEPS_HEADER, "utf8"));
  return cached;
}

// ---- DPP_CTRL ---------------------------------------------------------------------------------

/** The LLVM assembler spelling of a gfx9 DPP_CTRL value (throws on reserved / non-gfx9 codes). */
export function ctrlName(ctrl: number): string {
  if (ctrl >= 0 && ctrl <= 0xff) {
    const sel = [0, 1, 2, 3].map((i) => (ctrl >> (2 * i)) & 3);
    return `quad_perm:[${sel.join(",")}]`;
  }
  if (ctrl >= 0x101 && ctrl <= 0x10f) return `row_shl:${ctrl & 0xf}`;
  if (ctrl >= 0x111 && ctrl <= 0x11f) return `row_shr:${ctrl & 0xf}`;
  if (ctrl >= 0x121 && ctrl <= 0x12f) return `row_ror:${ctrl & 0xf}`;
  switch (ctrl) {
    case 0x130:
      return "wave_shl:1";
    case 0x134:
      return "wave_rol:1";
    case 0x138:
      return "wave_shr:1";
    case 0x13c:
      return "wave_ror:1";
    case 0x140:
      return "row_mirror";
    case 0x141:
      return "row_half_mirror";
    case 0x142:
      return "row_bcast:15";
    case 0x143:
      return "row_bcast:31";
  }
  throw new Error(`DPP_CTRL 0x${ctrl.toString(16)} is reserved or not a gfx9 (wave64 VOP_DPP) control`);
}

/** Inverse of ctrlName, for the spellings the disassembler prints. */
export function ctrlFromName(name: string): number {
  const quad = /^quad_perm:\[([0-3]),([0-3]),([0-3]),([0-3])\]$/.exec(name);
  if (quad) return quad.slice(1).reduce((acc, s, i) => acc | (Number(s) << (2 * i)), 0);
  const shift = /^(row_shl|row_shr|row_ror):([0-9]+)$/.exec(name);
  if (shift) {
    const k = Number(shift[2]);
    if (k < 1 || k > 15) throw new Error(`bad DPP control ${name}`);
    return ({ row_shl: 0x100, row_shr: 0x110, row_ror: 0x120 } as const)[shift[1] as "row_shl"] + k;
  }
  const fixed: Record<string, number> = {
    "wave_shl:1": 0x130,
    "wave_rol:1": 0x134,
    "wave_shr:1": 0x138,
    "wave_ror:1": 0x13c,
    row_mirror: 0x140,
    row_half_mirror: 0x141,
    "row_bcast:15": 0x142,
    "row_bcast:31": 0x143,
  };
  const c = fixed[name];
  if (c === undefined) throw new Error(`unknown DPP control ${name}`);
  return c;
}

/** Where lane n reads from: a lane, "out-of-range" (bound_ctrl applies) or "undefined" (the ISA says nothing). */
export type DppSource = number | "out-of-range" | "undefined";

export function dppSource(ctrl: number, n: number): DppSource {
  const inRow = n & 15;
  const rowBase = n & ~15;
  ctrlName(ctrl); // rejects reserved codes
  if (ctrl <= 0xff) return (n & 0x3c) + ((ctrl >> (2 * (n & 3))) & 3);
  if (ctrl >= 0x101 && ctrl <= 0x10f) {
    const k = ctrl & 0xf;
    return inRow < 16 - k ? n + k : "out-of-range";
  }
  if (ctrl >= 0x111 && ctrl <= 0x11f) {
    const k = ctrl & 0xf;
    return inRow >= k ? n - k : "out-of-range";
  }
  if (ctrl >= 0x121 && ctrl <= 0x12f) {
    const k = ctrl & 0xf;
    return inRow >= k ? n - k : n + 16 - k;
  }
  switch (ctrl) {
    case 0x130:
      return n < 63 ? n + 1 : "out-of-range";
    case 0x134:
      return n < 63 ? n + 1 : 0;
    case 0x138:
      return n > 0 ? n - 1 : "out-of-range";
    case 0x13c:
      return n > 0 ? n - 1 : 63;
    case 0x140:
      return rowBase + (15 - inRow);
    case 0x141:
      return (n & ~7) + (7 - (n & 7));
    case 0x142:
      return n > 15 ? (n & 0x30) - 1 : "undefined";
    case 0x143:
      return n > 31 ? (n & 0x20) - 1 : "undefined";
  }
  throw new Error(`unreachable DPP_CTRL 0x${ctrl.toString(16)}`);
}

/** Lane n is written by the step (row_mask / bank_mask). */
export function laneEnabled(step: DppStep, n: number): boolean {
  return ((step.rowMask >> (n >> 4)) & 1) === 1 && ((step.bankMask >> ((n >> 2) & 3)) & 1) === 1;
}

export class DppUndefinedError extends Error {}

/** llvm.amdgcn.update.dpp(old, src, ctrl, row_mask, bank_mask, bound_ctrl) over one wavefront. */
export function updateDpp(old: readonly bigint[], src: readonly bigint[], step: DppStep): bigint[] {
  if (old.length !== WAVE || src.length !== WAVE) throw new Error("a wave64 register has 64 lanes");
  const out = new Array<bigint>(WAVE);
  for (let n = 0; n < WAVE; n++) {
    if (!laneEnabled(step, n)) {
      out[n] = old[n] as bigint; // not written: the v_mov_b32 dst, old
      continue;
    }
    const s = dppSource(step.ctrl, n);
    if (s === "undefined") {
      throw new DppUndefinedError(
        `${ctrlName(step.ctrl)} row_mask:0x${step.rowMask.toString(16)} writes lane ${n}, whose source the ISA leaves undefined`,
      );
    }
    out[n] = s === "out-of-range" ? (step.boundCtrl ? 0n : (old[n] as bigint)) : (src[s] as bigint);
  }
  return out;
}

// ---- the reduction of crosslane_dpp.hpp -------------------------------------------------------

const U32 = 0xffffffffn;

/** The unsigned max of two keys (v_max_u32 / the 64-bit compare). */
export function maxKey(a: bigint, b: bigint): bigint {
  if (b > a) return b;
  return a;
}

/** ts_dpp::wave_max: v = max(v, update_dpp(OLD, v, step)) for every step; then readlane. */
export function waveMax32(table: DppTable, values: readonly bigint[]): bigint {
  let v = values.map((x) => {
    if (x < 0n || x > U32) throw new Error(`${x} is not a u32`);
    return x;
  });
  const old = new Array<bigint>(WAVE).fill(table.old);
  for (const step of table.steps) {
    const o = updateDpp(old, v, step);
    v = v.map((x, n) => maxKey(x, o[n] as bigint));
  }
  return v[table.resultLane] as bigint;
}

/** DppPolicy::Group<64>::max(uint64_t): the high words' max, then the max of the low words of its holders. */
export function waveMax64(table: DppTable, keys: readonly bigint[]): bigint {
  const hi = keys.map((k) => k >> 32n);
  const h = waveMax32(table, hi);
  const lo = keys.map((k, n) => ((hi[n] as bigint) === h ? k & U32 : 0n));
  const l = waveMax32(table, lo);
  return (h << 32n) | l;
}

// ---- keys, as hip/semantics.h packs them ------------------------------------------------------

const scratch = new DataView(new ArrayBuffer(4));

/** ts_ord32: fp32 -> orderable u32 (NaN -> 0, -0 == +0). */
export function ord32(f: number): number {
  scratch.setFloat32(0, f);
  let u = scratch.getUint32(0);
  if ((u & 0x7fffffff) > 0x7f800000) return 0;
  if ((u & 0x7fffffff) === 0) u = 0;
  return (u & 0x80000000) !== 0 ? ~u >>> 0 : (u | 0x80000000) >>> 0;
}

/** ts_ord16 on bf16 (inf 0x7f80) or fp16 (inf 0x7c00) bits. */
export function ord16(bits: number, format: "bf16" | "f16"): number {
  let h = bits & 0xffff;
  if ((h & 0x7fff) > (format === "bf16" ? 0x7f80 : 0x7c00)) return 0;
  if ((h & 0x7fff) === 0) h = 0;
  return (h & 0x8000) !== 0 ? ~h & 0xffff : h | 0x8000;
}

/** ts_key32 / ts_key64: (value order, index) packed; 0 is the empty key. */
export const key32 = (ord: number, index: number): bigint => BigInt(((ord << 16) | (0xffff - index)) >>> 0);
export const key64 = (ord: number, index: number): bigint => (BigInt(ord) << 32n) | BigInt(0xffff - index);
/** ts_key_index */
export const keyIndex = (key: bigint): number => 0xffff - Number(key & 0xffffn);

/**
 * The data flow of the reduction, data-independent: which lanes' values reach the result lane
 * (a bitmask), and whether an `old` operand does (a lane not written by some step feeding the
 * result). Each step is v' = v | update_dpp(OLD_MARK, v) on lane sets, the set-valued image of
 * v' = max(v, update_dpp(old, v)); zero injected by bound_ctrl carries no lane (and 0 is below
 * every key).
 */
export function dataflow(table: DppTable): { lanes: bigint; oldReaches: boolean } {
  const OLD_MARK = 1n << BigInt(WAVE);
  let v = Array.from({ length: WAVE }, (_, n) => 1n << BigInt(n));
  const old = new Array<bigint>(WAVE).fill(OLD_MARK);
  for (const step of table.steps) {
    const o = updateDpp(old, v, step);
    v = v.map((x, n) => x | (o[n] as bigint));
  }
  const r = v[table.resultLane] as bigint;
  return { lanes: r & (OLD_MARK - 1n), oldReaches: (r & OLD_MARK) !== 0n };
}
