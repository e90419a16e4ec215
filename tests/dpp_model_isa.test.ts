// tests/dpp_model_isa.test.ts: tools/check_gfx9_isa.ts on the ISA the HIP build wrote (lib/isa/),
// and on copies of it with one fault injected each, so the CI gate is known to bite. Skipped
// when no gfx9 ISA has been built (no hipcc here: bun hip/build.ts --only hip writes it).
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const isaDir = join(root, "lib", "isa");
const gfx9 = existsSync(isaDir)
  ? readdirSync(isaDir)
      .filter((f) => /^device_backend-gfx9[0-9a-z]*\.s$/.test(f))
      .sort()
  : [];
const scratch: string[] = [];
/** Each test runs the checker (about 2 s here) in a subprocess; CI machines may be slower. */
const TIMEOUT_MS = 120_000;
afterAll(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function check(dir: string): { code: number; output: string } {
  const proc = Bun.spawnSync([process.execPath, join(root, "tools", "check_gfx9_isa.ts"), dir], {
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: proc.exitCode ?? -1, output: `${proc.stdout.toString()}${proc.stderr.toString()}` };
}

/** A copy of lib/isa with `edit` applied to the first gfx9 disassembly (and metadata). */
function faulty(edit: (asm: string, meta: string) => { asm: string; meta: string }): string {
  const dir = mkdtempSync(join(tmpdir(), "ts-isa-"));
  scratch.push(dir);
  cpSync(isaDir, dir, { recursive: true });
  const file = gfx9[0] as string;
  const metaFile = file.replace(/\.s$/, ".metadata.yaml");
  const out = edit(readFileSync(join(dir, file), "utf8"), readFileSync(join(dir, metaFile), "utf8"));
  writeFileSync(join(dir, file), out.asm);
  writeFileSync(join(dir, metaFile), out.meta);
  return dir;
}

const KERNEL = "_Z14ts_warp_kernelI9DppPolicyLi2ELi64ELi8ELb0ELb0EEv14ts_kernel_args"; // bf16, V = 8, no bias, not Small
/** [start, end) of the n-th line of KERNEL's body that contains `needle`. */
function lineIn(asm: string, needle: string): [number, number] {
  const body = asm.indexOf(`<${KERNEL}>:`);
  const at = asm.indexOf(needle, body);
  if (body < 0 || at < 0) throw new Error(`no ${needle} in ${KERNEL}`);
  return [asm.lastIndexOf("\n", at) + 1, asm.indexOf("\n", at) + 1];
}

describe.skipIf(gfx9.length === 0)("tools/check_gfx9_isa.ts on the built gfx9 ISA", () => {
  test(
    "passes on lib/isa",
    () => {
      const r = check(isaDir);
      expect(r.output).toContain("check_gfx9_isa: OK");
      expect(r.code).toBe(0);
    },
    TIMEOUT_MS,
  );

  test(
    "fails when a DPP word's row_mask differs from the table (printed text left alone)",
    () => {
      const dir = faulty((asm, meta) => {
        const [a, b] = lineIn(asm, "row_bcast:31");
        const line = asm.slice(a, b).replace(/ ([0-9A-F])([0-9A-F]{7})\n$/, " F$2\n");
        return { asm: asm.slice(0, a) + line + asm.slice(b), meta };
      });
      const r = check(dir);
      expect(r.code).toBe(1);
      expect(r.output).toContain("but the DPP word encodes row_bcast:31 row_mask:0xf");
    },
    TIMEOUT_MS,
  );

  test(
    "fails on a ds_bpermute in a DPP kernel",
    () => {
      const dir = faulty((asm, meta) => {
        const [a] = lineIn(asm, "quad_perm:[1,0,3,2]");
        const bperm = "\tds_bpermute_b32 v1, v2, v3 // 000000000000: D87E0000 01000302\n";
        return { asm: asm.slice(0, a) + bperm + asm.slice(a), meta };
      });
      const r = check(dir);
      expect(r.code).toBe(1);
      expect(r.output).toContain("ds_bpermute_b32 at line");
    },
    TIMEOUT_MS,
  );

  test(
    "fails when a step is missing from a run",
    () => {
      const dir = faulty((asm, meta) => {
        const [a, b] = lineIn(asm, "row_shr:8");
        return { asm: asm.slice(0, a) + asm.slice(b), meta };
      });
      const r = check(dir);
      expect(r.code).toBe(1);
      expect(r.output).toContain("where the table has step");
    },
    TIMEOUT_MS,
  );

  test(
    "fails when a masked step does not write the running max in place",
    () => {
      const dir = faulty((asm, meta) => {
        const [a, b] = lineIn(asm, "row_bcast:15");
        const line = asm.slice(a, b).replace(/v_max_u32_dpp v(\d+),/, (_, r) => `v_max_u32_dpp v${Number(r) + 1},`);
        return { asm: asm.slice(0, a) + line + asm.slice(b), meta };
      });
      const r = check(dir);
      expect(r.code).toBe(1);
      expect(r.output).toContain("not v = max(dpp(v), v)");
    },
    TIMEOUT_MS,
  );

  test(
    "fails when the wait states the ISA requires between dependent DPP steps are missing",
    () => {
      const dir = faulty((asm, meta) => {
        const [a] = lineIn(asm, "row_shr:8");
        const before = asm.lastIndexOf("\n", a - 2) + 1; // the line before row_shr:8: the s_nop
        if (!/^\s+s_nop/.test(asm.slice(before, a))) throw new Error("expected an s_nop before row_shr:8");
        return { asm: asm.slice(0, before) + asm.slice(a), meta };
      });
      const r = check(dir);
      expect(r.code).toBe(1);
      expect(r.output).toContain("wait state(s) after the previous DPP step");
    },
    TIMEOUT_MS,
  );

  test(
    "fails on spills in the metadata",
    () => {
      const dir = faulty((asm, meta) => {
        const at = meta.indexOf(KERNEL);
        const spill = meta.indexOf(".vgpr_spill_count: 0", at);
        return { asm, meta: `${meta.slice(0, spill)}.vgpr_spill_count: 2${meta.slice(spill + 20)}` };
      });
      const r = check(dir);
      expect(r.code).toBe(1);
      expect(r.output).toContain("spills: 2 VGPR");
    },
    TIMEOUT_MS,
  );

  test(
    "fails when the DPP kernels are missing (e.g. DppPolicy aliased to the shuffle policy)",
    () => {
      const dir = faulty((asm, meta) => ({ asm: asm.replaceAll("9DppPolicy", "9XppPolicy"), meta }));
      const r = check(dir);
      expect(r.code).toBe(1);
      expect(r.output).toContain("is not in the code object");
    },
    TIMEOUT_MS,
  );
});
