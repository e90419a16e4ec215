// tests/dtype_checks_main.cuh: the main of the exhaustive checks run once per 16-bit dtype
// (split_keys_check.cu, split_bias_key_check.cu): a managed failure counter, the check for bf16
// then fp16, and one JSON line, {<fields>, "bf16": {...}, "f16": {...}, "total_failures": N}, whose
// middle each check prints. Exit 0 only with no failure, 2 without a CUDA device.
#ifndef TOPK_SIGMOID_TESTS_DTYPE_CHECKS_MAIN_CUH
#define TOPK_SIGMOID_TESTS_DTYPE_CHECKS_MAIN_CUH

#include <cstdio>
#include <type_traits>

#include "topk_sigmoid.h"

// check(std::integral_constant<int, Dtype>, name, bad) runs one dtype's check, prints its part
// of the line (led by ", " for the second) and returns its failures.
template <class Check>
int ts_dtype_checks_main(const char* fields, const Check& check) {
  unsigned long long* bad;
  if (cudaMallocManaged(&bad, sizeof *bad) != cudaSuccess) {
    std::printf("{\"error\": \"no CUDA device\"}\n");
    return 2;
  }
  std::printf("{%s, ", fields);
  const unsigned long long f = check(std::integral_constant<int, TS_DTYPE_BF16>{}, "bf16", bad) +
                               check(std::integral_constant<int, TS_DTYPE_F16>{}, "f16", bad);
  std::printf(", \"total_failures\": %llu}\n", f);
  return f == 0 ? 0 : 1;
}

#endif  // TOPK_SIGMOID_TESTS_DTYPE_CHECKS_MAIN_CUH
