// bench/graph_timing.cuh: how the CUDA probes in bench/ time their kernels, the way bench/run.ts
// times the library's: `calls` launches captured into one CUDA graph, 3 untimed replays, then 15
// replays between two events; the median of those 15, per launch, in microseconds.
#ifndef TOPK_SIGMOID_BENCH_GRAPH_TIMING_CUH
#define TOPK_SIGMOID_BENCH_GRAPH_TIMING_CUH

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

// launch_one(i) issues launch i (0 <= i < calls) into `stream`.
template <class LaunchOne>
float graph_median_us(cudaStream_t stream, int calls, LaunchOne launch_one) {
  cudaEvent_t start, end;
  cudaEventCreate(&start);
  cudaEventCreate(&end);
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal);
  for (int i = 0; i < calls; ++i) launch_one(i);
  cudaStreamEndCapture(stream, &graph);
  cudaGraphInstantiate(&exec, graph, 0);
  for (int i = 0; i < 3; ++i) cudaGraphLaunch(exec, stream);
  std::vector<float> us;
  for (int r = 0; r < 15; ++r) {
    cudaEventRecord(start, stream);
    cudaGraphLaunch(exec, stream);
    cudaEventRecord(end, stream);
    cudaEventSynchronize(end);
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, start, end);
    us.push_back(ms * 1000.0f / static_cast<float>(calls));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaEventDestroy(start);
  cudaEventDestroy(end);
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

#endif  // TOPK_SIGMOID_BENCH_GRAPH_TIMING_CUH
