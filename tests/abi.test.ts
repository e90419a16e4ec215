// tests/abi.test.ts: hip/topk_sigmoid.h is the single source of truth. This suite parses it and
// checks the TypeScript mirrors against it: ffi/symbols.ts (every TS_EXPORT function, argument
// and return type, both ways), ffi/status.ts (every #define), ffi/errors.ts (a named Error class
// per status), the native status names, the ts_device_info layout api/device.ts reads, the
// symbols every built library exports, and the "library not found" advice.
import { FFIType } from "bun:ffi";
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { libraryInfo } from "../api/library_info.ts";
import { errorForStatus, TopkSigmoidError } from "../ffi/errors.ts";
import { libDir, native, variantPath } from "../ffi/library.ts";
import {
  BackendCode,
  BuildFlag,
  DtypeCode,
  HeaderBackends,
  HeaderDtypes,
  Limits,
  Status,
  Vendor,
} from "../ffi/status.ts";
import { symbols } from "../ffi/symbols.ts";
import * as mod from "../mod.ts";
import { NativeArena } from "./helpers.ts";

const root = join(import.meta.dir, "..");
const header = readFileSync(join(root, "hip", "topk_sigmoid.h"), "utf8");

// ---- header parsing ---------------------------------------------------------------------------

type FfiName = "ptr" | "i32" | "i64" | "u64" | "f32" | "cstring" | "void";

/** C type -> bun:ffi type name, as the ABI promises to use them. */
function ffiTypeOf(cType: string, where: string): FfiName {
  const t = cType.replace(/\s+/g, " ").trim();
  if (t === "const char*" || t === "const char *") return "cstring";
  if (t.includes("*")) return "ptr";
  const scalar: Record<string, FfiName> = {
    int32_t: "i32",
    ts_status: "i32",
    int64_t: "i64",
    uint64_t: "u64",
    float: "f32",
    void: "void",
  };
  const found = scalar[t];
  if (!found) throw new Error(`${where}: C type "${t}" has no bun:ffi mapping in this test; extend the table`);
  return found;
}

interface Decl {
  name: string;
  args: FfiName[];
  returns: FfiName;
  line: string;
}

function parseExports(text: string): Decl[] {
  const decls: Decl[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("TS_EXPORT ")) continue;
    const m = /^TS_EXPORT\s+(.*?)\b(\w+)\s*\((.*)\)\s*;\s*$/.exec(line);
    if (!m) throw new Error(`cannot parse TS_EXPORT line (keep one declaration per line): ${line}`);
    const [, ret, name, params] = m as unknown as [string, string, string, string];
    const list = params.trim() === "void" || params.trim() === "" ? [] : params.split(",");
    const args = list.map((p) => {
      const pm = /^(.*?)(\w+)\s*$/.exec(p.trim());
      if (!pm) throw new Error(`${name}: cannot parse parameter "${p}"`);
      // "const void* logits" -> "const void*"; a lone type (no name) keeps its last word
      const type =
        (pm[1] as string).trim() === "" || (pm[1] as string).trim() === "const" ? p.trim() : (pm[1] as string);
      return ffiTypeOf(type, `${name}(${p.trim()})`);
    });
    decls.push({ name, args, returns: ffiTypeOf(ret, `${name} return`), line });
  }
  return decls;
}

function parseDefines(text: string): Map<string, number> {
  const defines = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+(\w+)\s+(-?\d+)\b/gm)) defines.set(m[1] as string, Number(m[2]));
  return defines;
}

const decls = parseExports(header);
const defines = parseDefines(header);
const ffiName = new Map<number, FfiName>(
  (["ptr", "i32", "i64", "u64", "f32", "cstring", "void"] as const).map((n) => [FFIType[n] as number, n]),
);

// ---- symbols ----------------------------------------------------------------------------------

describe("ffi/symbols.ts matches the header's TS_EXPORT lines", () => {
  test("the header declares the functions this suite expects to find", () => {
    expect(decls.length).toBeGreaterThanOrEqual(30);
    expect(decls.map((d) => d.name)).toContain("topk_sigmoid_host");
  });

  test("every exported function is in symbols.ts with the same argument and return types", () => {
    const problems: string[] = [];
    for (const d of decls) {
      const s = (symbols as Record<string, { args: readonly number[]; returns: number }>)[d.name];
      if (!s) {
        problems.push(`${d.name}: declared in the header, missing from ffi/symbols.ts`);
        continue;
      }
      const args = s.args.map((a) => ffiName.get(a) ?? `FFIType ${a}`);
      const returns = ffiName.get(s.returns) ?? `FFIType ${s.returns}`;
      if (args.join(",") !== d.args.join(","))
        problems.push(`${d.name}: header args (${d.args.join(", ")}) vs symbols.ts (${args.join(", ")})`);
      if (returns !== d.returns) problems.push(`${d.name}: header returns ${d.returns}, symbols.ts ${returns}`);
    }
    expect(problems).toEqual([]);
  });

  test("symbols.ts has nothing the header does not declare", () => {
    const declared = new Set(decls.map((d) => d.name));
    expect(Object.keys(symbols).filter((name) => !declared.has(name))).toEqual([]);
  });

  test("the route entry points share one signature", () => {
    const routes = decls.filter((d) => /^topk_sigmoid(_warp|_gfx9|_ck|_host)?$/.test(d.name));
    expect(routes.map((d) => d.name).sort()).toEqual([
      "topk_sigmoid",
      "topk_sigmoid_ck",
      "topk_sigmoid_gfx9",
      "topk_sigmoid_host",
      "topk_sigmoid_warp",
    ]);
    for (const r of routes)
      expect(r.args).toEqual([
        "ptr",
        "i32",
        "i64",
        "i32",
        "i64",
        "ptr",
        "i32",
        "i32",
        "i32",
        "f32",
        "ptr",
        "ptr",
        "ptr",
      ]);
  });

  test("every built library in lib/ exports every header function", () => {
    const libs = existsSync(libDir)
      ? readdirSync(libDir).filter((f) => /^libtopk_sigmoid_\w+\.(so|dylib)$/.test(f))
      : [];
    expect(libs.length).toBeGreaterThan(0); // at least the loaded one
    const problems: string[] = [];
    for (const f of libs) {
      const nm = Bun.spawnSync(["nm", "-D", "--defined-only", join(libDir, f)], { stdout: "pipe", stderr: "pipe" });
      if (nm.exitCode !== 0) {
        problems.push(`${f}: nm failed: ${nm.stderr.toString().trim()}`);
        continue;
      }
      const exported = new Set(
        nm.stdout
          .toString()
          .split("\n")
          .map((l) => l.trim().split(/\s+/).pop() ?? ""),
      );
      const missing = decls.map((d) => d.name).filter((n) => !exported.has(n));
      if (missing.length) problems.push(`${f}: missing ${missing.join(", ")}`);
    }
    expect(problems).toEqual([]);
  });

  // bench/mock_device.cpp (the benchmark harness's pretend GPU) must keep up with the header.
  const cxx = Bun.which("g++") ?? Bun.which("c++");
  test.skipIf(!cxx)(
    "bench/mock_device.cpp compiles warning-free and exports every header function",
    () => {
      const out = join(mkdtempSync(join(tmpdir(), "topk-sigmoid-mock-")), "libmock.so");
      const sources = ["bench/mock_device.cpp", "hip/status.cpp", "hip/host_pool.cpp", "hip/host_backend.cpp"];
      const cc = Bun.spawnSync(
        [
          cxx as string,
          "-std=c++17",
          "-O1",
          "-Wall",
          "-Wextra",
          "-Werror",
          "-shared",
          "-fPIC",
          "-Ihip",
          ...sources,
          "-o",
          out,
          "-lpthread",
        ],
        { cwd: root, stdout: "pipe", stderr: "pipe" },
      );
      expect(cc.stderr.toString()).toBe("");
      expect(cc.exitCode).toBe(0);
      const nm = Bun.spawnSync(["nm", "-D", "--defined-only", out], { stdout: "pipe" });
      const exported = new Set(
        nm.stdout
          .toString()
          .split("\n")
          .map((l) => l.trim().split(/\s+/).pop() ?? ""),
      );
      expect(decls.map((d) => d.name).filter((n) => !exported.has(n))).toEqual([]);
    },
    60_000,
  );
});

// ---- status codes and constants ---------------------------------------------------------------

describe("ffi/status.ts matches the header's #defines", () => {
  const group = (re: RegExp) => Object.fromEntries([...defines].filter(([name]) => re.test(name)));

  test("status codes (TS_OK, TS_ERR_*) both ways", () => {
    expect(group(/^TS_(OK|ERR_\w+)$/)).toEqual({ ...Status });
  });
  test("dtypes", () => {
    expect(group(/^TS_DTYPE_/)).toEqual({ ...HeaderDtypes });
    expect(DtypeCode).toEqual({
      f32: HeaderDtypes.TS_DTYPE_F32,
      f16: HeaderDtypes.TS_DTYPE_F16,
      bf16: HeaderDtypes.TS_DTYPE_BF16,
    });
  });
  test("backends", () => {
    expect(group(/^TS_BACKEND_/)).toEqual({ ...HeaderBackends });
    expect(BackendCode).toEqual({
      host: HeaderBackends.TS_BACKEND_HOST,
      warp: HeaderBackends.TS_BACKEND_WARP,
      gfx9: HeaderBackends.TS_BACKEND_GFX9,
      ck: HeaderBackends.TS_BACKEND_CK,
    });
  });
  test("build flags, vendors, limits", () => {
    expect(group(/^TS_BUILD_/)).toEqual({ ...BuildFlag });
    expect(group(/^TS_VENDOR_/)).toEqual({ ...Vendor });
    expect(group(/^TOPK_SIGMOID_/)).toEqual({ ...Limits });
  });
  test("no numeric #define is left unchecked", () => {
    const known = /^(TS_(OK|ERR_\w+|DTYPE_\w+|BACKEND_\w+|BUILD_\w+|VENDOR_\w+)|TOPK_SIGMOID_\w+)$/;
    expect([...defines.keys()].filter((n) => !known.test(n))).toEqual([]);
    expect(defines.size).toBeGreaterThan(30);
  });
  test("status codes are distinct", () => {
    const codes = Object.values(Status);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe("status codes -> names and Error classes", () => {
  const lib = native();
  const pascal = (name: string) =>
    `${name
      .replace(/^TS_ERR_/, "")
      .toLowerCase()
      .split("_")
      .map((w) => (w[0] ?? "").toUpperCase() + w.slice(1))
      .join("")}Error`;

  test("topk_sigmoid_status_name matches every code; unknown codes say so", () => {
    for (const [name, code] of Object.entries(Status))
      expect({ code, name: lib.symbols.topk_sigmoid_status_name(code)?.toString() }).toEqual({ code, name });
    for (const code of [-1, 10, 19, 26, 32, 1000])
      expect(lib.symbols.topk_sigmoid_status_name(code)?.toString()).toBe("TS_ERR_UNKNOWN");
  });

  test("every failure code maps to its own named, exported Error class", () => {
    const seen = new Set<unknown>();
    for (const [name, code] of Object.entries(Status)) {
      if (name === "TS_OK") continue;
      const e = errorForStatus(code, `native says ${name}`);
      expect(e).toBeInstanceOf(TopkSigmoidError);
      expect(e).toBeInstanceOf(Error);
      expect({ name, cls: e.constructor.name, errorName: e.name }).toEqual({
        name,
        cls: pascal(name),
        errorName: pascal(name),
      });
      expect(e.constructor).not.toBe(TopkSigmoidError);
      expect((mod as Record<string, unknown>)[pascal(name)]).toBe(e.constructor);
      expect({ status: e.status, statusName: e.statusName, message: e.message }).toEqual({
        status: code,
        statusName: name,
        message: `native says ${name}`,
      });
      seen.add(e.constructor);
    }
    expect(seen.size).toBe(Object.keys(Status).length - 1);
  });

  test("an unknown code still gives a TopkSigmoidError that shows the code", () => {
    const e = errorForStatus(77, "strange");
    expect(e.constructor).toBe(TopkSigmoidError);
    expect(e.statusName).toBe("TS_ERR_UNKNOWN");
    expect(e.message).toMatch(/strange.*77/);
  });

  test("the loaded library reports this ABI version and a host build", () => {
    const info = libraryInfo();
    expect(lib.symbols.topk_sigmoid_abi_version()).toBe(Limits.TOPK_SIGMOID_ABI_VERSION);
    expect(info.abiVersion).toBe(Limits.TOPK_SIGMOID_ABI_VERSION);
    expect(info.builtWith.host).toBe(true);
    if (info.variant === "host_sanitize") expect(info.builtWith.sanitize).toBe(true);
    if (info.variant === "host")
      expect(info.builtWith).toEqual({ host: true, cuda: false, hip: false, sanitize: false });
  });
});

// ---- struct layout ----------------------------------------------------------------------------

test("ts_device_info layout is the one api/device.ts reads", () => {
  const body = /typedef struct ts_device_info \{([\s\S]*?)\} ts_device_info;/.exec(header)?.[1];
  expect(body).toBeDefined();
  const sizes: Record<string, number> = { int64_t: 8, int32_t: 4, char: 1 };
  const layout: Record<string, number> = {};
  let offset = 0;
  for (const m of (body as string).matchAll(/^\s*(int64_t|int32_t|char)\s+(\w+)(?:\[(\d+)\])?;/gm)) {
    const size = sizes[m[1] as string] as number;
    expect(offset % size).toBe(0); // "no implicit padding"
    layout[m[2] as string] = offset;
    offset += size * Number(m[3] ?? 1);
  }
  layout.sizeof = offset;
  // api/device.ts reads: i64 total_memory at 0, then ten i32 from 8 (ordinal, vendor, major,
  // minor, multiprocessors, warp_size, dispatch_backend, l2_cache_bytes, dependent_launch,
  // runtime_version), name at 48, arch at 304, 368 bytes in all (a multiple of 8: no tail padding)
  expect(layout).toEqual({
    total_memory: 0,
    ordinal: 8,
    vendor: 12,
    major: 16,
    minor: 20,
    multiprocessors: 24,
    warp_size: 28,
    dispatch_backend: 32,
    l2_cache_bytes: 36,
    dependent_launch: 40,
    runtime_version: 44,
    name: 48,
    arch: 304,
    sizeof: 368,
  });
});

// ---- library discovery ------------------------------------------------------------------------

/** Loads the library in a fresh bun process (clean module cache) with `env`, reports the error. */
function loadInChild(env: Record<string, string>): { name: string; message: string; base: boolean } | "loaded" {
  const script = `
    import { libraryInfo, TopkSigmoidError } from "./mod.ts";
    try { libraryInfo(); console.log(JSON.stringify("loaded")); }
    catch (e) { console.log(JSON.stringify({ name: e.constructor.name, message: e.message, base: e instanceof TopkSigmoidError })); }`;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("TOPK_SIGMOID_")) childEnv[k] = v;
  const proc = Bun.spawnSync([process.execPath, "-e", script], {
    cwd: root,
    env: { ...childEnv, ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = proc.stdout.toString().trim().split("\n").pop() ?? "";
  if (proc.exitCode !== 0 || !out) throw new Error(`child bun failed (${proc.exitCode}): ${proc.stderr.toString()}`);
  return JSON.parse(out);
}

describe("LibraryNotFoundError says what to build", () => {
  test("TOPK_SIGMOID_LIB naming a missing file", () => {
    const r = loadInChild({ TOPK_SIGMOID_LIB: "/nonexistent/libtopk_sigmoid_nope.so" });
    expect(r).not.toBe("loaded");
    if (r === "loaded") return;
    expect(r.name).toBe("LibraryNotFoundError");
    expect(r.base).toBe(true);
    expect(r.message).toContain("/nonexistent/libtopk_sigmoid_nope.so");
    expect(r.message).toMatch(/TOPK_SIGMOID_LIB names a file that does not exist/);
    expect(r.message).toMatch(/bun run build/);
  }, 30_000);

  test("an unknown TOPK_SIGMOID_VARIANT lists the valid ones", () => {
    const r = loadInChild({ TOPK_SIGMOID_VARIANT: "tpu" });
    expect(r === "loaded" ? r : r.name).toBe("LibraryNotFoundError");
    if (r !== "loaded") expect(r.message).toMatch(/use one of cuda, hip, host, host_sanitize/);
  }, 30_000);

  test("a variant that was not built says to run bun run build", () => {
    const missing = (["cuda", "hip"] as const).find((v) => !existsSync(variantPath(v)));
    if (!missing) return; // every variant is built here; nothing to miss
    const r = loadInChild({ TOPK_SIGMOID_VARIANT: missing });
    expect(r === "loaded" ? r : r.name).toBe("LibraryNotFoundError");
    if (r !== "loaded") {
      expect(r.message).toContain(variantPath(missing));
      expect(r.message).toMatch(/bun run build/);
    }
  }, 30_000);

  // Stub libraries (every header function returns 0) built with the system C compiler, to see
  // what loading a library from other sources says.
  const cc = Bun.which("cc") ?? Bun.which("gcc") ?? Bun.which("clang");
  const stubLibrary = (name: string, abi: number, omit: string[]): string => {
    const dir = mkdtempSync(join(tmpdir(), "topk-sigmoid-stub-"));
    const body = decls
      .filter((d) => !omit.includes(d.name))
      .map((d) =>
        d.name === "topk_sigmoid_abi_version"
          ? `int ${d.name}(void) { return ${abi}; }`
          : d.returns === "cstring"
            ? `const char* ${d.name}(void) { return ""; }`
            : `int ${d.name}(void) { return 0; }`,
      )
      .join("\n");
    writeFileSync(join(dir, `${name}.c`), body);
    const out = join(dir, `${name}.so`);
    const proc = Bun.spawnSync([cc as string, "-shared", "-fPIC", "-o", out, join(dir, `${name}.c`)], {
      stderr: "pipe",
    });
    if (proc.exitCode !== 0) throw new Error(`${cc} failed: ${proc.stderr.toString()}`);
    return out;
  };

  test.skipIf(!cc)(
    "a library from older sources (a function missing) says to rebuild",
    () => {
      const r = loadInChild({
        TOPK_SIGMOID_LIB: stubLibrary("old", Limits.TOPK_SIGMOID_ABI_VERSION, ["topk_sigmoid_empty_kernel"]),
      });
      expect(r === "loaded" ? r : r.name).toBe("LibraryNotFoundError");
      if (r !== "loaded") {
        expect(r.message).toMatch(/topk_sigmoid_empty_kernel/);
        expect(r.message).toMatch(/rebuild it with 'bun run build'/);
      }
    },
    30_000,
  );

  test.skipIf(!cc)(
    "a library with another ABI version says which and to rebuild",
    () => {
      const path = stubLibrary("abi99", 99, []);
      const r = loadInChild({ TOPK_SIGMOID_LIB: path });
      rmSync(dirname(path), { recursive: true, force: true });
      expect(r === "loaded" ? r : r.name).toBe("LibraryNotFoundError");
      if (r !== "loaded") {
        expect(r.message).toMatch(
          new RegExp(`has ABI version 99, this module needs ${Limits.TOPK_SIGMOID_ABI_VERSION}`),
        );
        expect(r.message).toMatch(/rebuild it with 'bun run build'/);
      }
    },
    30_000,
  );

  test("TOPK_SIGMOID_LIB naming a built library loads it", () => {
    expect(loadInChild({ TOPK_SIGMOID_LIB: variantPath("host") })).toBe("loaded");
  }, 30_000);
});

// ---- the sanitizer run (tests/run_sanitized.sh) -----------------------------------------------

describe.skipIf(process.env.TOPK_SIGMOID_EXPECT_SANITIZE !== "1")("sanitizer run", () => {
  test("the ASan + UBSan build is loaded and test buffers come from ASan's malloc", () => {
    const info = libraryInfo();
    expect(info.variant).toBe("host_sanitize");
    expect(info.builtWith.sanitize).toBe(true);
    expect(NativeArena.sanitizing).toBe(true);
  });

  test("ASan reports a one-element overread of an arena buffer (the harness can fail)", () => {
    // a deliberate bug in a child process: tokens = 2 over a one-row buffer
    const script = `
      import { native } from "./ffi/library.ts";
      import { NativeArena } from "./tests/helpers.ts";
      const arena = new NativeArena();
      const logits = arena.f32(4);
      logits.set([1, 2, 3, 4]);
      const status = native().symbols.topk_sigmoid_host(logits, 0, 2, 4, 4, null, 0, 1, 0, 1, arena.f32(2), arena.i32(2), null);
      console.log("returned", status);`;
    const proc = Bun.spawnSync([process.execPath, "-e", script], {
      cwd: root,
      env: process.env,
      stdout: "pipe",
      stderr: "pipe",
    });
    const stderr = proc.stderr.toString();
    expect(proc.exitCode).not.toBe(0);
    expect(stderr).toMatch(/AddressSanitizer: heap-buffer-overflow/);
    expect(stderr).toMatch(/READ of size 4/);
    expect(proc.stdout.toString()).not.toMatch(/returned/);
  }, 30_000);
});
