// status.h: the thread-local last-error message and the shared argument validation.
// Host-side only; every entry point of every build goes through ts_validate_route first.
#ifndef TOPK_SIGMOID_STATUS_H
#define TOPK_SIGMOID_STATUS_H

#include "topk_sigmoid.h"

// Sets the thread's last-error message (printf format) and returns status.
ts_status ts_fail(ts_status status, const char* format, ...) __attribute__((format(printf, 2, 3)));
// Clears the last-error message and returns TS_OK.
ts_status ts_ok();

struct ts_route_args {
  const void* logits;
  int32_t dtype;
  int64_t tokens;
  int32_t experts;
  int64_t row_stride;
  const float* bias;
  int32_t bias_len;
  int32_t k;
  int32_t renormalize;
  float scale;
  float* weights;
  int32_t* indices;
  void* stream;
};

// Checks every argument before any memory is touched. `entry` names the caller in messages.
// Returns TS_OK (and sets *noop when tokens == 0) or a failure with its message set.
ts_status ts_validate_route(const ts_route_args& a, const char* entry, bool* noop);

// The host backend for any entry point (messages name `entry`): topk_sigmoid falls back to it.
ts_status ts_route_host(const ts_route_args& args, const char* entry);

int32_t ts_dtype_size(int32_t dtype);
const char* ts_dtype_name(int32_t dtype);

#endif
