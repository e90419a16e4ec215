#!/usr/bin/env bun
// tools/check_gfx9_isa.ts: checks the gfx9 kernels in the shipped HIP library's code objects.
// `bun hip/build.ts` (HIP variant) writes, per target, lib/isa/device_backend-<arch>.s (the
// llvm-objdump disassembly of the code object embedded in lib/libtopk_sigmoid_hip.so) and
// .metadata.yaml (its AMDGPU metadata note). For every gfx9 target this fails unless each
// ts_warp_kernel<DppPolicy, Dtype, 64, V, HasBias> that launch_gfx9 instantiates:
//  - does its cross-lane work with DPP: only complete, in-order runs of the step table of
//    hip/dpp_steps.h (the one tests/dpp_model.test.ts verifies), each step a v_max_u32_dpp whose
//    printed modifiers AND encoded DPP word carry that step's dpp_ctrl / row_mask / bank_mask /
//    bound_ctrl, chained register to register, each run ended by v_readlane of
//    TS_DPP_RESULT_LANE; one run per max() of u32 keys, two per max() of u64 keys;
//  - has no ds_bpermute / ds_permute / ds_swizzle;
//  - has no spills and stays in registers: .vgpr_spill_count, .sgpr_spill_count,
//    .private_segment_fixed_size and .group_segment_fixed_size are 0, and no ds_ / scratch_ /
//    buffer_ instruction at all (a private array the compiler put in LDS or scratch counts).
// Prints a summary per target. Usage: bun tools/check_gfx9_isa.ts [isa-dir]   (default lib/isa)
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ctrlFromName, ctrlName, type DppStep, loadDppTable } from "../tests/dpp_model.ts";

const root = join(import.meta.dir, "..");
const isaDir = process.argv[2] ?? join(root, "lib", "isa");
const table = loadDppTable();
const errors: string[] = [];
const fail = (msg: string) => errors.push(msg);

// ---- which kernels: read from the sources, not assumed ----------------------------------------

const dtypes = new Map<number, string>();
for (const m of readFileSync(join(root, "hip", "topk_sigmoid.h"), "utf8").matchAll(/#define TS_DTYPE_(\w+) (\d+)/g)) {
  dtypes.set(Number(m[2]), (m[1] as string).toLowerCase());
}
const backend = readFileSync(join(root, "hip", "device_backend.hip"), "utf8");
const launchGfx9 = /bool launch_gfx9\([\s\S]*?\n}\n/.exec(backend)?.[0] ?? "";
// ts_warp_kernel<DppPolicy, Dtype, 64, V, HasBias> or launch_warp_shape<DppPolicy, Dtype, HasBias, 64, V>
const vs = [
  ...new Set(
    [...launchGfx9.matchAll(/DppPolicy,\s*Dtype,\s*(?:64,\s*(\d+),\s*HasBias|HasBias,\s*64,\s*(\d+))/g)].map((m) =>
      Number(m[1] ?? m[2]),
    ),
  ),
];
if (dtypes.size === 0 || vs.length === 0) {
  console.error("check_gfx9_isa: cannot find TS_DTYPE_* in hip/topk_sigmoid.h or the DppPolicy kernels of launch_gfx9");
  process.exit(2);
}

interface Expected {
  symbol: string;
  label: string;
  keyBits: 32 | 64;
}
const expected: Expected[] = [];
for (const [code, dtype] of [...dtypes].sort((a, b) => a[0] - b[0])) {
  for (const v of vs) {
    for (const bias of [false, true]) {
      expected.push({
        // The last template argument, Small, is false: the DPP kernels are never the Small form.
        symbol: `_Z14ts_warp_kernelI9DppPolicyLi${code}ELi64ELi${v}ELb${bias ? 1 : 0}ELb0EEv14ts_kernel_args`,
        label: `${dtype} V=${v}${bias ? " bias" : ""}`,
        keyBits: dtype !== "f32" && !bias ? 32 : 64, // keys.hpp: 16-bit inputs without bias rank on u32 keys
      });
    }
  }
}

// ---- parsing ----------------------------------------------------------------------------------

interface Instruction {
  mnemonic: string;
  operands: string;
  words: number[];
  line: number;
}

/** Functions of an llvm-objdump disassembly: "<address> <symbol>:" then "\tmnemonic operands // addr: words". */
function parseDisassembly(text: string): Map<string, Instruction[]> {
  const functions = new Map<string, Instruction[]>();
  let current: Instruction[] | undefined;
  text.split("\n").forEach((raw, i) => {
    const label = /^[0-9a-f]+ <([^>]+)>:$/.exec(raw);
    if (label) {
      current = [];
      functions.set(label[1] as string, current);
      return;
    }
    const ins = /^\s+([a-z_][a-z0-9_.]*)\s*(.*?)\s*\/\/ [0-9A-F]+: ((?:[0-9A-F]{8} ?)+)$/.exec(raw);
    if (ins && current) {
      current.push({
        mnemonic: ins[1] as string,
        operands: ins[2] as string,
        words: (ins[3] as string)
          .trim()
          .split(" ")
          .map((w) => Number.parseInt(w, 16)),
        line: i + 1,
      });
    }
  });
  return functions;
}

type Metadata = Record<string, string>;
/** Top-level fields of each amdhsa.kernels entry of `llvm-readelf --notes`. */
function parseMetadata(text: string): Map<string, Metadata> {
  const kernels = new Map<string, Metadata>();
  let current: Metadata | undefined;
  const flush = () => {
    if (current?.name) kernels.set(current.name, current);
  };
  for (const line of text.split("\n")) {
    const start = /^ {2}- \.(\w+):\s*(.*)$/.exec(line);
    const field = /^ {4}\.(\w+):\s*(.*)$/.exec(line);
    if (start) {
      flush();
      current = { [start[1] as string]: (start[2] as string).trim() };
    } else if (field && current) {
      current[field[1] as string] = (field[2] as string).trim();
    } else if (/^\S/.test(line)) {
      flush();
      current = undefined;
    }
  }
  flush();
  return kernels;
}

interface DppInstruction {
  step: DppStep;
  dst: string;
  src0: string;
  src1: string;
  mnemonic: string;
  line: number;
  modifier: string;
}

/** A DPP instruction's step, from its printed modifiers, checked against its encoded DPP word. */
function decodeDpp(ins: Instruction, where: string): DppInstruction | null {
  const ops = ins.operands.split(/\s+/);
  const registers = ins.operands.split(/\s+(?=[a-z_]+:|row_mirror|row_half_mirror)/)[0]?.split(/,\s*/) ?? [];
  const modifier = ops.find(
    (o) =>
      /^(quad_perm|row_shl|row_shr|row_ror|wave_shl|wave_rol|wave_shr|wave_ror|row_bcast):/.test(o) ||
      o === "row_mirror" ||
      o === "row_half_mirror",
  );
  if (!modifier) {
    fail(`${where}: ${ins.mnemonic} ${ins.operands}: no DPP control the gfx9 model knows (line ${ins.line})`);
    return null;
  }
  const rowMask = Number(/row_mask:(0x[0-9a-f]+|\d+)/.exec(ins.operands)?.[1] ?? 0xf);
  const bankMask = Number(/bank_mask:(0x[0-9a-f]+|\d+)/.exec(ins.operands)?.[1] ?? 0xf);
  // LLVM prints the BC field as bound_ctrl:0 (older) or bound_ctrl:1 (LLVM 15+); either means BC = 1.
  const boundCtrl = /\bbound_ctrl:[01]\b/.test(ins.operands);
  const step: DppStep = { ctrl: ctrlFromName(modifier), rowMask, bankMask, boundCtrl };
  // The encoding: VOP1/VOP2/VOPC word with SRC0 = 0xFA (DPP), then the DPP word:
  // SRC0 [7:0], DPP_CTRL [16:8], BC [19], BANK_MASK [27:24], ROW_MASK [31:28].
  const [w0, w1] = ins.words;
  if (ins.words.length !== 2 || w0 === undefined || w1 === undefined || (w0 & 0x1ff) !== 0xfa) {
    fail(
      `${where}: ${ins.mnemonic} at line ${ins.line} is not encoded as VOP_DPP (${ins.words.map((w) => w.toString(16)).join(" ")})`,
    );
    return null;
  }
  const encoded: DppStep = {
    ctrl: (w1 >>> 8) & 0x1ff,
    boundCtrl: ((w1 >>> 19) & 1) === 1,
    bankMask: (w1 >>> 24) & 0xf,
    rowMask: (w1 >>> 28) & 0xf,
  };
  if (!sameStep(encoded, step)) {
    fail(`${where}: line ${ins.line}: printed ${stepText(step)} but the DPP word encodes ${stepText(encoded)}`);
  }
  return {
    step: encoded,
    dst: registers[0] ?? "",
    src0: registers[1] ?? "",
    src1: registers[2] ?? "",
    mnemonic: ins.mnemonic,
    line: ins.line,
    modifier,
  };
}

const sameStep = (a: DppStep, b: DppStep) =>
  a.ctrl === b.ctrl && a.rowMask === b.rowMask && a.bankMask === b.bankMask && a.boundCtrl === b.boundCtrl;
const stepText = (s: DppStep) =>
  `${ctrlName(s.ctrl)} row_mask:0x${s.rowMask.toString(16)} bank_mask:0x${s.bankMask.toString(16)}${s.boundCtrl ? " bound_ctrl" : ""}`;

// ---- the check --------------------------------------------------------------------------------

interface KernelReport {
  label: string;
  runs: number;
  vgpr: number;
  sgpr: number;
  agpr: number;
  vgprSpills: number;
  sgprSpills: number;
  scratchBytes: number;
  ldsBytes: number;
}

function checkKernel(arch: string, e: Expected, code: Instruction[], meta: Metadata | undefined): KernelReport | null {
  const where = `${arch} ${e.label} (${e.symbol})`;
  if (!meta) {
    fail(`${where}: not in the AMDGPU metadata`);
    return null;
  }
  const memory = new Map<string, number>();
  for (const ins of code) {
    if (/^ds_(bpermute|permute|swizzle)/.test(ins.mnemonic)) {
      fail(`${where}: ${ins.mnemonic} at line ${ins.line}: a cross-lane step that is not DPP`);
    } else if (/^(ds_|scratch_|buffer_)/.test(ins.mnemonic)) {
      memory.set(ins.mnemonic, (memory.get(ins.mnemonic) ?? 0) + 1);
    }
  }
  const report: KernelReport = {
    label: e.label,
    runs: 0,
    vgpr: Number(meta.vgpr_count),
    sgpr: Number(meta.sgpr_count),
    agpr: Number(meta.agpr_count ?? 0),
    vgprSpills: Number(meta.vgpr_spill_count ?? Number.NaN),
    sgprSpills: Number(meta.sgpr_spill_count ?? Number.NaN),
    scratchBytes: Number(meta.private_segment_fixed_size ?? Number.NaN),
    ldsBytes: Number(meta.group_segment_fixed_size ?? Number.NaN),
  };
  if (report.vgprSpills !== 0 || report.sgprSpills !== 0) {
    fail(
      `${where}: spills: ${report.vgprSpills} VGPR, ${report.sgprSpills} SGPR (.vgpr_spill_count / .sgpr_spill_count)`,
    );
  }
  if (report.scratchBytes !== 0) fail(`${where}: ${report.scratchBytes} B of scratch (.private_segment_fixed_size)`);
  if (memory.size > 0 || report.ldsBytes !== 0) {
    const ops = [...memory].map(([m, c]) => `${m} x${c}`).join(", ");
    fail(
      `${where}: LDS / scratch traffic in a register-resident kernel (${ops || "none"}; ${report.ldsBytes} B LDS): ` +
        "a private array left memory (AMDGPUPromoteAlloca puts such arrays in LDS)",
    );
  }
  if (meta.uses_dynamic_stack === "true") fail(`${where}: uses a dynamic stack`);

  // DPP instructions must form complete, in-order, register-chained runs of the table, each
  // followed by v_readlane of the result lane of the last step's register.
  const n = table.steps.length;
  let runs = 0;
  let position = 0;
  let previous: DppInstruction | null = null;
  let awaitingReadlane: DppInstruction | null = null;
  let waitStates = 0; // since the previous step of the run: each instruction 1, s_nop N gives N + 1
  for (const ins of code) {
    if (ins.mnemonic.endsWith("_dpp")) {
      const d = decodeDpp(ins, where);
      if (!d) continue;
      // "VALU writes VGPR -> VALU DPP reads that VGPR: 2 wait states" (ISA, manually inserted
      // wait states): each step reads the register the previous one wrote.
      if (position > 0 && waitStates < 2) {
        fail(`${where}: line ${d.line}: ${waitStates} wait state(s) after the previous DPP step, the ISA requires 2`);
      }
      waitStates = 0;
      if (awaitingReadlane) {
        fail(
          `${where}: run ending at line ${awaitingReadlane.line} is not read with v_readlane ..., ${table.resultLane}`,
        );
        awaitingReadlane = null;
      }
      const want = table.steps[position] as DppStep;
      if (d.mnemonic !== "v_max_u32_dpp") {
        fail(`${where}: line ${d.line}: ${d.mnemonic}; each step must be one v_max_u32_dpp (max(v, dpp(v)))`);
      }
      if (!sameStep(d.step, want)) {
        fail(
          `${where}: line ${d.line}: DPP step ${stepText(d.step)} where the table has step ${position + 1}: ${stepText(want)}`,
        );
        position = 0;
        previous = null;
        continue;
      }
      // v = max(v, dpp(v)): both sources are the running max; a step that may leave lanes
      // unwritten (masks, or no bound_ctrl) must write in place so those lanes keep v.
      const mayKeep = d.step.rowMask !== 0xf || d.step.bankMask !== 0xf || !d.step.boundCtrl;
      if (
        d.src0 !== d.src1 ||
        (position > 0 && previous && (d.src0 !== previous.dst || d.dst !== previous.dst)) ||
        (mayKeep && d.dst !== d.src1)
      ) {
        fail(
          `${where}: line ${d.line}: step ${position + 1} is ${d.dst} = max(dpp(${d.src0}), ${d.src1}), not v = max(dpp(v), v) on the running max ${previous?.dst ?? d.src1}`,
        );
      }
      previous = d;
      position += 1;
      if (position === n) {
        runs += 1;
        position = 0;
        awaitingReadlane = d;
      }
    } else if (position > 0) {
      waitStates += ins.mnemonic === "s_nop" ? Number(ins.operands) + 1 : 1;
    } else if (awaitingReadlane && ins.mnemonic === "v_readlane_b32") {
      const [, src, lane] = ins.operands.split(/,\s*/);
      if (src === awaitingReadlane.dst && Number(lane) === table.resultLane) awaitingReadlane = null;
    }
  }
  if (position !== 0) fail(`${where}: a DPP run stops after ${position} of ${n} steps`);
  if (awaitingReadlane) fail(`${where}: the last DPP run is not read with v_readlane ..., ${table.resultLane}`);
  const minRuns = e.keyBits === 32 ? 1 : 2;
  if (runs < minRuns) fail(`${where}: ${runs} DPP run(s) of the table; the ${e.keyBits}-bit key max needs ${minRuns}`);
  else if (e.keyBits === 64 && runs % 2 !== 0)
    fail(`${where}: ${runs} DPP runs; a u64 max is two runs (high words, low words)`);
  report.runs = runs;
  return report;
}

const files = existsSync(isaDir) ? readdirSync(isaDir).filter((f) => /^device_backend-gfx9[0-9a-z]*\.s$/.test(f)) : [];
if (files.length === 0) {
  console.error(
    `check_gfx9_isa: no gfx9 ISA in ${isaDir}: build the HIP variant first (bun hip/build.ts --only hip; needs hipcc and ` +
      "its LLVM tools: llvm-objdump, llvm-readelf, llvm-objcopy, clang-offload-bundler)",
  );
  process.exit(1);
}

for (const file of files.sort()) {
  const arch = file.slice("device_backend-".length, -2);
  const metaPath = join(isaDir, `device_backend-${arch}.metadata.yaml`);
  if (!existsSync(metaPath)) {
    fail(`${arch}: ${metaPath} is missing (ISA from an older build? rebuild: bun hip/build.ts --only hip)`);
    continue;
  }
  const functions = parseDisassembly(readFileSync(join(isaDir, file), "utf8"));
  const metadata = parseMetadata(readFileSync(metaPath, "utf8"));
  const reports: KernelReport[] = [];
  for (const e of expected) {
    const code = functions.get(e.symbol);
    if (!code) {
      fail(`${arch}: kernel ${e.label} (${e.symbol}) is not in the code object`);
      continue;
    }
    const r = checkKernel(arch, e, code, metadata.get(e.symbol));
    if (r) reports.push(r);
  }
  for (const name of functions.keys()) {
    if (name.includes("9DppPolicy") && !expected.some((e) => e.symbol === name))
      fail(`${arch}: unexpected DPP kernel ${name}`);
  }
  // Counts over the DPP kernels, by modifier.
  const counts = new Map<string, number>();
  let crossLaneLds = 0;
  for (const e of expected) {
    for (const ins of functions.get(e.symbol) ?? []) {
      if (ins.mnemonic.endsWith("_dpp")) {
        const m =
          /(quad_perm:\[[0-3,]+\]|row_\w+:\d+|wave_\w+:1|row_mirror|row_half_mirror)/.exec(ins.operands)?.[1] ?? "?";
        counts.set(`${ins.mnemonic} ${m}`, (counts.get(`${ins.mnemonic} ${m}`) ?? 0) + 1);
      }
      if (/^ds_(bpermute|permute|swizzle)/.test(ins.mnemonic)) crossLaneLds += 1;
    }
  }
  const dppTotal = [...counts.values()].reduce((a, b) => a + b, 0);
  const sum = (f: (r: KernelReport) => number) => reports.reduce((a, r) => a + f(r), 0);
  const range = (f: (r: KernelReport) => number) =>
    reports.length ? `${Math.min(...reports.map(f))}-${Math.max(...reports.map(f))}` : "-";
  console.log(
    `check_gfx9_isa: ${arch}: ${reports.length}/${expected.length} DPP kernels (ts_warp_kernel<DppPolicy, dtype, 64, V, bias>)`,
  );
  const runs = reports.reduce((a, r) => a + r.runs, 0);
  console.log(
    `  DPP instructions: ${dppTotal} = ${runs} runs of the ${table.steps.length}-step table, each + v_readlane ${table.resultLane}`,
  );
  for (const [k, c] of counts) console.log(`    ${k}: ${c}`);
  console.log(`  ds_bpermute / ds_permute / ds_swizzle: ${crossLaneLds}`);
  console.log(
    `  spills: ${sum((r) => r.vgprSpills)} VGPR, ${sum((r) => r.sgprSpills)} SGPR; scratch ${sum((r) => r.scratchBytes)} B; LDS ${sum((r) => r.ldsBytes)} B`,
  );
  console.log(`  VGPRs ${range((r) => r.vgpr)}, SGPRs ${range((r) => r.sgpr)}, AGPRs ${range((r) => r.agpr)}`);
  for (const r of reports) {
    console.log(
      `    ${r.label.padEnd(16)} table runs ${String(r.runs).padStart(2)}  VGPR ${String(r.vgpr).padStart(3)}  SGPR ${String(r.sgpr).padStart(3)}` +
        (r.vgprSpills || r.sgprSpills || r.scratchBytes || r.ldsBytes
          ? `  spills ${r.vgprSpills}/${r.sgprSpills}, scratch ${r.scratchBytes} B, LDS ${r.ldsBytes} B`
          : ""),
    );
  }
  // Other kernels of the same code object (shuffle-policy warp, ck): reported, not checked here.
  const others = [...metadata.entries()].filter(
    ([name, m]) =>
      !name.includes("9DppPolicy") &&
      (m.vgpr_spill_count !== "0" || m.sgpr_spill_count !== "0" || m.private_segment_fixed_size !== "0"),
  );
  if (others.length > 0) {
    console.log(
      `  note: ${others.length} non-DPP kernel(s) of this code object spill or use scratch (not part of this check):`,
    );
    for (const [name, m] of others) {
      console.log(
        `    ${name}: vgpr_spill ${m.vgpr_spill_count}, sgpr_spill ${m.sgpr_spill_count}, scratch ${m.private_segment_fixed_size} B`,
      );
    }
  }
}

if (errors.length > 0) {
  console.error(`check_gfx9_isa: FAILED (${errors.length}):`);
  for (const e of errors.slice(0, 40)) console.error(`  ${e}`);
  if (errors.length > 40) console.error(`  ... and ${errors.length - 40} more`);
  process.exit(1);
}
console.log(
  `check_gfx9_isa: OK: ${files.length} gfx9 target(s); every DPP kernel's cross-lane steps are the ${table.steps.length}-step table of hip/dpp_steps.h (${table.steps.map((s) => ctrlName(s.ctrl)).join(", ")}) + v_readlane ${table.resultLane}; no ds_bpermute/ds_swizzle; no spills`,
);
