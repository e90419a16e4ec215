// bench/lib/gpu.ts: times this project's kernels with device events.
//   graph: R router.routeDevice calls (rotating inputs) captured into one Graph; the graph is
//          replayed warmup times, then `repeats` replays are enqueued back to back with an event
//          between each (the GPU never idles, so a replay's host launch cost is hidden); each
//          sample = event gap / R.
//   b2b:   the same R calls as plain launches between two events (host launch cost shows when it
//          exceeds the kernel time: what a caller without graphs gets).
//   wall:  the host backend, router.route() on host arrays, performance.now.
import {
  createRouter,
  DeviceBuffer,
  DeviceEvent,
  type Dtype,
  Graph,
  type Logits,
  launchEmptyKernel,
  type Router,
  Stream,
} from "../../mod.ts";
import { makeBias, makeLogits } from "../../tests/gpu_cases.ts";
import type { BenchOptions } from "./options.ts";
import { type Config, configKey, inputBytes, type KernelBackend, type Mode, outputBytes } from "./plan.ts";
import type { Measurement } from "./results.ts";
import { callsFor, estimateUs, slotsFor, workingSetBytes } from "./rotation.ts";
import { median } from "./util.ts";

/** Rows of random logits generated per (E, dtype); longer inputs repeat them (the GPU cannot tell). */
export const BASE_ROWS = 1024;
const ROW_STEP = 131; // slot j starts at base row (j * ROW_STEP) % BASE_ROWS: different data per slot

const allocSize = (bytes: number) => 2 ** Math.ceil(Math.log2(Math.max(4096, bytes)));

/** Host logits: a random base block per (E, dtype), tiled to any length. */
export class HostInputs {
  readonly #seed: number;
  readonly #base = new Map<string, Logits>();
  #tiled: { key: string; rows: number; data: Logits } | undefined;

  constructor(seed: number) {
    this.#seed = seed;
  }

  base(experts: number, dtype: Dtype): Logits {
    const key = `${experts}-${dtype}`;
    let b = this.#base.get(key);
    if (!b) {
      b = makeLogits(this.#seed * 7919 + experts, BASE_ROWS, experts, experts, dtype);
      this.#base.set(key, b);
    }
    return b;
  }

  /** At least `rows` rows of [*, E] logits, periodic with period BASE_ROWS. */
  tiled(experts: number, dtype: Dtype, rows: number): Logits {
    const key = `${experts}-${dtype}`;
    if (this.#tiled && this.#tiled.key === key && this.#tiled.rows >= rows) return this.#tiled.data;
    const base = this.base(experts, dtype);
    const n = rows * experts;
    const data = base instanceof Float32Array ? new Float32Array(n) : new Uint16Array(n);
    const bytes = new Uint8Array(data.buffer);
    const baseBytes = new Uint8Array(base.buffer, base.byteOffset, base.byteLength);
    for (let at = 0; at < bytes.length; at += baseBytes.length)
      bytes.set(baseBytes.subarray(0, Math.min(baseBytes.length, bytes.length - at)), at);
    this.#tiled = { key, rows, data };
    return data;
  }

  /** Slot j's logits for T tokens (a view; rows start at a slot-specific offset). */
  slotView(experts: number, dtype: Dtype, tokens: number, slot: number): Logits {
    const all = this.tiled(experts, dtype, Math.max(tokens, 1) + BASE_ROWS);
    const start = ((slot * ROW_STEP) % BASE_ROWS) * experts;
    return all.subarray(start, start + tokens * experts);
  }

  /** Drops the big tiled array (before handing the machine to the PyTorch peer). */
  release(): void {
    this.#tiled = undefined;
  }
}

/** One configuration's rotating copy: its logits and its own outputs (views into the arenas). */
interface Slot {
  logits: DeviceBuffer;
  weights: DeviceBuffer;
  indices: DeviceBuffer;
}

/** A configuration made ready on the device: its rotating slots and the calls per sample. */
export interface Prepared {
  config: Config;
  slots: number;
  calls: number;
  workingSetBytes: number;
  bias: Float32Array | undefined;
}

/** Copies start on 256-byte boundaries, as separate device allocations would. */
const COPY_ALIGN = 256;
const alignUp = (bytes: number) => Math.ceil(bytes / COPY_ALIGN) * COPY_ALIGN;

/** One device allocation that a configuration's copies are packed into from its start; grows, never shrinks. */
class Arena {
  #buffer: DeviceBuffer | undefined;

  /** The allocation, at least `bytes` long; `fresh` when it was (re)allocated, so its content is gone. */
  reserve(bytes: number): { buffer: DeviceBuffer; fresh: boolean } {
    if (this.#buffer && this.#buffer.bytes >= bytes) return { buffer: this.#buffer, fresh: false };
    this.#buffer?.dispose();
    this.#buffer = DeviceBuffer.alloc(allocSize(bytes));
    return { buffer: this.#buffer, fresh: true };
  }

  dispose(): void {
    this.#buffer?.dispose();
    this.#buffer = undefined;
  }
}

/** The views `count` copies of `bytes` each, packed from the start of `arena`. */
function packedViews(arena: DeviceBuffer, count: number, bytes: number): DeviceBuffer[] {
  const base = Number(arena.pointer);
  return Array.from({ length: count }, (_, j) => DeviceBuffer.wrap(base + j * alignUp(bytes), bytes));
}

export class GpuRunner {
  readonly stream: Stream;
  readonly #o: BenchOptions;
  readonly #inputs: HostInputs;
  readonly #events: DeviceEvent[] = [];
  // Every configuration's copies are packed one after another into these three allocations
  // (logits, weights, indices), so a configuration's memory layout does not depend on what ran
  // before it. Pooled buffers of power-of-two sizes, reused across configurations, measured up to
  // 0.1 us more per call at T=256 than packed copies (BENCHMARKS.md, Method).
  readonly #logitsArena = new Arena();
  readonly #weightsArena = new Arena();
  readonly #indicesArena = new Arena();
  #slots: Slot[] = [];
  /** What the logits arena holds: `${E}-${dtype}-${T}-${slots}`, or "" after a reallocation. */
  #content = "";

  constructor(options: BenchOptions, inputs: HostInputs) {
    this.#o = options;
    this.#inputs = inputs;
    this.stream = Stream.create();
    for (let i = 0; i <= Math.max(options.repeats, 1); i++) this.#events.push(DeviceEvent.create());
  }

  /** Lays out and uploads the config's rotating inputs (unless the arena holds them already) and sizes R. */
  prepare(c: Config): Prepared {
    const slots = slotsFor(c, this.#o);
    const calls = callsFor(slots, estimateUs(c, "ours"), this.#o);
    const inBytes = Math.max(inputBytes(c), 2);
    const outBytes = Math.max(outputBytes(c), 4);
    const logits = this.#logitsArena.reserve(slots * alignUp(inBytes));
    const weights = this.#weightsArena.reserve(slots * alignUp(outBytes)).buffer;
    const indices = this.#indicesArena.reserve(slots * alignUp(outBytes)).buffer;
    const logitViews = packedViews(logits.buffer, slots, inBytes);
    const weightViews = packedViews(weights, slots, outBytes);
    const indexViews = packedViews(indices, slots, outBytes);
    this.#slots = logitViews.map((l, j) => ({
      logits: l,
      weights: weightViews[j] as DeviceBuffer,
      indices: indexViews[j] as DeviceBuffer,
    }));
    const content = `${c.experts}-${c.dtype}-${c.tokens}-${slots}`;
    if (logits.fresh || this.#content !== content) {
      for (const [j, view] of logitViews.entries()) view.upload(this.#inputs.slotView(c.experts, c.dtype, c.tokens, j));
      this.#content = content;
    }
    const bias = c.bias ? makeBias(this.#o.seed, c.experts) : undefined;
    return { config: c, slots, calls, workingSetBytes: workingSetBytes(c, slots), bias };
  }

  #slot(j: number): Slot {
    const s = this.#slots[j];
    if (!s) throw new Error(`bench: slot ${j} is not prepared`);
    return s;
  }

  /** Per-call microseconds of each sample: graph of `calls` bodies, replayed back to back. */
  timeGraph(calls: number, body: (i: number) => void): number[] {
    const { warmup, repeats } = this.#o;
    const graph = Graph.capture(this.stream, () => {
      for (let i = 0; i < calls; i++) body(i);
    });
    try {
      for (let w = 0; w < Math.max(1, warmup); w++) graph.launch(this.stream);
      return this.#timed(repeats, calls, () => graph.launch(this.stream));
    } finally {
      graph.dispose();
    }
  }

  /** Per-call microseconds of each sample: `calls` plain launches between events. */
  timeBackToBack(calls: number, body: (i: number) => void): number[] {
    const batch = () => {
      for (let i = 0; i < calls; i++) body(i);
    };
    for (let w = 0; w < Math.max(1, this.#o.warmup); w++) batch();
    return this.#timed(this.#o.repeats, calls, batch);
  }

  /** e0, work, e1, work, ..., eN on one stream, one synchronize; samples = gaps / calls. */
  #timed(repeats: number, calls: number, work: () => void): number[] {
    const ev = this.#events;
    ev[0]?.record(this.stream);
    for (let r = 0; r < repeats; r++) {
      work();
      ev[r + 1]?.record(this.stream);
    }
    this.stream.synchronize();
    const samples: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const a = ev[r] as DeviceEvent;
      const b = ev[r + 1] as DeviceEvent;
      samples.push((b.elapsedSince(a) * 1000) / calls);
    }
    return samples;
  }

  /** The launch floor: an empty one-block kernel, N per graph, and N back to back. */
  launchFloor(perSample = 200): { graph: number[]; b2b: number[] } {
    const body = () => launchEmptyKernel(this.stream);
    return { graph: this.timeGraph(perSample, body), b2b: this.timeBackToBack(perSample, body) };
  }

  /** Creates the router for a backend; throws what createRouter throws (e.g. wrong arch). */
  router(p: Prepared, backend: KernelBackend): Router {
    const c = p.config;
    return createRouter({
      experts: c.experts,
      topk: c.topk,
      dtype: c.dtype,
      bias: p.bias,
      renormalize: c.renormalize,
      scale: c.scale,
      backend,
    });
  }

  /** Times one backend in one mode on a prepared config. Never throws: failures become `error`. */
  measure(p: Prepared, backend: KernelBackend, seriesName: KernelBackend, mode: "graph" | "b2b"): Measurement {
    const c = p.config;
    const base = {
      key: configKey(c),
      config: c,
      series: seriesName,
      mode: mode as Mode,
      callsPerSample: p.calls,
      slots: p.slots,
      workingSetBytes: p.workingSetBytes,
    };
    let router: Router | undefined;
    try {
      router = this.router(p, backend);
      const r = router;
      const slots = Array.from({ length: p.slots }, (_, j) => this.#slot(j));
      const body = (i: number) => {
        const s = slots[i % slots.length] as (typeof slots)[number];
        r.routeDevice(s.logits, c.tokens, s, this.stream);
      };
      const samples = mode === "graph" ? this.timeGraph(p.calls, body) : this.timeBackToBack(p.calls, body);
      return { ...base, us: median(samples), samplesUs: samples, ...(backend === "auto" ? { ran: r.backend } : {}) };
    } catch (e) {
      // A failed capture can leave the stream in a bad state: wait for it and go on.
      try {
        this.stream.synchronize();
      } catch {}
      return { ...base, us: Number.NaN, samplesUs: [], error: `${(e as Error).name}: ${(e as Error).message}` };
    } finally {
      router?.dispose();
    }
  }

  dispose(): void {
    this.#slots = [];
    this.#logitsArena.dispose();
    this.#weightsArena.dispose();
    this.#indicesArena.dispose();
    for (const e of this.#events) e.dispose();
    this.stream.dispose();
  }
}

/** The host backend, wall clock: router.route() on host arrays (T rows), batches of calls. */
export function measureHost(c: Config, inputs: HostInputs, o: BenchOptions): Measurement {
  const base = {
    key: configKey(c),
    config: c,
    series: "host" as const,
    mode: "wall" as const,
    slots: 1,
    workingSetBytes: inputBytes(c) + outputBytes(c),
  };
  let router: Router | undefined;
  try {
    router = createRouter({
      experts: c.experts,
      topk: c.topk,
      dtype: c.dtype,
      bias: c.bias ? makeBias(o.seed, c.experts) : undefined,
      renormalize: c.renormalize,
      scale: c.scale,
      backend: "host",
    });
    const logits = inputs.slotView(c.experts, c.dtype, c.tokens, 0);
    const out = { weights: new Float32Array(c.tokens * c.topk), indices: new Int32Array(c.tokens * c.topk) };
    const r = router;
    const call = () => r.route(logits, { tokens: c.tokens, out });
    // Size a batch to about 2 ms from one timed call.
    const t0 = performance.now();
    call();
    const one = Math.max(performance.now() - t0, 0.0005);
    const batch = Math.max(1, Math.min(100000, Math.ceil(2 / one)));
    for (let w = 0; w < Math.max(1, o.warmup); w++) for (let i = 0; i < batch; i++) call();
    const samples: number[] = [];
    for (let rep = 0; rep < o.repeats; rep++) {
      const s = performance.now();
      for (let i = 0; i < batch; i++) call();
      samples.push(((performance.now() - s) * 1000) / batch);
    }
    return { ...base, us: median(samples), samplesUs: samples, callsPerSample: batch };
  } catch (e) {
    return {
      ...base,
      us: Number.NaN,
      samplesUs: [],
      callsPerSample: 0,
      error: `${(e as Error).name}: ${(e as Error).message}`,
    };
  } finally {
    router?.dispose();
  }
}
