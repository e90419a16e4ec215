// api/router.ts: the router. Created once from a zod-validated configuration; each route()
// runs a prepared buffer check (built here once) and one native call.
import type { Pointer } from "bun:ffi";
import { z } from "zod";
import { NoDeviceError, ValidationError } from "../ffi/errors.ts";
import { check, type NativeLibrary, native } from "../ffi/library.ts";
import { type BackendName, backendName, DtypeCode } from "../ffi/status.ts";
import type { RouteEntry } from "../ffi/symbols.ts";
import { type RouterConfig, type RouterConfigInput, RouterConfigSchema } from "./config.ts";
import { DeviceBuffer, type StreamLike, streamHandle } from "./device.ts";
import { dtypeBytes, type Logits } from "./dtype.ts";

/** Routing outputs for `tokens` tokens: row t holds entries [t*topk, (t+1)*topk), rank order. */
export interface RouteResult {
  /** fp32 weights, `tokens * topk`, rank order within each token (bias never included). */
  weights: Float32Array;
  /** Expert indices, `tokens * topk`, distinct within each token, in rank order. */
  indices: Int32Array;
  /** Tokens routed. */
  tokens: number;
  /** Experts per token. */
  topk: number;
  /** The kernel that ran. */
  backend: BackendName;
}

export interface RouteOptions {
  /** Token count; default logits.length / rowStride (which must then divide exactly). */
  tokens?: number;
  /** Preallocated outputs (at least tokens * topk elements each) to fill instead of allocating. */
  out?: { weights: Float32Array; indices: Int32Array };
}

/** Device buffers routeDevice() writes: each at least `tokens * topk * 4` bytes. */
export interface DeviceOutputs {
  /** fp32 weights, row-major [tokens, topk]. */
  weights: DeviceBuffer;
  /** int32 expert indices, row-major [tokens, topk]. */
  indices: DeviceBuffer;
}

const entryFor: Record<RouterConfig["backend"], RouteEntry> = {
  auto: "topk_sigmoid",
  host: "topk_sigmoid_host",
  warp: "topk_sigmoid_warp",
  gfx9: "topk_sigmoid_gfx9",
  ck: "topk_sigmoid_ck",
};

const formatIssues = (error: z.ZodError) =>
  error.issues.map((i) => `${i.path.length ? `${i.path.join(".")}: ` : ""}${i.message}`).join("; ");

/** Parses a router configuration; throws ValidationError listing every problem. */
export function parseRouterConfig(input: RouterConfigInput): RouterConfig {
  const parsed = RouterConfigSchema.safeParse(input);
  if (!parsed.success) throw new ValidationError(`invalid router config: ${formatIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * A configured router: the configuration is validated once here, the backend resolved and the
 * bias copied to the device when a GPU backend runs. Throws ValidationError for a bad
 * configuration, NotBuiltError / NoDeviceError / WrongArchError when an explicit backend cannot
 * run on this machine. Dispose it (or `using`) to free its device copies.
 */
export class Router {
  /** The validated configuration, defaults filled in. */
  readonly config: Readonly<RouterConfig>;
  /** The kernel this router runs: auto resolves to the device's best (host without a GPU). */
  readonly backend: BackendName;
  /** Elements between consecutive token rows (config.rowStride, default experts). */
  readonly rowStride: number;
  readonly #lib: NativeLibrary;
  readonly #entry: RouteEntry;
  readonly #dtype: number;
  readonly #logitsSchema: z.ZodType<Logits>;
  readonly #onDevice: boolean;
  #deviceBias: DeviceBuffer | undefined;
  #scratch: { logits?: DeviceBuffer; weights?: DeviceBuffer; indices?: DeviceBuffer } = {};

  constructor(input: RouterConfigInput) {
    const config = parseRouterConfig(input);
    this.config = config;
    this.rowStride = config.rowStride ?? config.experts;
    this.#lib = native();
    this.#entry = entryFor[config.backend];
    this.#dtype = DtypeCode[config.dtype];
    const kind = config.dtype === "f32" ? Float32Array : Uint16Array;
    const kindName = kind.name;
    this.#logitsSchema = z.custom<Logits>((v) => v instanceof kind, {
      message: `logits for dtype ${config.dtype} must be a ${kindName}${config.dtype === "f32" ? "" : " of raw bits (see toLogits)"}`,
    });
    if (config.backend === "auto") {
      const out = new Int32Array(1);
      check(this.#lib.symbols.topk_sigmoid_dispatch_backend(config.experts, out));
      this.backend = backendName(out[0] as number);
    } else {
      this.backend = config.backend;
      // A no-op call (0 tokens) reports whether this backend can run here: not built, no
      // device, wrong architecture.
      this.#call(null, 0, null, null, null, null);
    }
    this.#onDevice = this.backend !== "host";
    if (this.#onDevice && config.bias) this.#deviceBias = DeviceBuffer.from(config.bias);
  }

  /** Experts per token row (E). */
  get experts(): number {
    return this.config.experts;
  }
  /** Experts chosen per token (k). */
  get topk(): number {
    return this.config.topk;
  }

  #call(
    logits: Logits | Pointer | null,
    tokens: number,
    bias: Float32Array | Pointer | null,
    weights: Float32Array | Pointer | null,
    indices: Int32Array | Pointer | null,
    stream: Pointer | null,
  ): void {
    const c = this.config;
    const status = this.#lib.symbols[this.#entry](
      logits,
      this.#dtype,
      tokens,
      c.experts,
      this.rowStride,
      bias,
      bias === null ? 0 : c.experts,
      c.topk,
      c.renormalize ? 1 : 0,
      c.scale,
      weights,
      indices,
      stream,
    );
    check(status);
  }

  #tokensFor(logits: Logits, tokens: number | undefined): number {
    const parsed = this.#logitsSchema.safeParse(logits);
    if (!parsed.success) throw new ValidationError(formatIssues(parsed.error));
    const { experts } = this.config;
    const stride = this.rowStride;
    if (tokens === undefined) {
      if (logits.length % stride !== 0)
        throw new ValidationError(
          `logits has ${logits.length} elements, not a multiple of rowStride ${stride}; pass options.tokens`,
        );
      return logits.length / stride;
    }
    if (!Number.isSafeInteger(tokens) || tokens < 0)
      throw new ValidationError(`tokens must be a non-negative integer, got ${tokens}`);
    const needed = tokens === 0 ? 0 : (tokens - 1) * stride + experts;
    if (logits.length < needed)
      throw new ValidationError(
        `logits has ${logits.length} elements; ${tokens} tokens with rowStride ${stride} and ${experts} experts need ${needed}`,
      );
    return tokens;
  }

  /**
   * Routes host logits: returns each token's topk weights and expert indices. On a GPU backend
   * the logits are copied to the device and the results back (synchronous); scripts that keep
   * data on the GPU use routeDevice().
   */
  route(logits: Logits, options: RouteOptions = {}): RouteResult {
    const tokens = this.#tokensFor(logits, options.tokens);
    const k = this.config.topk;
    const count = tokens * k;
    let weights: Float32Array;
    let indices: Int32Array;
    if (options.out) {
      ({ weights, indices } = options.out);
      if (!(weights instanceof Float32Array) || !(indices instanceof Int32Array))
        throw new ValidationError("out.weights must be a Float32Array and out.indices an Int32Array");
      if (weights.length < count || indices.length < count)
        throw new ValidationError(
          `out buffers hold ${weights.length} weights and ${indices.length} indices; ${tokens} tokens x topk ${k} need ${count} each`,
        );
    } else {
      weights = new Float32Array(count);
      indices = new Int32Array(count);
    }
    if (tokens > 0) {
      if (this.#onDevice) this.#routeThroughDevice(logits, tokens, weights, indices);
      else this.#call(logits, tokens, this.config.bias ?? null, weights, indices, null);
    }
    return { weights, indices, tokens, topk: k, backend: this.backend };
  }

  #grow(name: "logits" | "weights" | "indices", bytes: number): DeviceBuffer {
    const current = this.#scratch[name];
    if (current && current.bytes >= bytes) return current;
    current?.dispose();
    const fresh = DeviceBuffer.alloc(bytes);
    this.#scratch[name] = fresh;
    return fresh;
  }

  #routeThroughDevice(logits: Logits, tokens: number, weights: Float32Array, indices: Int32Array): void {
    const outBytes = tokens * this.config.topk * 4;
    const dLogits = this.#grow("logits", logits.byteLength);
    const dWeights = this.#grow("weights", outBytes);
    const dIndices = this.#grow("indices", outBytes);
    dLogits.upload(logits);
    this.#call(dLogits.pointer, tokens, this.#deviceBias?.pointer ?? null, dWeights.pointer, dIndices.pointer, null);
    dWeights.download(weights.subarray(0, tokens * this.config.topk));
    dIndices.download(indices.subarray(0, tokens * this.config.topk));
  }

  /**
   * Routes logits already on the device into device outputs, asynchronously on `stream`
   * (default stream when omitted): no copies, no synchronization, safe inside graph capture.
   */
  routeDevice(logits: DeviceBuffer, tokens: number, out: DeviceOutputs, stream?: StreamLike): void {
    if (!this.#onDevice)
      throw new NoDeviceError(
        "routeDevice needs a GPU backend; this router runs on the host (no GPU, or backend: 'host'): use route()",
      );
    const { experts, topk } = this.config;
    const needed = tokens === 0 ? 0 : ((tokens - 1) * this.rowStride + experts) * dtypeBytes(this.config.dtype);
    if (!Number.isSafeInteger(tokens) || tokens < 0)
      throw new ValidationError(`tokens must be a non-negative integer, got ${tokens}`);
    if (logits.bytes < needed)
      throw new ValidationError(`logits DeviceBuffer has ${logits.bytes} bytes; ${tokens} tokens need ${needed}`);
    const outBytes = tokens * topk * 4;
    if (out.weights.bytes < outBytes || out.indices.bytes < outBytes)
      throw new ValidationError(
        `output DeviceBuffers hold ${out.weights.bytes} and ${out.indices.bytes} bytes; ${tokens} x ${topk} outputs need ${outBytes} each`,
      );
    this.#call(
      logits.pointer,
      tokens,
      this.#deviceBias?.pointer ?? null,
      out.weights.pointer,
      out.indices.pointer,
      streamHandle(stream),
    );
  }

  /** Frees the router's device copies (bias, scratch). */
  dispose(): void {
    this.#deviceBias?.dispose();
    this.#deviceBias = undefined;
    for (const b of Object.values(this.#scratch)) b?.dispose();
    this.#scratch = {};
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Creates a router from a configuration (validated with zod; throws ValidationError). */
export function createRouter(config: RouterConfigInput): Router {
  return new Router(config);
}
