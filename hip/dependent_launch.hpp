// dependent_launch.hpp: how every kernel of this library is launched, and the one thing each must
// do first. On NVIDIA sm_90+ a kernel may be launched as a programmatic dependent launch: the GPU
// starts it while the kernel before it in the stream is still running, its blocks become resident
// and run up to ts_await_prior_grid(), which returns once every earlier grid has finished and its
// writes are visible. The launch's own latency then hides behind the previous kernel (H200, graph
// replay of kernels that read a row and write k outputs: 0.98 -> 0.72 us per call; an empty kernel
// 0.51 -> 0.41). Routing itself is unchanged, and so is what a caller sees: nothing is read or
// written before the wait.
#ifndef TOPK_SIGMOID_DEPENDENT_LAUNCH_HPP
#define TOPK_SIGMOID_DEPENDENT_LAUNCH_HPP

#include "gpu_compat.h"

// The first statement of every kernel: no global memory access (a read of the logits or bias, a
// write of the outputs an earlier kernel may still read) before it. With early_dependents the
// next kernel in the stream may launch right after; otherwise it launches as this grid's blocks
// end (launch_split_shape says when). Either way it waits in its own ts_await_prior_grid() until
// this grid is done. A kernel launched without the attribute (HIP, sm_80, TOPK_SIGMOID_PDL=0)
// passes through at once.
__device__ __forceinline__ void ts_await_prior_grid(int early_dependents) {
#if defined(TS_PLATFORM_CUDA) && defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  if (early_dependents) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#else
  (void)early_dependents;
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
