#!/usr/bin/env bun
// hip/build.ts: `bun run build`. Builds one shared library per toolchain found into lib/:
//   lib/libtopk_sigmoid_host.so           always (g++ / c++): host backend, GPU entry points report "not built"
//   lib/libtopk_sigmoid_host_sanitize.so  with --sanitize: the same under ASan + UBSan (for the test build)
//   lib/libtopk_sigmoid_cuda.so           when nvcc is on PATH (or CUDA_HOME): host + CUDA kernels, sm_80 / sm_90
//   lib/libtopk_sigmoid_hip.so            when hipcc is on PATH: host + HIP kernels for the gfx9 targets the
//                                         toolchain knows, plus their ISA text in lib/isa/ for the DPP check
// Flags: --werror (also TOPK_SIGMOID_WERROR=1 or CI=true), --sanitize, --only host,cuda,hip,sanitize,
//        --cuda-arch 80,90 (default), --verbose.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const hipDir = join(root, "hip");
const libDir = join(root, "lib");
const isaDir = join(libDir, "isa");

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const werror = flag("--werror") || process.env.TOPK_SIGMOID_WERROR === "1" || process.env.CI === "true";
const verbose = flag("--verbose");
const only = option("--only")?.split(",");
const wants = (variant: string) => (only ? only.includes(variant) : variant !== "sanitize" || flag("--sanitize"));

const hostSources = ["status.cpp", "host_pool.cpp", "host_backend.cpp"].map((f) => join(hipDir, f));
const gpuSource = join(hipDir, "device_backend.hip");
const noGpuSource = join(hipDir, "device_none.cpp");

// Same-bits rule: no contraction of a*b+c into fma anywhere, no fast-math.
const commonCxx = ["-std=c++17", "-fPIC", "-fvisibility=hidden", "-ffp-contract=off", "-fno-fast-math", "-I", hipDir];
const warnings = ["-Wall", "-Wextra", "-Wshadow", "-Wno-unused-parameter", ...(werror ? ["-Werror"] : [])];

function which(tool: string): string | undefined {
  const found = Bun.which(tool);
  if (found) return found;
  if (tool === "nvcc") {
    for (const home of [process.env.CUDA_HOME, process.env.CUDA_PATH, "/usr/local/cuda"]) {
      if (home && existsSync(join(home, "bin", "nvcc"))) return join(home, "bin", "nvcc");
    }
  }
  return undefined;
}

function run(cmd: string[], env: Record<string, string> = {}): { ok: boolean; output: string } {
  if (verbose) console.log(`  $ ${cmd.join(" ")}`);
  const proc = Bun.spawnSync(cmd, { cwd: root, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const output = `${proc.stdout.toString()}${proc.stderr.toString()}`.trim();
  return { ok: proc.exitCode === 0, output };
}

function must(step: string, cmd: string[], env: Record<string, string> = {}): void {
  const { ok, output } = run(cmd, env);
  if (output && (verbose || !ok)) console.log(output);
  if (!ok) {
    console.error(`build: ${step} failed`);
    process.exit(1);
  }
}

function cpuHasFma(): boolean {
  try {
    return /\bfma\b/.test(require("node:fs").readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return false;
  }
}

function hostCxx(): string {
  const cxx = process.env.CXX ?? which("g++") ?? which("c++") ?? which("clang++");
  if (!cxx) {
    console.error("build: no C++ compiler (g++, c++ or clang++) on PATH; install one (Debian: apt-get install g++)");
    process.exit(1);
  }
  return cxx;
}

function buildHost(name: string, extra: string[], linkExtra: string[] = []): void {
  const cxx = hostCxx();
  const out = join(libDir, name);
  // The library runs where it is built, so use the CPU's fma unit when it has one; fmaf is a
  // single rounding either way, so the bits do not change.
  const arch = cpuHasFma() && process.arch === "x64" ? ["-mfma"] : [];
  must(`host library ${name}`, [
    cxx,
    ...commonCxx,
    ...warnings,
    ...arch,
    ...extra,
    "-shared",
    "-o",
    out,
    ...hostSources,
    noGpuSource,
    "-pthread",
    ...linkExtra,
  ]);
  console.log(`build: ${out.replace(`${root}/`, "")}`);
}

// The weight table's initializer (hip/weight_table_data.hpp) as dir/weight_table.inc: the generator is
// compiled with the host compiler and the host backend's flags, so it computes the host's bits.
function generateWeightTable(dir: string): void {
  const generator = join(dir, "weight_table_gen");
  must("weight table generator", [
    hostCxx(),
    ...commonCxx,
    ...warnings,
    "-O2",
    "-o",
    generator,
    join(hipDir, "weight_table_gen.cpp"),
  ]);
  must("weight table", [generator, join(dir, "weight_table.inc")]);
}

function buildCuda(nvcc: string): void {
  const archs = (option("--cuda-arch") ?? process.env.TOPK_SIGMOID_CUDA_ARCH ?? "80,90").split(",");
  const gencode = archs.flatMap((a) => ["-gencode", `arch=compute_${a},code=sm_${a}`]);
  const out = join(libDir, "libtopk_sigmoid_cuda.so");
  const objDir = join(libDir, `obj-cuda-${process.pid}`); // per build, so concurrent builds do not collide
  mkdirSync(objDir, { recursive: true });
  const hostFlags = [...commonCxx, ...warnings].join(",");
  // --fmad=false: never contract; -ftz=false, -prec-div=true, -prec-sqrt=true are the defaults
  // but spelled out because the sigmoid's bits depend on them.
  const nvccFlags = [
    "-std=c++17",
    "-O3",
    "--fmad=false",
    "-ftz=false",
    "-prec-div=true",
    "-prec-sqrt=true",
    "-Xcompiler",
    hostFlags,
    // A register spill in a kernel is a performance bug: ptxas reports it, and --werror fails on it.
    "-Xptxas",
    werror ? "-warn-spills,-Werror" : "-warn-spills",
    ...(werror ? ["-Werror", "all-warnings"] : []),
    ...gencode,
  ];
  generateWeightTable(objDir);
  const gpuObj = join(objDir, "device_backend.o");
  must("CUDA kernels", [nvcc, ...nvccFlags, "-I", objDir, "-x", "cu", "-c", gpuSource, "-o", gpuObj]);
  const hostObjs = hostSources.map((src) => {
    const obj = join(objDir, `${src.split("/").pop()}.o`);
    must(`host object ${src}`, [nvcc, ...nvccFlags, "-x", "c++", "-c", src, "-o", obj]);
    return obj;
  });
  must("CUDA library link", [
    nvcc,
    "-shared",
    "-cudart",
    "static",
    ...gencode,
    "-o",
    out,
    gpuObj,
    ...hostObjs,
    "-Xlinker",
    "-lpthread",
  ]);
  rmSync(objDir, { recursive: true, force: true });
  console.log(`build: ${out.replace(`${root}/`, "")} (${archs.map((a) => `sm_${a}`).join(", ")})`);
}

function hipTargets(hipcc: string): string[] {
  const wanted = (process.env.TOPK_SIGMOID_HIP_ARCH ?? "gfx90a,gfx940,gfx942,gfx950").split(",");
  // Detect which targets this clang knows rather than assume (Debian's hipcc 5.2 stops at gfx940).
  return wanted.filter(
    (arch) =>
      run([hipcc, `--offload-arch=${arch}`, "--cuda-device-only", "-x", "hip", "-c", "/dev/null", "-o", "/dev/null"], {
        HIP_PLATFORM: "amd",
      }).ok,
  );
}

function buildHip(hipcc: string): void {
  const targets = hipTargets(hipcc);
  if (targets.length === 0) {
    console.log(`build: skip hip: ${hipcc} knows none of the gfx9 targets`);
    return;
  }
  const env = { HIP_PLATFORM: "amd" };
  const out = join(libDir, "libtopk_sigmoid_hip.so");
  const objDir = join(libDir, `obj-hip-${process.pid}`);
  mkdirSync(objDir, { recursive: true });
  const flags = [
    ...commonCxx,
    ...warnings,
    "-O3",
    "-Wno-unused-command-line-argument",
    ...targets.map((t) => `--offload-arch=${t}`),
  ];
  const gpuObj = join(objDir, "device_backend.o");
  must("HIP kernels", [hipcc, ...flags, "-c", "-x", "hip", gpuSource, "-o", gpuObj], env);
  // The host sources are plain C++: compile them with hipcc's clang but without offloading.
  const hostObjs = hostSources.map((src) => {
    const obj = join(objDir, `${src.split("/").pop()}.o`);
    must(
      `host object ${src}`,
      [hipcc, ...commonCxx, ...warnings, "-O3", "-Wno-unused-command-line-argument", "-c", "-x", "c++", src, "-o", obj],
      env,
    );
    return obj;
  });
  must(
    "HIP library link",
    [
      hipcc,
      "-shared",
      "-fPIC",
      "-Wno-unused-command-line-argument",
      ...targets.map((t) => `--offload-arch=${t}`),
      "-o",
      out,
      gpuObj,
      ...hostObjs,
      "-pthread",
    ],
    env,
  );
  rmSync(objDir, { recursive: true, force: true });
  const isa = writeIsa(out);
  console.log(`build: ${out.replace(`${root}/`, "")} (${targets.join(", ")}; ${isa})`);
}

// An LLVM tool of the HIP toolchain: ROCm's own (HIP_CLANG_PATH, $ROCM_PATH/llvm/bin,
// /opt/rocm/llvm/bin), else the distribution's (Debian's hipcc depends on llvm-15 and
// clang-tools-15, which bring llvm-objdump-15 and clang-offload-bundler-15).
function llvmTool(name: string): string | undefined {
  const rocm = process.env.ROCM_PATH ? join(process.env.ROCM_PATH, "llvm", "bin") : undefined;
  for (const dir of [process.env.HIP_CLANG_PATH, rocm, "/opt/rocm/llvm/bin"]) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  for (const version of [20, 19, 18, 17, 16, 15]) {
    const found = which(`${name}-${version}`);
    if (found) return found;
  }
  return which(name);
}

// stdout of a tool that must succeed (kept apart from stderr: it becomes a file).
function capture(step: string, cmd: string[]): string {
  if (verbose) console.log(`  $ ${cmd.join(" ")}`);
  const proc = Bun.spawnSync(cmd, { cwd: root, stdout: "pipe", stderr: "pipe" });
  if (proc.exitCode !== 0) {
    console.log(`${proc.stdout.toString()}${proc.stderr.toString()}`.trim());
    console.error(`build: ${step} failed`);
    process.exit(1);
  }
  return proc.stdout.toString();
}

// The device ISA for tools/check_gfx9_isa.ts, taken from what ships: the code objects embedded
// in the library's .hip_fatbin, one per target, as lib/isa/device_backend-<arch>.co, with their
// disassembly (.s, llvm-objdump) and AMDGPU metadata note (.metadata.yaml: registers, spills,
// scratch). Returns a summary for the build log.
function writeIsa(library: string): string {
  rmSync(isaDir, { recursive: true, force: true });
  const objcopy = llvmTool("llvm-objcopy");
  const bundler = llvmTool("clang-offload-bundler");
  const objdump = llvmTool("llvm-objdump");
  const readelf = llvmTool("llvm-readelf");
  if (!objcopy || !bundler || !objdump || !readelf) {
    return "no ISA: llvm-objcopy, clang-offload-bundler, llvm-objdump and llvm-readelf are needed (Debian: llvm-15, clang-tools-15)";
  }
  mkdirSync(isaDir, { recursive: true });
  const fatbin = join(isaDir, "device_backend.hipfb");
  must("HIP ISA: extract .hip_fatbin", [objcopy, "-O", "binary", "--only-section=.hip_fatbin", library, fatbin]);
  const bundles = capture("HIP ISA: list code objects", [bundler, "--list", "--type=o", `--input=${fatbin}`])
    .split("\n")
    .map((line) => line.trim())
    .filter((id) => id.startsWith("hip") && id.includes("-amdgcn-"));
  const archs: string[] = [];
  for (const id of bundles) {
    // hipv4-amdgcn-amd-amdhsa--gfx90a[:feature+...]
    const arch = (id.split("--").pop() ?? id).split(":")[0] as string;
    const base = join(isaDir, `device_backend-${arch}`);
    must(`HIP ISA ${arch}: unbundle`, [
      bundler,
      "--unbundle",
      "--type=o",
      `--input=${fatbin}`,
      `--targets=${id}`,
      `--output=${base}.co`,
    ]);
    const disassembly = capture(`HIP ISA ${arch}: disassemble`, [objdump, "-d", `--mcpu=${arch}`, `${base}.co`]);
    writeFileSync(`${base}.s`, disassembly);
    writeFileSync(`${base}.metadata.yaml`, capture(`HIP ISA ${arch}: metadata`, [readelf, "--notes", `${base}.co`]));
    archs.push(arch);
  }
  rmSync(fatbin, { force: true });
  return archs.length > 0 ? `ISA of ${archs.join(", ")} in lib/isa/` : "no code objects found in .hip_fatbin";
}

mkdirSync(libDir, { recursive: true });
if (wants("host")) buildHost("libtopk_sigmoid_host.so", ["-O3"]);
if (wants("sanitize")) {
  buildHost(
    "libtopk_sigmoid_host_sanitize.so",
    [
      "-O1",
      "-g",
      "-fsanitize=address,undefined",
      "-fno-sanitize-recover=undefined",
      "-fno-omit-frame-pointer",
      "-DTS_SANITIZE=1",
    ],
    ["-fsanitize=address,undefined"],
  );
}
if (wants("cuda")) {
  const nvcc = which("nvcc");
  if (nvcc) buildCuda(nvcc);
  else console.log("build: skip cuda: nvcc not found (set CUDA_HOME or put nvcc on PATH)");
}
if (wants("hip")) {
  const hipcc = which("hipcc");
  if (hipcc) buildHip(hipcc);
  else console.log("build: skip hip: hipcc not found (Debian: apt-get install hipcc libamdhip64-dev)");
}
