// host_pool.h: a small persistent worker pool that splits row ranges across CPU threads.
#ifndef TOPK_SIGMOID_HOST_POOL_H
#define TOPK_SIGMOID_HOST_POOL_H

#include <cstdint>

// Runs body(begin, end) over [0, rows) in chunks, on the calling thread plus the pool's workers.
// Calls from several threads at once are serialised; small jobs run inline.
using ts_row_body = void (*)(void* context, int64_t begin, int64_t end);
void ts_parallel_rows(int64_t rows, int64_t work_per_row, ts_row_body body, void* context);

// 0 = one thread per online CPU. Takes effect on the next call.
void ts_set_host_threads(int32_t threads);

#endif
