#!/usr/bin/env bash
# tests/run_sanitized.sh: runs the host test suites inside bun against
# lib/libtopk_sigmoid_host_sanitize.so (ASan + UBSan, built by `bun run build --sanitize`).
#
# How: bun itself is not instrumented, so the ASan runtime has to be in the process before
# anything else; LD_PRELOAD puts the very libasan the library was linked against first, and
# TOPK_SIGMOID_VARIANT=host_sanitize makes ffi/library.ts load the sanitized build. Bun's own
# heap (typed arrays) has no redzones, so tests/helpers.ts (NativeArena) allocates every buffer
# it hands to the native code from ASan's malloc when libasan is preloaded: inputs and outputs
# end exactly where the call may stop, and one element too far is a heap-buffer-overflow report.
# UBSan aborts on the first finding (-fno-sanitize-recover=undefined in the build).
# detect_leaks=0: bun does not free everything at exit, and LeakSanitizer would report that.
# TOPK_SIGMOID_EXPECT_SANITIZE=1 makes tests/abi.test.ts fail unless the sanitized library
# really is loaded and ASan really is catching overruns (it provokes one in a child process).
#
# Usage: tests/run_sanitized.sh [extra bun test arguments]   (exit status is bun test's)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bun=${BUN:-$root/node_modules/.bin/bun}
lib=lib/libtopk_sigmoid_host_sanitize.so

if [ ! -f "$lib" ]; then
  echo "run_sanitized: $lib is missing; build it with: bun run build --sanitize" >&2
  exit 2
fi
# the ASan runtime the library links against (ldd), else the compiler's
asan=$(ldd "$lib" 2>/dev/null | awk '/libasan\.so/ { print $3; exit }')
if [ -z "$asan" ] || [ ! -f "$asan" ]; then
  asan=$(${CXX:-g++} -print-file-name=libasan.so)
fi
if [ ! -f "$asan" ]; then
  echo "run_sanitized: cannot find libasan.so (install g++ / libasan)" >&2
  exit 2
fi

export LD_PRELOAD="$asan${LD_PRELOAD:+:$LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:detect_stack_use_after_return=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TOPK_SIGMOID_VARIANT=host_sanitize
export TOPK_SIGMOID_EXPECT_SANITIZE=1
unset TOPK_SIGMOID_LIB

echo "run_sanitized: $lib with LD_PRELOAD=$LD_PRELOAD"
exec "$bun" test tests/abi.test.ts tests/errors.test.ts tests/fuzz.test.ts tests/host_reference.test.ts "$@"
