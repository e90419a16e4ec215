#!/usr/bin/env bun
// examples/moe_layer.ts: embedding the router in your own Bun script. A tiny Mixture-of-Experts
// layer: a gate (a small matmul in JS) gives logits [tokens, experts], the router picks each
// token's top-k experts and weights, and the tokens are dispatched to small SiLU MLP experts.
//
// Two ways to call the router inside the loop:
//   - device: the logits live in a DeviceBuffer, routeDevice() writes device outputs on a Stream
//     (no allocation, no hidden copies; in a real model the gate GEMM would write the logits
//     there directly). Buffers are freed by `using` when the block ends.
//   - host:   route() with preallocated output arrays, reused every layer.
// With a GPU both run and must agree bit for bit; without one only the host path runs.
//
//   bun examples/moe_layer.ts
import { createRouter, DeviceBuffer, deviceCount, deviceInfo, type Router, Stream } from "../mod.ts";
import { normals } from "./lib/generate.ts";

const HIDDEN = 64;
const FFN = 128;
const EXPERTS = 32;
const TOPK = 4;
const TOKENS = 512;
const LAYERS = 4;

/** A seeded [rows, cols] matrix, scaled like a default nn.Linear init. */
function matrix(rows: number, cols: number, seed: number): Float32Array {
  const normal = normals(seed);
  const out = new Float32Array(rows * cols);
  const scale = 1 / Math.sqrt(rows);
  for (let i = 0; i < out.length; i++) out[i] = normal() * scale;
  return out;
}

/** out[T, N] = x[T, K] @ w[K, N] */
function matmul(x: Float32Array, w: Float32Array, tokens: number, k: number, n: number, out: Float32Array): void {
  out.fill(0, 0, tokens * n);
  for (let t = 0; t < tokens; t++)
    for (let i = 0; i < k; i++) {
      const xv = x[t * k + i] as number;
      if (xv === 0) continue;
      for (let j = 0; j < n; j++) out[t * n + j] = (out[t * n + j] as number) + xv * (w[i * n + j] as number);
    }
}

class TinyMoeLayer {
  readonly gate: Float32Array; // [HIDDEN, EXPERTS]
  readonly up: Float32Array[]; // per expert [HIDDEN, FFN]
  readonly down: Float32Array[]; // per expert [FFN, HIDDEN]

  constructor(seed: number) {
    this.gate = matrix(HIDDEN, EXPERTS, seed);
    this.up = Array.from({ length: EXPERTS }, (_, e) => matrix(HIDDEN, FFN, seed * 1000 + 2 * e + 1));
    this.down = Array.from({ length: EXPERTS }, (_, e) => matrix(FFN, HIDDEN, seed * 1000 + 2 * e + 2));
  }

  logits(x: Float32Array, out: Float32Array): void {
    matmul(x, this.gate, TOKENS, HIDDEN, EXPERTS, out);
  }

  /**
   * y = x + sum over each token's k experts of weight * expert(x). Tokens are grouped by expert
   * (a counting sort, like a GPU MoE's permute step) so each expert runs once on its batch.
   */
  dispatch(x: Float32Array, weights: Float32Array, indices: Int32Array): Float32Array {
    const count = new Int32Array(EXPERTS + 1);
    for (let i = 0; i < TOKENS * TOPK; i++)
      count[(indices[i] as number) + 1] = (count[(indices[i] as number) + 1] as number) + 1;
    for (let e = 0; e < EXPERTS; e++) count[e + 1] = (count[e + 1] as number) + (count[e] as number);
    const slots = new Int32Array(TOKENS * TOPK); // flat (token * TOPK + j) entries, grouped by expert
    const fill = count.slice(0, EXPERTS);
    for (let i = 0; i < TOKENS * TOPK; i++) {
      const e = indices[i] as number;
      slots[fill[e] as number] = i;
      fill[e] = (fill[e] as number) + 1;
    }
    const y = Float32Array.from(x);
    for (let e = 0; e < EXPERTS; e++) {
      const begin = count[e] as number;
      const rows = (count[e + 1] as number) - begin;
      if (rows === 0) continue;
      const batch = new Float32Array(rows * HIDDEN);
      for (let r = 0; r < rows; r++) {
        const token = Math.floor((slots[begin + r] as number) / TOPK);
        batch.set(x.subarray(token * HIDDEN, (token + 1) * HIDDEN), r * HIDDEN);
      }
      const hidden = new Float32Array(rows * FFN);
      matmul(batch, this.up[e] as Float32Array, rows, HIDDEN, FFN, hidden);
      for (let i = 0; i < hidden.length; i++) {
        const h = hidden[i] as number;
        hidden[i] = h / (1 + Math.exp(-h)); // SiLU
      }
      const out = new Float32Array(rows * HIDDEN);
      matmul(hidden, this.down[e] as Float32Array, rows, FFN, HIDDEN, out);
      for (let r = 0; r < rows; r++) {
        const slot = slots[begin + r] as number;
        const token = Math.floor(slot / TOPK);
        const w = weights[slot] as number;
        for (let j = 0; j < HIDDEN; j++)
          y[token * HIDDEN + j] = (y[token * HIDDEN + j] as number) + w * (out[r * HIDDEN + j] as number);
      }
    }
    return y;
  }
}

/** FNV-1a over the bytes of a Float32Array: equal checksums mean equal bits. */
function checksum(values: Float32Array): string {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}

function maxOverMean(indices: Int32Array): number {
  const load = new Int32Array(EXPERTS);
  for (const e of indices) load[e] = (load[e] as number) + 1;
  return Math.max(...load) / ((TOKENS * TOPK) / EXPERTS);
}

const layers = Array.from({ length: LAYERS }, (_, i) => new TinyMoeLayer(i + 1));
const input = matrix(TOKENS, HIDDEN, 99).map((v) => v * Math.sqrt(TOKENS)); // unit-variance tokens
const routerConfig = { experts: EXPERTS, topk: TOPK, renormalize: true } as const;

/** Host path: route() into preallocated outputs, reused for every layer. */
function forwardHost(): { out: Float32Array; balance: number[] } {
  using router = createRouter({ ...routerConfig, backend: "host" });
  const logits = new Float32Array(TOKENS * EXPERTS);
  const out = { weights: new Float32Array(TOKENS * TOPK), indices: new Int32Array(TOKENS * TOPK) };
  let x: Float32Array = input;
  const balance: number[] = [];
  for (const layer of layers) {
    layer.logits(x, logits);
    router.route(logits, { tokens: TOKENS, out });
    balance.push(maxOverMean(out.indices));
    x = layer.dispatch(x, out.weights, out.indices);
  }
  return { out: x, balance };
}

/**
 * Device path: logits and outputs stay in DeviceBuffers for the whole loop; routeDevice() runs
 * asynchronously on `stream`. Only the routing results come back to the host, because these
 * experts run in JS. Every `using` below frees its buffer (or stream) when the function returns,
 * also when it throws.
 */
function forwardDevice(router: Router): { out: Float32Array; freed: boolean } {
  using stream = Stream.create();
  using deviceLogits = DeviceBuffer.alloc(TOKENS * EXPERTS * 4);
  using deviceWeights = DeviceBuffer.alloc(TOKENS * TOPK * 4);
  using deviceIndices = DeviceBuffer.alloc(TOKENS * TOPK * 4);
  const logits = new Float32Array(TOKENS * EXPERTS);
  const weights = new Float32Array(TOKENS * TOPK);
  const indices = new Int32Array(TOKENS * TOPK);
  let x: Float32Array = input;
  for (const layer of layers) {
    layer.logits(x, logits);
    deviceLogits.upload(logits, stream); // a real model's gate GEMM writes here on the GPU
    router.routeDevice(deviceLogits, TOKENS, { weights: deviceWeights, indices: deviceIndices }, stream);
    deviceWeights.download(weights, stream); // returns when the copy is done
    deviceIndices.download(indices, stream);
    x = layer.dispatch(x, weights, indices);
  }
  // An explicit dispose() is fine too, and safe before `using` disposes again at the end.
  deviceLogits.dispose();
  return { out: x, freed: deviceLogits.disposed };
}

const host = forwardHost();
console.log(
  `tiny MoE: ${TOKENS} tokens, hidden ${HIDDEN}, ${EXPERTS} experts (SiLU MLP ${HIDDEN}->${FFN}->${HIDDEN}), top ${TOPK}, ${LAYERS} layers`,
);
console.log(
  `host   route(): checksum ${checksum(host.out)} · max/mean expert load per layer: ${host.balance.map((b) => b.toFixed(2)).join(", ")}`,
);

if (deviceCount() > 0) {
  using router = createRouter(routerConfig); // auto: the best kernel for this GPU
  const device = forwardDevice(router);
  const same = checksum(device.out) === checksum(host.out);
  console.log(
    `device routeDevice() on ${deviceInfo().name} (${router.backend}): checksum ${checksum(device.out)} · ` +
      `${same ? "identical to the host path" : "DIFFERS from the host path"} · buffers freed: ${device.freed}`,
  );
  if (!same) process.exitCode = 1;
} else {
  console.log("device path skipped: no GPU here (deviceCount() is 0); it runs where a GPU build sees a device");
}
