/*
 * topk_sigmoid.h: the plain C ABI of the topk-sigmoid library.
 *
 * This header is the single source of truth. ffi/symbols.ts (the bun:ffi symbol table) and
 * ffi/status.ts (status codes) are checked against it by tests/abi.test.ts, which parses the
 * lines marked below; keep one declaration per line in the "TS_EXPORT" form.
 *
 * Every function returns a ts_status. On failure it writes nothing to its outputs and leaves a
 * readable message in a thread-local buffer, read with topk_sigmoid_last_error().
 *
 * Routing semantics (every backend, bit for bit): see README.md "Semantics".
 */
#ifndef TOPK_SIGMOID_H
#define TOPK_SIGMOID_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TS_EXPORT __declspec(dllexport)
#else
#define TS_EXPORT __attribute__((visibility("default")))
#endif

/* Bumped whenever a signature, a struct layout or a code below changes meaning. */
#define TOPK_SIGMOID_ABI_VERSION 2

/* Limits shared by every backend. */
#define TOPK_SIGMOID_MAX_K 32
#define TOPK_SIGMOID_MAX_EXPERTS 32768     /* 15-bit expert index inside packed keys */
#define TOPK_SIGMOID_MAX_EXPERTS_WARP 1024 /* register-resident fast paths (warp, gfx9) */

/* ts_status: the codes every entry point returns. */
typedef int32_t ts_status;
#define TS_OK 0
#define TS_ERR_NULL_POINTER 1      /* a required pointer is NULL */
#define TS_ERR_INVALID_DTYPE 2     /* dtype is not one of TS_DTYPE_* */
#define TS_ERR_INVALID_EXPERTS 3   /* experts outside 1..TOPK_SIGMOID_MAX_EXPERTS */
#define TS_ERR_INVALID_K 4         /* k outside 1..min(experts, TOPK_SIGMOID_MAX_K) */
#define TS_ERR_INVALID_STRIDE 5    /* row stride < experts */
#define TS_ERR_OVERFLOW 6          /* tokens * row_stride (in bytes) or the outputs' size overflows */
#define TS_ERR_MISALIGNED 7        /* a pointer is not aligned to its element type */
#define TS_ERR_INVALID_BIAS 8      /* bias length differs from experts, or bias given with length 0 */
#define TS_ERR_INVALID_ARGUMENT 9  /* any other bad argument (tokens < 0, non-finite scale, overlapping outputs, ...) */
#define TS_ERR_NOT_BUILT 20        /* this library was built without the toolchain this needs */
#define TS_ERR_NO_DEVICE 21        /* built with a GPU toolchain, but no usable device */
#define TS_ERR_WRONG_ARCH 22       /* the device's architecture cannot run this kernel */
#define TS_ERR_UNSUPPORTED 23      /* valid arguments this particular kernel does not cover */
#define TS_ERR_INVALID_DEVICE 24   /* device ordinal that does not exist */
#define TS_ERR_INVALID_POINTER 25  /* a pointer the device cannot address (e.g. pageable host memory) */
#define TS_ERR_DEVICE_RUNTIME 30   /* the GPU runtime reported an error (launch, copy, sync) */
#define TS_ERR_OUT_OF_MEMORY 31    /* allocation failed */

/* Input element types. */
#define TS_DTYPE_F32 0
#define TS_DTYPE_F16 1
#define TS_DTYPE_BF16 2

/* Backend identifiers (topk_sigmoid_dispatch_backend, ts_device_info.dispatch_backend). */
#define TS_BACKEND_HOST 0
#define TS_BACKEND_WARP 1 /* register-resident warp kernel, warp-shuffle / redux cross-lane policy */
#define TS_BACKEND_GFX9 2 /* the same kernel with the AMD DPP cross-lane policy, wave64 */
#define TS_BACKEND_CK 3   /* generic block-per-token fallback kernel */

/* Build flags (topk_sigmoid_build_flags). */
#define TS_BUILD_HOST 1
#define TS_BUILD_CUDA 2
#define TS_BUILD_HIP 4
#define TS_BUILD_SANITIZE 8

/* Vendor of a device. */
#define TS_VENDOR_NONE 0
#define TS_VENDOR_NVIDIA 1
#define TS_VENDOR_AMD 2

/* Layout is fixed: 8-byte aligned fields first, no implicit padding (api/device.ts reads it). */
typedef struct ts_device_info {
  int64_t total_memory;     /* bytes */
  int32_t ordinal;
  int32_t vendor;           /* TS_VENDOR_* */
  int32_t major;            /* compute capability (NVIDIA) or gfx major (AMD) */
  int32_t minor;
  int32_t multiprocessors;
  int32_t warp_size;
  int32_t dispatch_backend; /* TS_BACKEND_* that topk_sigmoid picks here for E <= 1024 */
  int32_t l2_cache_bytes;
  int32_t dependent_launch; /* 1: kernels start before the previous kernel in their stream ends (NVIDIA sm_90+,
                               programmatic dependent launch; TOPK_SIGMOID_PDL=0 turns it off) */
  int32_t runtime_version;  /* cudaRuntimeGetVersion / hipRuntimeGetVersion, e.g. 13000 */
  char name[256];
  char arch[64];            /* "sm_90", "gfx942", ... */
} ts_device_info;

/*
 * The routing entry points share one signature.
 *   logits      [tokens, row_stride] elements of dtype; row t starts at logits + t * row_stride
 *   bias        NULL, or bias_len == experts fp32 correction biases (added to the score for
 *               ranking only)
 *   weights     [tokens, k] fp32 out, rank order; indices [tokens, k] int32 out
 *   renormalize non-zero: divide the k weights by their rank-order sum (if non-zero)
 *   scale       finite; multiplies the final weights
 *   tokens      >= 0; with tokens == 0 the call does nothing and the pointers may be NULL
 *   stream      GPU entry points: a hipStream_t / cudaStream_t, or NULL for the default
 *               stream of the current device; the call is asynchronous on it, allocates
 *               nothing and never synchronizes (safe inside stream capture).
 *               topk_sigmoid_host: ignored. Pointers for GPU entry points are device memory.
 * topk_sigmoid dispatches: warp (NVIDIA) or gfx9 (AMD gfx9) for experts <= 1024, ck beyond,
 * host when the library has no GPU toolchain or there is no device.
 */
TS_EXPORT ts_status topk_sigmoid(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int64_t row_stride, const float* bias, int32_t bias_len, int32_t k, int32_t renormalize, float scale, float* weights, int32_t* indices, void* stream);
TS_EXPORT ts_status topk_sigmoid_warp(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int64_t row_stride, const float* bias, int32_t bias_len, int32_t k, int32_t renormalize, float scale, float* weights, int32_t* indices, void* stream);
TS_EXPORT ts_status topk_sigmoid_gfx9(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int64_t row_stride, const float* bias, int32_t bias_len, int32_t k, int32_t renormalize, float scale, float* weights, int32_t* indices, void* stream);
TS_EXPORT ts_status topk_sigmoid_ck(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int64_t row_stride, const float* bias, int32_t bias_len, int32_t k, int32_t renormalize, float scale, float* weights, int32_t* indices, void* stream);
TS_EXPORT ts_status topk_sigmoid_host(const void* logits, int32_t dtype, int64_t tokens, int32_t experts, int64_t row_stride, const float* bias, int32_t bias_len, int32_t k, int32_t renormalize, float scale, float* weights, int32_t* indices, void* stream);

/* Which backend topk_sigmoid runs for this expert count on the current device (TS_BACKEND_*). */
TS_EXPORT ts_status topk_sigmoid_dispatch_backend(int32_t experts, int32_t* backend);

/* Library and error information. */
TS_EXPORT int32_t topk_sigmoid_abi_version(void);
TS_EXPORT int32_t topk_sigmoid_build_flags(void);
TS_EXPORT const char* topk_sigmoid_last_error(void);
TS_EXPORT const char* topk_sigmoid_status_name(ts_status status);
/* Host backend worker threads (0 = one per online CPU, the default). */
TS_EXPORT ts_status topk_sigmoid_host_set_threads(int32_t threads);

/* Devices. device_count is 0 (TS_OK) when built without a GPU toolchain or none is present. */
TS_EXPORT ts_status topk_sigmoid_device_count(int32_t* count);
TS_EXPORT ts_status topk_sigmoid_set_device(int32_t ordinal);
TS_EXPORT ts_status topk_sigmoid_get_device(int32_t* ordinal);
TS_EXPORT ts_status topk_sigmoid_device_info(int32_t ordinal, ts_device_info* info);

/* Device memory on the current device. Copies are synchronous with respect to the host. */
TS_EXPORT ts_status topk_sigmoid_malloc(void** ptr, uint64_t bytes);
TS_EXPORT ts_status topk_sigmoid_free(void* ptr);
TS_EXPORT ts_status topk_sigmoid_copy_to_device(void* dst, const void* src, uint64_t bytes, void* stream);
TS_EXPORT ts_status topk_sigmoid_copy_to_host(void* dst, const void* src, uint64_t bytes, void* stream);
TS_EXPORT ts_status topk_sigmoid_memset(void* dst, int32_t byte_value, uint64_t bytes, void* stream);
/* Device-to-device copy, asynchronous on the stream (for benchmarks: the copy-bandwidth floor). */
TS_EXPORT ts_status topk_sigmoid_copy_device(void* dst, const void* src, uint64_t bytes, void* stream);

/* Streams, events and graphs (for pipelines and device-event timing). */
TS_EXPORT ts_status topk_sigmoid_stream_create(void** stream);
TS_EXPORT ts_status topk_sigmoid_stream_destroy(void* stream);
TS_EXPORT ts_status topk_sigmoid_stream_synchronize(void* stream);
TS_EXPORT ts_status topk_sigmoid_event_create(void** event);
TS_EXPORT ts_status topk_sigmoid_event_destroy(void* event);
TS_EXPORT ts_status topk_sigmoid_event_record(void* event, void* stream);
TS_EXPORT ts_status topk_sigmoid_event_elapsed_ms(void* start, void* end, float* ms);
TS_EXPORT ts_status topk_sigmoid_graph_begin_capture(void* stream);
TS_EXPORT ts_status topk_sigmoid_graph_end_capture(void* stream, void** graph_exec);
TS_EXPORT ts_status topk_sigmoid_graph_launch(void* graph_exec, void* stream);
TS_EXPORT ts_status topk_sigmoid_graph_destroy(void* graph_exec);
/* An empty one-block kernel: the launch floor for benchmarks. */
TS_EXPORT ts_status topk_sigmoid_empty_kernel(void* stream);

#ifdef __cplusplus
}
#endif

#endif /* TOPK_SIGMOID_H */
