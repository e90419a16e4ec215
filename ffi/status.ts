// ffi/status.ts: the status codes, dtypes and backend ids of hip/topk_sigmoid.h, mirrored for
// TypeScript. tests/abi.test.ts parses the header and fails if a value here drifts from it.

export const Status = {
  TS_OK: 0,
  TS_ERR_NULL_POINTER: 1,
  TS_ERR_INVALID_DTYPE: 2,
  TS_ERR_INVALID_EXPERTS: 3,
  TS_ERR_INVALID_K: 4,
  TS_ERR_INVALID_STRIDE: 5,
  TS_ERR_OVERFLOW: 6,
  TS_ERR_MISALIGNED: 7,
  TS_ERR_INVALID_BIAS: 8,
  TS_ERR_INVALID_ARGUMENT: 9,
  TS_ERR_NOT_BUILT: 20,
  TS_ERR_NO_DEVICE: 21,
  TS_ERR_WRONG_ARCH: 22,
  TS_ERR_UNSUPPORTED: 23,
  TS_ERR_INVALID_DEVICE: 24,
  TS_ERR_INVALID_POINTER: 25,
  TS_ERR_DEVICE_RUNTIME: 30,
  TS_ERR_OUT_OF_MEMORY: 31,
} as const;
export type StatusName = keyof typeof Status;

export const DtypeCode = { f32: 0, f16: 1, bf16: 2 } as const;
export const HeaderDtypes = { TS_DTYPE_F32: 0, TS_DTYPE_F16: 1, TS_DTYPE_BF16: 2 } as const;

export const BackendCode = { host: 0, warp: 1, gfx9: 2, ck: 3 } as const;
export const HeaderBackends = { TS_BACKEND_HOST: 0, TS_BACKEND_WARP: 1, TS_BACKEND_GFX9: 2, TS_BACKEND_CK: 3 } as const;
export type BackendName = keyof typeof BackendCode;
export const backendName = (code: number): BackendName => {
  const found = (Object.keys(BackendCode) as BackendName[]).find((name) => BackendCode[name] === code);
  if (!found) throw new RangeError(`unknown backend code ${code}`);
  return found;
};

export const BuildFlag = { TS_BUILD_HOST: 1, TS_BUILD_CUDA: 2, TS_BUILD_HIP: 4, TS_BUILD_SANITIZE: 8 } as const;
export const Vendor = { TS_VENDOR_NONE: 0, TS_VENDOR_NVIDIA: 1, TS_VENDOR_AMD: 2 } as const;

export const Limits = {
  TOPK_SIGMOID_ABI_VERSION: 2,
  TOPK_SIGMOID_MAX_K: 32,
  TOPK_SIGMOID_MAX_EXPERTS: 32768,
  TOPK_SIGMOID_MAX_EXPERTS_WARP: 1024,
} as const;
