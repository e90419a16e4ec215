// api/library_info.ts: which native library is loaded and what it was built with.
import { check, hasBuild, native } from "../ffi/library.ts";

export interface LibraryInfo {
  path: string;
  variant: string;
  abiVersion: number;
  builtWith: { host: boolean; cuda: boolean; hip: boolean; sanitize: boolean };
  deviceCount: number;
  /** Why other library files were passed over, if any. */
  notes: readonly string[];
}

/** Describes the loaded native library (loads it if needed; throws LibraryNotFoundError). */
export function libraryInfo(): LibraryInfo {
  const lib = native();
  return {
    path: lib.path,
    variant: lib.variant,
    abiVersion: lib.symbols.topk_sigmoid_abi_version(),
    builtWith: {
      host: hasBuild(lib, "TS_BUILD_HOST"),
      cuda: hasBuild(lib, "TS_BUILD_CUDA"),
      hip: hasBuild(lib, "TS_BUILD_HIP"),
      sanitize: hasBuild(lib, "TS_BUILD_SANITIZE"),
    },
    deviceCount: lib.deviceCount,
    notes: lib.notes,
  };
}

/** Host backend worker threads: 0 = one per CPU (default). */
export function setHostThreads(threads: number): void {
  check(native().symbols.topk_sigmoid_host_set_threads(threads));
}
