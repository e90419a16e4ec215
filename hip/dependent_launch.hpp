// dependent_launch.hpp: how every kernel of this library is launched, and the one thing each must
// do first. On NVIDIA sm_90+ a kernel may be launched as a programmatic dependent launch: the GPU
// starts it while the kernel before it in the stream is still running, its blocks become resident
// and run up to ts_await_prior_grid(), which returns once every earlier grid has finished and its
// writes are visible. The launch's own latency then hides behind the previous kernel (H200, graph
// replay of kernels that read a row and write k outputs: 0.98 -> 0.72 us per call; an empty kernel
// 0.51 -> 0.41), and so can the first row's trip from HBM: before the wait a small grid's kernel
// hints the L2 at it (ts_prefetch_row_l2; the same probe 0.87 -> 0.74 us at T=256 E=256, 0.66 ->
// 0.60 at T=1; the warp kernel's Small form asks by loads whose values it discards). Routing itself
// is unchanged, and so is what a caller sees: nothing routed is read, and nothing is written,
// before the wait.
#ifndef TOPK_SIGMOID_DEPENDENT_LAUNCH_HPP
#define TOPK_SIGMOID_DEPENDENT_LAUNCH_HPP

#include "gpu_compat.h"

// The first statement of every kernel after its ts_prefetch_row_l2 hint: no other global memory
// access (a read of the logits or bias that routing uses, a write of the outputs an earlier kernel
// may still read) before it. With early_dependents the next kernel in the stream may launch right
// after; otherwise it launches as this grid's blocks end (launch_split_shape says when). Either way
// it waits in its own ts_await_prior_grid() until this grid is done. A kernel launched without the
// attribute (HIP, sm_80, TOPK_SIGMOID_PDL=0) passes through at once.
__device__ __forceinline__ void ts_await_prior_grid(int early_dependents) {
#if defined(TS_PLATFORM_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (early_dependents) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#else
  (void)early_dependents;
#endif
}

// Before the wait, the one thing a kernel may do with global memory: ask the L2 for the row it
// will read first, [row, row + bytes), lane l of a group of `lanes` asking for every lanes-th
// 32-byte sector from its l-th (one instruction per lane up to 32 x 32 bytes; one bulk prefetch
// of the whole row from one lane measured slower in the library, H200, T=256 E512 k8 1.58
// against 1.55 us, and the same in the latency probe). A prefetch is a hint with no effect on what a load returns:
// it fills the L2 only (not this SM's L1), and the loads after the wait read through the L2, the
// device's point of coherence, so they see every write of the grids before (a grid still writing
// the row writes into the same L2 lines). What it buys: a kernel started early behind a running
// one (a small grid: ts_kernel_args::l2_hint) finds its rows in the L2 instead of waiting for HBM
// after the wait.
// With Load, each sector is asked for by a load instead, a volatile one (a relaxed system-scope
// read: never served from or kept in the SM's L1, not removed by the compiler) whose value no
// instruction reads, so it is as safe as the hint: racing a grid that still writes the row is
// not a data race, and nothing it returns is used. Unlike a hint, the L2 does not drop it: with
// the benchmark's 256 copies of E256 T=256 (32 MiB of rows, near the H100's 50 MB L2) hinted rows
// arrived late (1.63 us per call against 1.47 with all copies in the L2 or all in HBM, and 1.47
// with loads; H100, graph replay, bf16 k=8, BENCHMARKS.md 46), which is most likely hints the
// L2 let go (not measured directly). The warp kernel's Small form asks this way (no register
// bound there: in kernels held to 32-64 registers the loads spilled).
template <bool Load = false>
__device__ __forceinline__ void ts_prefetch_row_l2(const void* row, int64_t bytes, int lane, int lanes) {
#if defined(TS_PLATFORM_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const uintptr_t begin = reinterpret_cast<uintptr_t>(row);
  const uintptr_t end = begin + static_cast<uintptr_t>(bytes);
  for (uintptr_t at = (begin & ~static_cast<uintptr_t>(31)) + 32u * static_cast<unsigned>(lane); at < end;
       at += 32u * static_cast<unsigned>(lanes)) {
    if constexpr (Load) asm volatile("{ .reg .b32 t; ld.volatile.global.b32 t, [%0]; }" ::"l"(at));
    else asm volatile("prefetch.global.L2 [%0];" ::"l"(at));
  }
#else
  (void)row, (void)bytes, (void)lane, (void)lanes;
#endif
}

// A stream, and whether kernels launched into it may start before the previous kernel ends
// (DeviceArch::dependent_launch).
struct ts_launch_stream {
  hipStream_t handle;
  bool dependent;
};

// Launches kernel(args) on grid x block threads; a launch failure is left for hipGetLastError().
template <class Args>
void ts_launch(void (*kernel)(Args), unsigned grid, unsigned block, unsigned shared, const ts_launch_stream& stream,
               const Args& args) {
#if defined(TS_PLATFORM_CUDA)
  if (stream.dependent) {
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(grid);
    config.blockDim = dim3(block);
    config.dynamicSmemBytes = shared;
    config.stream = stream.handle;
    config.attrs = attribute;
    config.numAttrs = 1;
    (void)cudaLaunchKernelEx(&config, kernel, args);  // an error is also the runtime's last error
    return;
  }
#endif
  kernel<<<grid, block, shared, stream.handle>>>(args);
}

#endif  // TOPK_SIGMOID_DEPENDENT_LAUNCH_HPP
