// ffi/library.ts: finds and loads the native library once, and turns statuses into Errors.
// Order: $TOPK_SIGMOID_LIB (a path), else $TOPK_SIGMOID_VARIANT (host|cuda|hip|host_sanitize),
// else the first GPU build in lib/ that sees a device, else a GPU build without one (it reports
// "no device" and routes on the host), else the host build. A missing library fails with a
// message that says exactly what to build.
import { type ConvertFns, dlopen, type Library } from "bun:ffi";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { errorForStatus, LibraryNotFoundError } from "./errors.ts";
import { BuildFlag, Limits } from "./status.ts";
import { type Symbols, symbols } from "./symbols.ts";

export type Variant = "cuda" | "hip" | "host" | "host_sanitize";
export const libDir = join(import.meta.dir, "..", "lib");
const suffix = process.platform === "darwin" ? "dylib" : "so";
export const variantPath = (variant: Variant) => join(libDir, `libtopk_sigmoid_${variant}.${suffix}`);

export interface NativeLibrary {
  readonly symbols: ConvertFns<Symbols>;
  readonly path: string;
  readonly variant: Variant | "custom";
  readonly buildFlags: number;
  readonly deviceCount: number;
  /** Why other candidates were passed over (for troubleshooting output). */
  readonly notes: readonly string[];
}

let loaded: NativeLibrary | undefined;

function open(path: string) {
  let lib: Library<Symbols>;
  try {
    lib = dlopen(path, symbols);
  } catch (e) {
    // Binding the whole table fails before the ABI check below can run when the library was
    // built from older sources that lack a function added since ("symbol not found").
    throw new LibraryNotFoundError(
      `${path} could not be loaded: ${(e as Error).message}. If it was built from older sources, rebuild it with 'bun run build'`,
    );
  }
  const abi = lib.symbols.topk_sigmoid_abi_version();
  if (abi !== Limits.TOPK_SIGMOID_ABI_VERSION) {
    lib.close();
    throw new LibraryNotFoundError(
      `${path} has ABI version ${abi}, this module needs ${Limits.TOPK_SIGMOID_ABI_VERSION}: rebuild it with 'bun run build'`,
    );
  }
  return lib;
}

function countDevices(lib: ReturnType<typeof open>): number {
  const out = new Int32Array(1);
  return lib.symbols.topk_sigmoid_device_count(out) === 0 ? (out[0] ?? 0) : 0;
}

function describe(lib: ReturnType<typeof open>, path: string, variant: Variant | "custom", notes: string[]) {
  return {
    symbols: lib.symbols,
    path,
    variant,
    buildFlags: lib.symbols.topk_sigmoid_build_flags(),
    deviceCount: countDevices(lib),
    notes,
  } satisfies NativeLibrary;
}

function missingMessage(searched: string[], notes: string[]): string {
  return [
    "topk-sigmoid: no native library found.",
    `Searched: ${searched.join(", ")}.`,
    ...notes,
    "Build it from the repository root with:  bun run build",
    "  (needs a C++ compiler such as g++; adds the CUDA build when nvcc is on PATH and the ROCm build when hipcc is)",
    "Or point TOPK_SIGMOID_LIB at a built libtopk_sigmoid_*.so.",
  ].join("\n");
}

/** Loads (once) and returns the native library. Throws LibraryNotFoundError with build advice. */
export function native(): NativeLibrary {
  if (loaded) return loaded;
  const notes: string[] = [];
  const explicit = process.env.TOPK_SIGMOID_LIB;
  if (explicit) {
    if (!existsSync(explicit))
      throw new LibraryNotFoundError(
        missingMessage([explicit], ["TOPK_SIGMOID_LIB names a file that does not exist."]),
      );
    loaded = describe(open(explicit), explicit, "custom", notes);
    return loaded;
  }
  const forced = process.env.TOPK_SIGMOID_VARIANT as Variant | undefined;
  if (forced) {
    if (!["cuda", "hip", "host", "host_sanitize"].includes(forced))
      throw new LibraryNotFoundError(`TOPK_SIGMOID_VARIANT=${forced}: use one of cuda, hip, host, host_sanitize`);
    const path = variantPath(forced);
    if (!existsSync(path)) throw new LibraryNotFoundError(missingMessage([path], [`TOPK_SIGMOID_VARIANT=${forced}.`]));
    loaded = describe(open(path), path, forced, notes);
    return loaded;
  }
  // Prefer a GPU build that sees a device; then a GPU build without one (its GPU entry points
  // say "no device" rather than "not built"; routing falls back to the host); then the host build.
  const opened: { info: NativeLibrary; close: () => void }[] = [];
  const searched: string[] = [];
  for (const variant of ["cuda", "hip", "host"] as const) {
    const path = variantPath(variant);
    searched.push(path);
    if (!existsSync(path)) continue;
    try {
      const lib = open(path);
      const info = describe(lib, path, variant, notes);
      if (info.deviceCount === 0 && variant !== "host") notes.push(`${path} loaded but sees no GPU`);
      opened.push({ info, close: () => lib.close() });
    } catch (e) {
      notes.push(`${path} did not load: ${(e as Error).message}`);
    }
  }
  const chosen = opened.find((o) => o.info.deviceCount > 0) ?? opened[0];
  for (const o of opened) if (o !== chosen) o.close();
  if (chosen) {
    loaded = chosen.info;
    return loaded;
  }
  throw new LibraryNotFoundError(missingMessage(searched, notes));
}

/** Throws the named Error for a failed native status, with the native last-error message. */
export function check(status: number): void {
  if (status !== 0) {
    const message = loaded?.symbols.topk_sigmoid_last_error()?.toString() ?? "";
    throw errorForStatus(status, message);
  }
}

export const hasBuild = (lib: NativeLibrary, flag: keyof typeof BuildFlag) => (lib.buildFlags & BuildFlag[flag]) !== 0;
