// tests/gpu.test.ts: every GPU backend must return the host backend's bytes exactly, over the
// grid of issue #3. Runs where the loaded library sees a GPU; skips (and says so) elsewhere.

import { dlopen, ptr } from "bun:ffi";
import { describe, expect, test } from "bun:test";
import { tmpdir } from "node:os";
import { HostInputs } from "../bench/lib/gpu.ts";
import { symbols } from "../ffi/symbols.ts";
import {
  type BackendChoice,
  createRouter,
  DeviceBuffer,
  type Dtype,
  deviceCount,
  deviceInfo,
  Graph,
  InvalidDeviceError,
  type Logits,
  libraryInfo,
  type Router,
  type RouterConfigInput,
  Stream,
  setDevice,
  synchronize,
  toLogits,
} from "../mod.ts";
import { firstDifference, makeBias, makeBiasNearTies, makeLogits, makeLogits16Adversarial, rng } from "./gpu_cases.ts";

const gpus = deviceCount();
const info = gpus > 0 ? deviceInfo(0) : undefined;
const gpuDescribe = gpus > 0 ? describe : describe.skip;
if (gpus === 0) console.log(`gpu.test.ts: skipped, no GPU visible to ${libraryInfo().path}`);
else console.log(`gpu.test.ts: ${info?.name} (${info?.arch}), ${libraryInfo().path}`);

const warpExperts = [1, 2, 3, 8, 16, 32, 60, 64, 72, 96, 128, 160, 192, 256, 288, 320, 384, 448, 512, 640, 768, 1024];
const ckOnlyExperts = [2048, 4096, 16384];
const ks = [1, 2, 4, 6, 8, 10, 16, 32];
const dtypeList: Dtype[] = ["f32", "f16", "bf16"];
const elemBytes = (d: Dtype) => (d === "f32" ? 4 : 2);

const deviceBackends = (experts: number): BackendChoice[] => {
  const list: BackendChoice[] = ["ck", "auto"];
  if (experts <= 1024) list.push(info?.vendor === "amd" && info.arch.startsWith("gfx9") ? "gfx9" : "warp");
  return list;
};

interface Case {
  experts: number;
  k: number;
  tokens: number;
  dtype: Dtype;
  bias: boolean;
  renormalize: boolean;
  stride: number;
  seed: number;
}

const describeCase = (c: Case) =>
  `E=${c.experts} k=${c.k} T=${c.tokens} ${c.dtype} bias=${c.bias} renorm=${c.renormalize} stride=${c.stride} seed=${c.seed}`;

function runOnDevice(router: Router, logits: Logits, tokens: number): { weights: Float32Array; indices: Int32Array } {
  const outBytes = Math.max(4, tokens * router.topk * 4);
  using dLogits = DeviceBuffer.from(logits);
  using dWeights = DeviceBuffer.alloc(outBytes);
  using dIndices = DeviceBuffer.alloc(outBytes);
  dWeights.fill(0xff); // poison: NaN weights, index -1: unwritten outputs cannot pass
  dIndices.fill(0xff);
  router.routeDevice(dLogits, tokens, { weights: dWeights, indices: dIndices });
  synchronize();
  return {
    weights: dWeights.download(new Float32Array(tokens * router.topk)),
    indices: dIndices.download(new Int32Array(tokens * router.topk)),
  };
}

/** Routes one case on the host and on every device backend; returns the first mismatch or undefined. */
function checkCase(c: Case): string | undefined {
  const logits = makeLogits(c.seed, c.tokens, c.experts, c.stride, c.dtype);
  const bias = c.bias ? makeBias(c.seed, c.experts) : undefined;
  const base = {
    experts: c.experts,
    topk: c.k,
    dtype: c.dtype,
    bias,
    renormalize: c.renormalize,
    scale: c.renormalize ? 2.5 : 1,
    rowStride: c.stride,
  };
  using host = createRouter({ ...base, backend: "host" });
  const expected = host.route(logits, { tokens: c.tokens });
  for (const backend of deviceBackends(c.experts)) {
    using router = createRouter({ ...base, backend });
    const got = runOnDevice(router, logits, c.tokens);
    const diff = firstDifference(c.k, got, expected);
    if (diff) return `${backend} (${router.backend}) ${describeCase(c)}: ${diff}`;
  }
  return undefined;
}

/** Routes raw logits (built bit by bit, so not through checkCase) on the host and on `warp` and
 * `auto`; returns the first mismatch or undefined. */
function warpAndAutoDifference(
  base: RouterConfigInput & { experts: number; topk: number; dtype: Dtype; rowStride: number },
  logits: Logits,
  tokens: number,
): string | undefined {
  using host = createRouter({ ...base, backend: "host" });
  const expected = host.route(logits, { tokens });
  for (const backend of ["warp", "auto"] as const) {
    using router = createRouter({ ...base, backend });
    const diff = firstDifference(base.topk, runOnDevice(router, logits, tokens), expected);
    if (diff) return `${backend} E=${base.experts} k=${base.topk} ${base.dtype} stride=${base.rowStride}: ${diff}`;
  }
  return undefined;
}

/**
 * Routes bf16 rows (case i = 1, 2, ...: the benchmark's rows of seed + i, k = 8, renormalized,
 * scale 1.5, the benchmark's bias where asked) on `auto` into outputs placed 4 bytes off 8-byte
 * alignment (the weights, the indices, then both, the indices 12 bytes in) and compares them with
 * the host's. The first difference, or undefined.
 */
function offsetOutputsDifference(
  seed: number,
  cases: { experts: number; tokens: number; bias: boolean }[],
): string | undefined {
  let i = 0;
  for (const { experts, tokens, bias } of cases) {
    i++;
    const logits = makeLogits(seed + i, tokens, experts, experts, "bf16");
    const base = {
      experts,
      topk: 8,
      dtype: "bf16" as const,
      renormalize: true,
      scale: 1.5,
      ...(bias ? { bias: makeBias(seed + i, experts) } : {}),
    };
    using host = createRouter({ ...base, backend: "host" });
    const expected = host.route(logits, { tokens });
    using router = createRouter(base);
    const outBytes = tokens * 8 * 4;
    using dLogits = DeviceBuffer.from(logits);
    using weightsRoom = DeviceBuffer.alloc(outBytes + 16);
    using indicesRoom = DeviceBuffer.alloc(outBytes + 16);
    for (const [weightsOff, indicesOff] of [
      [4, 0],
      [0, 4],
      [4, 12],
    ] as const) {
      weightsRoom.fill(0xff); // poison: NaN weights, index -1: unwritten outputs cannot pass
      indicesRoom.fill(0xff);
      using weights = DeviceBuffer.wrap(Number(weightsRoom.pointer) + weightsOff, outBytes);
      using indices = DeviceBuffer.wrap(Number(indicesRoom.pointer) + indicesOff, outBytes);
      router.routeDevice(dLogits, tokens, { weights, indices });
      synchronize();
      const got = {
        weights: weights.download(new Float32Array(tokens * 8)),
        indices: indices.download(new Int32Array(tokens * 8)),
      };
      const diff = firstDifference(8, got, expected);
      if (diff) return `${router.backend} E=${experts} T=${tokens} offsets ${weightsOff}/${indicesOff}: ${diff}`;
    }
  }
  return undefined;
}

/** The bias kinds of the split bias kernel's tests (splitBiasCase); "huge" only in its own test. */
const splitBiasKinds = ["benchmark", "large", "near-ties", "special"] as const;
type SplitBiasKind = (typeof splitBiasKinds)[number] | "huge";

/**
 * 16-bit rows [tokens, stride] and a bias for the split bias kernel's tests (case `seed`): the
 * benchmark's bias over adversarial rows (even seeds) or the benchmark's rows (odd); the same
 * scaled up ("large": the fixed point's scale follows the largest |b|, one expert in seven at
 * 3e4 times); or near-tie rows and biases, with special values ("special") or without. "huge":
 * one expert in seven at 2^20 to 2^20 + 6e5 in magnitude, distinct, the rest scaled as in "large"
 * (the fixed point's scale 1: scale / 2 is not an integer, hip/kernel_split_bias.hpp's margins).
 */
function splitBiasCase(
  seed: number,
  tokens: number,
  experts: number,
  stride: number,
  dtype: "bf16" | "f16",
  kind: SplitBiasKind,
): { logits: Uint16Array; bias: Float32Array } {
  if (kind === "near-ties" || kind === "special") {
    const made = makeBiasNearTies(seed, tokens, experts, stride, dtype, kind === "special");
    return { logits: made.logits as Uint16Array, bias: made.bias };
  }
  const logits =
    seed % 2 === 0
      ? makeLogits16Adversarial(seed, tokens, experts, stride, dtype)
      : (makeLogits(seed, tokens, experts, stride, dtype) as Uint16Array);
  const bias = makeBias(seed, experts);
  if (kind === "large") for (let e = 0; e < experts; e++) bias[e] = (bias[e] as number) * (e % 7 === 0 ? 3e4 : 40);
  if (kind === "huge") {
    for (let e = 0; e < experts; e++) {
      const b = bias[e] as number; // in [-0.3, 0.3)
      bias[e] = e % 7 === 0 ? (e % 2 === 0 ? 1 : -1) * (2 ** 20 + (b + 0.3) * 1e6) : b * 40;
    }
  }
  return { logits, bias };
}

/**
 * The split bias kernel's cases over tokens x experts(tokens) x kinds (splitBiasKinds unless
 * given; case i = 1, 2, ...): splitBiasCase(seed + i), both dtypes for every E and bias kind, k =
 * k(i), rows padded by pad(i) elements (16-byte rows kept), renormalize except every fourth, scale
 * 2.5; `warp` and `auto` against the host. The first difference, or undefined.
 */
function splitBiasSweep(o: {
  tokens: number[];
  experts: (tokens: number) => number[];
  seed: number;
  k: (i: number) => number;
  pad: (i: number) => number;
  kinds?: readonly SplitBiasKind[];
}): string | undefined {
  let i = 0;
  for (const tokens of o.tokens) {
    for (const experts of o.experts(tokens)) {
      for (const biasKind of o.kinds ?? splitBiasKinds) {
        i++;
        const dtype: "bf16" | "f16" = (i + (i >> 2)) % 2 === 0 ? "bf16" : "f16";
        const stride = experts + o.pad(i);
        const { logits, bias } = splitBiasCase(o.seed + i, tokens, experts, stride, dtype, biasKind);
        const base = { experts, topk: o.k(i), dtype, bias, renormalize: i % 4 !== 1, scale: 2.5, rowStride: stride };
        const diff = warpAndAutoDifference(base, logits, tokens);
        if (diff) return diff;
      }
    }
  }
  return undefined;
}

/**
 * 16-bit rows without bias over tokens x experts x {bf16, f16} (case i = 1, 2, ...): adversarial
 * rows for even i, the benchmark's for odd, k = ks[i % 8], rows padded by pad(i) elements (16-byte
 * rows kept), `warp` and `auto` against the host. The first difference, or undefined.
 */
function noBias16Sweep(o: {
  tokens: number[];
  experts: number[];
  seed: number;
  ks: number[];
  pad: (i: number) => number;
  renormalize: (i: number) => boolean;
  scale: number;
}): string | undefined {
  let i = 0;
  for (const tokens of o.tokens) {
    for (const experts of o.experts) {
      for (const dtype of ["bf16", "f16"] as const) {
        i++;
        const stride = experts + o.pad(i);
        const logits =
          i % 2 === 0
            ? makeLogits16Adversarial(o.seed + i, tokens, experts, stride, dtype)
            : (makeLogits(o.seed + i, tokens, experts, stride, dtype) as Uint16Array);
        const topk = o.ks[i % 8] as number;
        const base = { experts, topk, dtype, renormalize: o.renormalize(i), scale: o.scale, rowStride: stride };
        const diff = warpAndAutoDifference(base, logits, tokens);
        if (diff) return diff;
      }
    }
  }
  return undefined;
}

gpuDescribe("GPU backends are byte-identical to the host backend", () => {
  for (const [ei, experts] of warpExperts.entries()) {
    test(`E=${experts}: every k, dtype, T in {1,7,256,4097}, bias and renormalize mixed, strided rows`, () => {
      let i = 0;
      let checked = 0;
      for (const k of ks.filter((k) => k <= experts)) {
        for (const dtype of dtypeList) {
          i++;
          const tokens = [1, 7, 256, 4097][(i + ei) % 4] as number;
          // Every third case pads rows so they are not 16-byte multiples (the scalar-load path).
          const pad = (i + ei) % 3 === 0 ? 3 : (i + ei) % 3 === 1 ? 16 / elemBytes(dtype) : 0;
          const c: Case = {
            experts,
            k,
            tokens,
            dtype,
            bias: ((i + ei) & 2) !== 0,
            renormalize: ((i + ei) & 1) !== 0,
            stride: experts + pad,
            seed: experts * 1000 + i,
          };
          expect(checkCase(c)).toBeUndefined();
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
    }, 120_000);
  }

  test("T = 65536 for every E of the warp grid (k = 8 or E), dtypes rotating, bias on half", () => {
    for (const [ei, experts] of warpExperts.entries()) {
      const c: Case = {
        experts,
        k: Math.min(8, experts),
        tokens: 65536,
        dtype: dtypeList[ei % 3] as Dtype,
        bias: ei % 2 === 1,
        renormalize: true,
        stride: experts,
        seed: 77 + ei,
      };
      expect(checkCase(c)).toBeUndefined();
    }
  }, 300_000);

  // The warp kernel's Small form (whole warps without bias, up to 8 tokens per SM:
  // kSmallFormTokensPerSm in hip/device_backend.hip) stores each token right after its rounds
  // (ts_weighted_rounds); its batch-size limit depends on the device's SM count, so the batches
  // are sized from it: at the limit, one token past it, and half of it.
  test("the Small form up to its batch-size limit (8 tokens per SM): whole-warp E, k 1-8, dtypes", () => {
    const sms = info?.multiprocessors ?? 1;
    let i = 0;
    for (const experts of [160, 256, 384, 512, 1024]) {
      for (const k of [1, 2, 3, 4, 6, 8]) {
        i++;
        const c: Case = {
          experts,
          k,
          tokens: [sms * 8, sms * 8 + 1, sms * 4 + 1][i % 3] as number,
          dtype: dtypeList[i % 3] as Dtype,
          bias: false,
          renormalize: i % 4 !== 0,
          stride: experts + (i % 5 === 0 ? 8 : 0),
          seed: 900 + i,
        };
        expect(checkCase(c)).toBeUndefined();
      }
    }
  }, 300_000);

  // Rows of E <= 8 take one lane per token on NVIDIA (hip/kernel_lane.hpp): the lane sorts the
  // whole row and writes all k outputs, with 16-byte loads only for rows of whole vectors and
  // 16-byte stores only for k = 4 and 8. Every E and k, every dtype, with and without bias, rows
  // padded or not, batches from one token to more than the grid's first pass.
  test("E <= 8 (one lane per token): every E and k, dtype, bias, stride, ties, NaN and saturation", () => {
    let i = 0;
    for (let experts = 1; experts <= 8; experts++) {
      for (let k = 1; k <= experts; k++) {
        for (const dtype of dtypeList) {
          i++;
          const pad = i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : 16 / elemBytes(dtype);
          const c: Case = {
            experts,
            k,
            tokens: [1, 33, 4097, 70001][i % 4] as number,
            dtype,
            bias: i % 2 === 0,
            renormalize: i % 5 !== 0,
            stride: experts + pad,
            seed: 4000 + i,
          };
          expect(checkCase(c)).toBeUndefined();
        }
      }
    }
    // 16-bit rows of 8 built bit by bit: the top value repeated, subnormals and zeros of both
    // signs, NaNs of both signs, infinities.
    for (const dtype of ["bf16", "f16"] as const) {
      for (const k of [1, 3, 4, 8]) {
        for (const stride of [8, 16]) {
          const logits = makeLogits16Adversarial(4500 + k + stride, 5000, 8, stride, dtype);
          const base = { experts: 8, topk: k, dtype, renormalize: k !== 3, scale: 1.5, rowStride: stride };
          expect(warpAndAutoDifference(base, logits, 5000)).toBeUndefined();
        }
      }
    }
  }, 300_000);

  test("large batches with small k (several tokens per group, short lane lists verified)", () => {
    let i = 0;
    for (const experts of [160, 256, 320, 512, 1024]) {
      for (const k of [1, 2, 5]) {
        i++;
        const c: Case = {
          experts,
          k,
          tokens: 20000,
          dtype: dtypeList[i % 3] as Dtype,
          bias: i % 2 === 0,
          renormalize: true,
          stride: experts,
          seed: 500 + i,
        };
        expect(checkCase(c)).toBeUndefined();
      }
    }
  }, 300_000);

  // The warp kernel's verified fast path (hip/kernel_warp.hpp) runs for 16-bit logits without
  // bias, k <= 8, whole-warp groups, once a batch lets each group route several tokens
  // (T >= 2 * 64 * multiprocessors); on 16-byte rows of E <= 512 the vector select kernel takes
  // those batches, so E > 512 here. It ranks on cheap keys that are exact only for positive
  // winners and trusts a check, so the rows here aim at that check.
  test("large 16-bit batches without bias (the verified fast path): adversarial rows, k <= 8", () => {
    const tokens = 4 * 64 * (info?.multiprocessors ?? 132) + 37;
    let i = 0;
    for (const experts of [520, 640, 768, 896, 1024]) {
      for (const dtype of ["bf16", "f16"] as const) {
        i++;
        const k = [1, 2, 3, 4, 5, 6, 7, 8][i % 8] as number;
        const stride = experts + (i % 3 === 0 ? 8 : 0); // still 16-byte rows
        const logits = makeLogits16Adversarial(900 + i, tokens, experts, stride, dtype);
        const base = { experts, topk: k, dtype, renormalize: i % 2 === 0, scale: 1.5, rowStride: stride };
        expect(warpAndAutoDifference(base, logits, tokens)).toBeUndefined();
      }
    }
  }, 300_000);

  // The split kernel (hip/kernel_split.hpp, NVIDIA) routes 16-bit batches without bias, k <= 8,
  // E = 65..256 on 16-byte rows, from 24 tokens per SM (E <= 128) or 6 (E <= 256; k <= 3 only
  // below 64 per SM) up to the vector select kernel's 64 per SM: both shapes here, rows that fill
  // every lane (E = 128, 256) and rows that leave vectors empty, padded strides, every k.
  test("split kernel (E 72-256, 16-bit, no bias): both shapes, adversarial and benchmark rows, every k", () => {
    const sms = info?.multiprocessors ?? 132;
    const sweep = {
      tokens: [30 * sms + 5, 60 * sms + 7],
      experts: [72, 120, 128, 136, 200, 256],
      seed: 1300,
      ks: [8, 4, 6, 1, 7, 5, 2, 3],
      pad: (i: number) => (i % 3 === 0 ? 16 : 0),
      renormalize: (i: number) => i % 4 !== 1,
      scale: 2.5,
    };
    expect(noBias16Sweep(sweep)).toBeUndefined();
  }, 300_000);

  // The vector select kernel (hip/kernel_vector_select.hpp, NVIDIA) routes 16-bit batches
  // without bias, k <= 8, E = 65..512 on 16-byte rows from 64 tokens per SM (E > 256: 30): each
  // vector's maximum (NaN-ignoring bf16x2 / f16x2 max) picks the 8 vectors that hold the best 8,
  // whose exact keys are then sorted. The rows it must not get wrong: the best value repeated
  // across vectors (the lower vector must win), few levels (ties at the 8th place in many
  // vectors), subnormals and zeros of both signs on top, NaNs (all-NaN vectors, all-NaN rows),
  // infinities; every shape (4 lanes x 4, 8, 12, 16 vectors at 256 tokens per SM; for E > 256 8
  // lanes x 6, 8 at 48, where E <= 256 takes the split kernel), rows that leave lanes' vectors
  // empty, padded strides.
  test("vector select kernel (E 72-512, 16-bit, no bias): adversarial and benchmark rows, every k", () => {
    const sms = info?.multiprocessors ?? 132;
    const sweep = {
      tokens: [48 * sms + 3, 256 * sms + 29],
      experts: [72, 120, 128, 136, 200, 256, 264, 320, 384, 392, 448, 512],
      seed: 1700,
      ks: [8, 3, 5, 1, 7, 6, 2, 4],
      pad: (i: number) => (i % 3 === 1 ? 24 : 0),
      renormalize: (i: number) => i % 4 !== 3,
      scale: 1.25,
    };
    expect(noBias16Sweep(sweep)).toBeUndefined();
  }, 300_000);

  // The thread select kernel (hip/kernel_thread_select.hpp, NVIDIA) routes the same batches from
  // 384 tokens per SM at E = 65..120: one thread per token, the vector selection with its ranked
  // merges, and a renormalisation that divides without the IEEE division's branch only where that
  // gives the same bits (ts_division_in_range). The adversarial and benchmark rows at E of its
  // range (9, 11 and 15 vectors of the 16 it has room for) and at its edge (E = 128, the vector
  // select kernel), padded rows, every k (k = 8: 16-byte stores); then rows of logits from -95
  // to -35, whose weights lie below 2^-60 on some rows (the IEEE division's path) and above it
  // on others.
  test("thread select kernel (E 72-120, 16-bit, no bias): adversarial rows, tiny weights, every k", () => {
    const sms = info?.multiprocessors ?? 132;
    const tokens = 384 * sms + 19;
    const sweep = {
      tokens: [tokens],
      experts: [72, 88, 120, 128],
      seed: 2300,
      ks: [8, 3, 5, 1, 7, 6, 2, 4],
      pad: (i: number) => (i % 3 === 1 ? 8 : 0),
      renormalize: (i: number) => i % 4 !== 3,
      scale: 1.25,
    };
    expect(noBias16Sweep(sweep)).toBeUndefined();
    const random = rng(2377);
    for (const [i, dtype] of (["bf16", "f16"] as const).entries()) {
      const experts = 120;
      const values = new Float32Array(tokens * experts);
      for (let t = 0; t < tokens; t++) {
        const top = -35 - (t % 61); // the row's largest logit
        for (let e = 0; e < experts; e++) values[t * experts + e] = top - 20 * random();
      }
      const base = { experts, topk: 8 - 3 * i, dtype, renormalize: true, scale: 0.5, rowStride: experts };
      expect(warpAndAutoDifference(base, toLogits(values, dtype), tokens)).toBeUndefined();
    }
  }, 300_000);

  // The staged thread select kernel (hip/kernel_thread_staged.hpp, NVIDIA sm_80+) routes E = 128
  // and 256 from 480 tokens per SM: the block copies its rows into shared memory (cp.async, one
  // mbarrier per tile of 32 rows, vector places swizzled) and each thread routes one token from
  // there, or at E = 128 in a last tile of at most 16 tokens each pair of lanes, a last tile of
  // fewer taking tokens from the tile before it until it has 16 (both batches below have one: 1
  // and 9 tokens on a card of 132 SMs, so the tile before keeps 17 and 25); at E = 256 the
  // block's tile 7 reuses the slot of tile 0. Both grid forms at E = 128:
  // the SMs' resident blocks sharing the batch (a last tile part-filled), and blocks of 256 tokens
  // beyond what those hold (E = 256 takes the vector select kernel there); padded rows, k = 8
  // (16-byte stores) and k < 8, adversarial and benchmark rows.
  test("staged thread select kernel (E 128 and 256, 16-bit, no bias): both grid forms, adversarial rows", () => {
    const sms = info?.multiprocessors ?? 132;
    const sweep = {
      tokens: [480 * sms + 19, 600 * sms + 5],
      experts: [128, 256],
      seed: 2500,
      ks: [8, 8, 6, 8, 1, 7, 2, 3],
      pad: (i: number) => (i % 3 === 1 ? 8 : 0),
      renormalize: (i: number) => i % 4 !== 2,
      scale: 2.5,
    };
    expect(noBias16Sweep(sweep)).toBeUndefined();
  }, 300_000);

  // The kernels without bias that finish a token after its selection (staged, thread select,
  // vector select, split) and the split bias kernel's winners look their weights up in a table
  // generated at build time (hip/weight_table.hpp). Here every 16-bit value is one of some row's
  // eight winners (row t holds values 8t .. 8t + 7 in eight different slots, the rest of the row
  // NaN, which ranks last; with a bias of 0 the same eight win), both dtypes, with the weights as
  // looked up and renormalised. The kernel named is the one the dispatch takes on a card of 132 SMs.
  test("weight table: every 16-bit value a winner (staged, thread select, vector select, split, split bias)", () => {
    const sms = info?.multiprocessors ?? 132;
    const large = Math.max(480 * sms + 11, 8192);
    const cases = [
      { experts: 128, tokens: large, bias: false }, // staged
      { experts: 96, tokens: large, bias: false }, // thread select
      { experts: 256, tokens: large, bias: false }, // staged (E 256)
      { experts: 384, tokens: large, bias: false }, // vector select
      { experts: 128, tokens: Math.max(63 * sms, 8192), bias: false }, // split (4 lanes)
      { experts: 128, tokens: large, bias: true }, // split bias (Hint form)
      { experts: 384, tokens: large, bias: true }, // split bias (vector selection, Hint form)
    ];
    for (const { experts, tokens, bias } of cases) {
      const width = experts / 8;
      for (const dtype of ["bf16", "f16"] as const) {
        const logits = new Uint16Array(tokens * experts).fill(dtype === "bf16" ? 0x7fc0 : 0x7e00);
        for (let t = 0; t < tokens; t++)
          for (let j = 0; j < 8; j++)
            logits[t * experts + j * width + ((5 * t + 3 * j) % width)] = (8 * t + j) & 0xffff;
        for (const renormalize of [false, true]) {
          const base = {
            experts,
            topk: 8,
            dtype,
            renormalize,
            scale: 1,
            rowStride: experts,
            ...(bias ? { bias: new Float32Array(experts) } : {}),
          };
          expect(warpAndAutoDifference(base, logits, tokens)).toBeUndefined();
        }
      }
    }
  }, 600_000);

  // With a bias the same large batches rank on a cheap score first and compute exact scores only
  // for the candidates near the k-th (hip/bias_prefilter.hpp, NVIDIA); its result must still be
  // the host's bytes, on rows and biases built to sit within a few ulps of the k-th place. From
  // 128 tokens per SM the 16-bit batches take the split bias kernel (below), so every E runs at
  // 100 tokens per SM, under its threshold (ts_split_bias_pays), on the prefilter, and at 256 on
  // the split bias kernel.
  test("large batches with a bias (the prefilter): near-ties, ulp-apart and special biases, k <= 8", () => {
    const sms = info?.multiprocessors ?? 132;
    let i = 0;
    for (const experts of [72, 128, 200, 256, 320, 384, 448, 512]) {
      for (const tokens of [100 * sms + 7, 256 * sms + 37])
        for (const dtype of dtypeList) {
          i++;
          const k = [1, 2, 3, 4, 5, 6, 7, 8][(i * 3) % 8] as number;
          const stride = experts + (i % 3 === 0 ? 8 : 0);
          const { logits, bias } = makeBiasNearTies(1300 + i, tokens, experts, stride, dtype, i % 4 === 0);
          const base = { experts, topk: k, dtype, bias, renormalize: i % 2 === 0, scale: 1.5, rowStride: stride };
          expect(warpAndAutoDifference(base, logits, tokens)).toBeUndefined();
        }
    }
  }, 300_000);

  // With a bias, 16-bit batches of E = 65..512 and k <= 8 from 128 tokens per SM take the split
  // bias kernel (hip/kernel_split_bias.hpp, NVIDIA): cheap fixed-point keys through the split
  // kernel's networks (E <= 128) or the vector selection (E > 128), exact values for the winners,
  // for a token with a near-tie at the k-th place exact values for its band, an exact
  // recomputation for warps with a band past its list or a non-finite bias. Every shape, rows with
  // empty vectors, padded strides, every k; biases of the benchmark, large ones (the fixed point's
  // scale follows the largest |b|), near-ties, and non-finite ones.
  test("split bias kernel (E 72-512, 16-bit): every shape, benchmark / large / near-tie / special biases, every k", () => {
    const sms = info?.multiprocessors ?? 132;
    const diff = splitBiasSweep({
      tokens: [130 * sms + 5, 260 * sms + 3],
      experts: (tokens) =>
        tokens < 200 * sms ? [72, 120, 128, 136, 200, 256, 320, 384, 448, 512] : [72, 128, 136, 256],
      seed: 1500,
      k: (i) => [8, 4, 6, 1, 7, 5, 2, 3][i % 8] as number,
      pad: (i) => (i % 3 === 0 ? 16 : 0),
    });
    expect(diff).toBeUndefined();
  }, 600_000);

  // The k = 8 kernels of the vector selection (E = 129..512), which the sweep above reaches only
  // with non-finite biases (the exact recomputation), over every bias kind: near-tie rows fail the
  // check often (a quarter of them or more) and take their bands in place, several in one warp
  // and in most blocks; the benchmark's rows rarely.
  test("split bias kernel, k 8 with the vector selection (E 136-512): every bias kind, near-tie rows", () => {
    const sms = info?.multiprocessors ?? 132;
    const diff = splitBiasSweep({
      tokens: [256 * sms + 9, 320 * sms + 3],
      experts: () => [136, 256, 384, 512],
      seed: 2100,
      k: () => 8,
      pad: (i) => (i % 3 === 0 ? 8 : 0),
    });
    expect(diff).toBeUndefined();
  }, 600_000);

  // With a bias, E = 65..384 and k = 8 from 384 tokens per SM, as a dependent launch (sm_90), take
  // the split bias kernel's Hint form (hip/device_backend.hip, ts_split_bias_hint_pays): the L2
  // hint at each group's first row before the wait, the next kernel let in at once, and each
  // group's next row asked of the L2 during a token (E = 200: a row shorter than its shape, whose
  // lines past the row are not asked for). Batches of 384 and 496 tokens per SM (the benchmark's
  // T=65536), every bias kind, both dtypes, padded strides; k = 4 at the same sizes keeps the plain
  // form.
  test("split bias kernel, Hint form (E 72-384, k 8, from 384 tokens per SM): every bias kind", () => {
    const sms = info?.multiprocessors ?? 132;
    const diff = splitBiasSweep({
      tokens: [384 * sms + 3, 496 * sms + 17],
      experts: () => [72, 120, 128, 200, 384],
      seed: 1900,
      k: (i) => (i % 6 === 5 ? 4 : 8),
      pad: (i) => (i % 3 === 0 ? 8 : 0),
    });
    expect(diff).toBeUndefined();
  }, 600_000);

  // The benchmark's own rows and bias (bench/lib/gpu.ts: 1024 base rows tiled; makeBias), bf16
  // k = 8 at 496 tokens per SM (its T=65536 on 132 SMs), E 256-512, seeds 1 and 4. Each seed has
  // one base row at E512 whose band's ninth key lies in a vector outside the chosen 8, and near-miss
  // rows at every E (bench/near_tie_rows.ts): the 4 x 128 shape's lean band, whose check keeps the
  // vector at the floor for the band (hip/kernel_split_bias.hpp, kLeanBand), and the walks that stop
  // below the floor. The sweeps above reach these paths by chance; these rows by construction.
  test("split bias kernel: the benchmark's rows and bias, seeds 1 and 4 (band rows at E512)", () => {
    const tokens = 496 * (info?.multiprocessors ?? 132);
    for (const seed of [1, 4]) {
      const inputs = new HostInputs(seed);
      for (const experts of [256, 384, 512]) {
        const logits = inputs.tiled(experts, "bf16", tokens).subarray(0, tokens * experts);
        const base = { experts, topk: 8, dtype: "bf16" as const, bias: makeBias(seed, experts), rowStride: experts };
        expect(warpAndAutoDifference({ ...base, renormalize: true, scale: 2.5 }, logits, tokens)).toBeUndefined();
      }
    }
  }, 600_000);

  // Biases of 2^20 and more (one expert in seven, distinct): the fixed point's scale is 1, so the
  // vector selection's table (b * scale - C) + scale / 2 rounds, and its select margin and D take
  // half a unit more (hip/kernel_split_bias.hpp). Where the huge positive biases (experts e with
  // e % 14 = 0) hold all k top places, from E = 128 at every k and at E = 72 up to k = 6, those
  // lie far apart, so tokens keep the cheap path and the margins decide; elsewhere the check fails
  // and the exact paths run. Every shape, every k.
  test("split bias kernel: biases of 2^20 and more (scale / 2 not an integer), every shape, every k", () => {
    const sms = info?.multiprocessors ?? 132;
    const diff = splitBiasSweep({
      tokens: [130 * sms + 5, 384 * sms + 1],
      experts: () => [72, 128, 136, 200, 256, 320, 384, 448, 512],
      seed: 2700,
      k: (i) => [8, 1, 5, 3, 8, 2, 7, 4][i % 8] as number,
      pad: (i) => (i % 3 === 0 ? 8 : 0),
      kinds: ["huge"],
    });
    expect(diff).toBeUndefined();
  }, 600_000);

  // Winners that are NaNs after numbers: rows with fewer numbers than k (about 0 to 9 of them, the
  // rest NaN, positive and negative), whose top k end in NaNs by index. The split bias kernel takes a
  // pair of winners whose second is a NaN as ordered without exact keys (hip/kernel_split_bias.hpp,
  // the order check); every shape, both 16-bit dtypes, k = 8 and 5.
  test("split bias kernel: rows with fewer numbers than k, the rest NaN", () => {
    const tokens = 256 * (info?.multiprocessors ?? 132) + 3;
    let i = 0;
    for (const experts of [72, 128, 200, 256, 384, 512])
      for (const dtype of ["bf16", "f16"] as const)
        for (const k of [8, 5]) {
          i++;
          const logits = makeLogits16Adversarial(2600 + i, tokens, experts, experts, dtype);
          const r = rng(2700 + i);
          const nan = dtype === "bf16" ? 0x7fc0 : 0x7e00;
          for (let t = 0; t < tokens; t++) {
            const numbers = Math.floor(r() * 10);
            for (let e = 0; e < experts; e++)
              if (r() * experts >= numbers) logits[t * experts + e] = (r() < 0.5 ? 0x8000 : 0) | (nan + (e & 7));
          }
          const base = { experts, topk: k, dtype, bias: makeBias(2800 + i, experts), rowStride: experts };
          expect(
            warpAndAutoDifference({ ...base, renormalize: i % 2 === 0, scale: 1.5 }, logits, tokens),
          ).toBeUndefined();
        }
  }, 600_000);

  // Outputs 4 bytes off 8- and 16-byte alignment (allowed: the C API asks for 4): the split bias
  // kernel's 4 x 32 shape at k = 8 (plain and Hint forms) tests both pointers before its paired
  // stores and stores one rank at a time where either is off; the split, vector select and warp
  // kernels without a bias alongside (one rank a store).
  test("outputs 4 bytes off 8- and 16-byte alignment: the host's bytes (paired and vector stores fall back)", () => {
    const sms = info?.multiprocessors ?? 132;
    const diff = offsetOutputsDifference(3100, [
      { experts: 128, tokens: 384 * sms + 3, bias: true }, // split bias 4 x 32, Hint form
      { experts: 72, tokens: 130 * sms + 5, bias: true }, // split bias 4 x 32, plain form
      { experts: 128, tokens: 4096, bias: false }, // split
      { experts: 256, tokens: 64 * sms, bias: false }, // vector select
      { experts: 32, tokens: 2048, bias: false }, // warp
    ]);
    expect(diff).toBeUndefined();
  }, 300_000);

  // The same for the kernels whose k = 8 stores are 16 bytes (four ranks): the thread select
  // kernel (E = 65..120 from 384 tokens per SM) and the lane kernel (E <= 8) test the pointers in the
  // kernel, the staged kernel (E = 128 and 256 from 480 per SM) at its launch (hip/device_backend.hip).
  test("outputs 4 bytes off 16-byte alignment: the thread select, staged and lane kernels", () => {
    const sms = info?.multiprocessors ?? 132;
    const diff = offsetOutputsDifference(3200, [
      { experts: 96, tokens: 384 * sms + 5, bias: false }, // thread select
      { experts: 128, tokens: 496 * sms, bias: false }, // staged
      { experts: 256, tokens: 496 * sms + 7, bias: false }, // staged
      { experts: 8, tokens: 4096, bias: false }, // lane
    ]);
    expect(diff).toBeUndefined();
  }, 300_000);

  // The exhaustive checks: CUDA programs (tests/<name>.cu) built with nvcc for this card, each
  // printing one JSON line about all 2^32 fp32 inputs.
  const nvcc = Bun.which("nvcc") ?? (process.env.CUDA_HOME ? `${process.env.CUDA_HOME}/bin/nvcc` : undefined);
  const runExhaustiveCheck = <Report>(name: string, flags: string[] = []): { report: Report; exitCode: number } => {
    const root = new URL("..", import.meta.url).pathname;
    const exe = `${tmpdir()}/${name}.${process.pid}`;
    // A -gencode flag names the code to build instead (PTX of an older architecture, which the
    // driver compiles for this card: that architecture's branches of the sources run here).
    const arch = flags.some((f) => f.startsWith("-gencode"))
      ? []
      : [`-arch=sm_${(info?.arch ?? "sm_90").replace(/^sm_/, "")}`];
    const build = Bun.spawnSync([
      nvcc as string,
      "-O3",
      "-std=c++17",
      ...flags,
      ...arch,
      "-I",
      `${root}hip`,
      `${root}tests/${name}.cu`,
      "-o",
      exe,
    ]);
    expect(build.exitCode, build.stderr.toString()).toBe(0);
    const run = Bun.spawnSync([exe]);
    const line = run.stdout.toString().trim();
    console.log(`${name}: ${line}`);
    return { report: JSON.parse(line) as Report, exitCode: run.exitCode };
  };

  // The error bounds of the prefilter's cheap sigmoid and of the split bias kernel's pass-1 score
  // (one MUFU instruction: tanh.approx).
  test.skipIf(info?.vendor !== "nvidia" || !nvcc)(
    "the bias kernels' cheap sigmoids are within their bounds of the exact one for all 2^32 fp32 inputs",
    () => {
      type Report = { max_abs_error: number; tanh_max_abs_error: number; breaks: number };
      const { report, exitCode } = runExhaustiveCheck<Report>("approx_sigmoid_bound");
      expect(report.breaks).toBe(0);
      expect(report.max_abs_error).toBeLessThanOrEqual(2 ** -22); // kTsPrefilterSigmoidBound / 4
      expect(report.tanh_max_abs_error).toBeLessThanOrEqual(2 ** -17); // kTsTanhScoreBound / 2
      expect(exitCode).toBe(0);
    },
    120_000,
  );

  // The branch-free division (built as the library is: no contraction): the Small form's
  // sigmoid, and the thread select kernel's renormalisation.
  test.skipIf(info?.vendor !== "nvidia" || !nvcc)(
    "the branch-free weight equals ts_weight_of_logit for all 2^32 fp32 inputs, the division TS_DIV in its range",
    () => {
      type Report = { inputs: number; differ: number; division_pairs: number; division_differ: number };
      const { report, exitCode } = runExhaustiveCheck<Report>("sigmoid_branchless", ["--fmad=false"]);
      expect(report.inputs).toBe(2 ** 32);
      expect(report.differ).toBe(0);
      expect(report.division_pairs).toBeGreaterThan(2 ** 29);
      expect(report.division_differ).toBe(0);
      expect(exitCode).toBe(0);
    },
    120_000,
  );

  // The split kernel's keys (hip/kernel_split.hpp): ranked as the exact keys, read back exactly,
  // from the code built for this card and from the sm_80 branches of hip/kernel_warp.hpp (no
  // packed bf16 NaN compare there): PTX for compute_80, which the driver compiles for this card.
  const cardArch = Number((info?.arch ?? "sm_0").replace(/^sm_/, ""));
  const splitKeyBuilds: [string, string[], number][] = [
    ["", [], 0],
    [" in sm_80 code", ["-gencode", "arch=compute_80,code=compute_80"], 80],
  ];
  for (const [where, flags, minArch] of splitKeyBuilds) {
    test.skipIf(info?.vendor !== "nvidia" || !nvcc || cardArch < minArch)(
      `the split kernel's keys${where} rank as ts_ord16 and read back its values, on every bf16 / fp16 input`,
      () => {
        type Counts = { pair_failures: number; failures: number };
        const { report, exitCode } = runExhaustiveCheck<{ words: number; bf16: Counts; f16: Counts }>(
          "split_keys_check",
          flags,
        );
        expect(report.words).toBe(2 ** 32);
        expect(report.bf16).toEqual({ pair_failures: 0, failures: 0 });
        expect(report.f16).toEqual({ pair_failures: 0, failures: 0 });
        expect(exitCode).toBe(0);
      },
      120_000,
    );
  }

  test("the split bias kernel's cheap keys: q = 0 for every NaN, the same order and gaps as the clamped form, every bf16 / fp16 logit", () => {
    type Counts = { failures: number };
    const { report, exitCode } = runExhaustiveCheck<{ logits: number; biases: number; bf16: Counts; f16: Counts }>(
      "split_bias_key_check",
      ["--fmad=false"],
    );
    expect(report.logits).toBe(2 ** 16);
    expect(report.biases).toBeGreaterThan(0);
    expect(report.bf16).toEqual({ failures: 0 });
    expect(report.f16).toEqual({ failures: 0 });
    expect(exitCode).toBe(0);
  }, 120_000);

  test("ck beyond the register path: E in {2048, 4096, 16384}, every k and dtype", () => {
    let i = 0;
    for (const experts of ckOnlyExperts) {
      for (const k of ks) {
        for (const dtype of dtypeList) {
          i++;
          const c: Case = {
            experts,
            k,
            tokens: experts === 16384 ? 7 : ([7, 256][i % 2] as number),
            dtype,
            bias: (i & 2) !== 0,
            renormalize: (i & 1) !== 0,
            stride: experts + (i % 3 === 0 ? 1 : 0),
            seed: experts + i,
          };
          expect(checkCase(c)).toBeUndefined();
        }
      }
    }
  }, 120_000);

  test("T = 0 is a no-op on every backend (outputs untouched)", () => {
    for (const backend of deviceBackends(64)) {
      using router = createRouter({ experts: 64, topk: 8, dtype: "bf16", backend });
      using logits = DeviceBuffer.alloc(64 * 2);
      using w = DeviceBuffer.alloc(32);
      using idx = DeviceBuffer.alloc(32);
      w.fill(0xab);
      router.routeDevice(logits, 0, { weights: w, indices: idx });
      synchronize();
      expect(Array.from(new Uint8Array(w.download(new Uint8Array(32))))).toEqual(new Array(32).fill(0xab));
    }
  });
});

gpuDescribe("device API", () => {
  test("graph capture and replay route fresh inputs correctly", () => {
    const experts = 256;
    const k = 8;
    const tokens = 1024;
    const bias = makeBias(5, experts);
    using router = createRouter({ experts, topk: k, dtype: "bf16", bias, renormalize: true, scale: 2.5 });
    using host = createRouter({
      experts,
      topk: k,
      dtype: "bf16",
      bias,
      renormalize: true,
      scale: 2.5,
      backend: "host",
    });
    using stream = Stream.create();
    using dLogits = DeviceBuffer.alloc(tokens * experts * 2);
    using dW = DeviceBuffer.alloc(tokens * k * 4);
    using dI = DeviceBuffer.alloc(tokens * k * 4);
    using graph = Graph.capture(stream, () =>
      router.routeDevice(dLogits, tokens, { weights: dW, indices: dI }, stream),
    );
    for (const seed of [1, 2, 3]) {
      const logits = makeLogits(seed, tokens, experts, experts, "bf16");
      dLogits.upload(logits, stream);
      dW.fill(0xff, stream);
      graph.launch(stream);
      stream.synchronize();
      const got = { weights: dW.toFloat32Array(), indices: dI.toInt32Array() };
      expect(firstDifference(k, got, host.route(logits))).toBeUndefined();
    }
  });

  test("host arrays on a GPU router take the copy path and match the host backend", () => {
    const logits = makeLogits(9, 300, 384, 384, "f32");
    using gpu = createRouter({ experts: 384, topk: 8 });
    using host = createRouter({ experts: 384, topk: 8, backend: "host" });
    expect(gpu.backend).not.toBe("host");
    expect(firstDifference(8, gpu.route(logits), host.route(logits))).toBeUndefined();
  });

  test("a device ordinal that does not exist is a clear InvalidDeviceError", () => {
    expect(() => setDevice(gpus + 3)).toThrow(InvalidDeviceError);
    expect(() => setDevice(gpus + 3)).toThrow(/does not exist/);
    expect(() => deviceInfo(-1)).toThrow(InvalidDeviceError);
  });

  test("raw entry points refuse host memory, oversize E on the register path, and the wrong architecture", () => {
    const lib = dlopen(libraryInfo().path, symbols);
    try {
      const logits = new Float32Array(64);
      const weights = new Float32Array(8);
      const indices = new Int32Array(8);
      const s = lib.symbols;
      const call = (name: "topk_sigmoid_warp" | "topk_sigmoid_ck" | "topk_sigmoid", experts: number) =>
        s[name](ptr(logits), 0, 1, experts, experts, null, 0, 1, 0, 1, ptr(weights), ptr(indices), null);
      expect(call("topk_sigmoid_warp", 64)).toBe(25); // TS_ERR_INVALID_POINTER
      expect(s.topk_sigmoid_last_error()?.toString()).toMatch(/not GPU memory|host memory/);
      expect(call("topk_sigmoid_ck", 64)).toBe(25);
      expect(call("topk_sigmoid", 64)).toBe(25);
      expect(weights.every((w) => w === 0)).toBe(true);
      using big = DeviceBuffer.alloc(4096 * 4);
      using w = DeviceBuffer.alloc(32);
      using i = DeviceBuffer.alloc(32);
      expect(s.topk_sigmoid_warp(big.pointer, 0, 1, 2048, 2048, null, 0, 8, 0, 1, w.pointer, i.pointer, null)).toBe(23);
      expect(s.topk_sigmoid_last_error()?.toString()).toMatch(/experts <= 1024/);
      // A pointer that was usable, then freed, is refused again (the pointer-check cache forgets it).
      const stale = DeviceBuffer.alloc(64 * 4);
      const stalePointer = stale.pointer;
      expect(s.topk_sigmoid_ck(stalePointer, 0, 1, 64, 64, null, 0, 8, 0, 1, w.pointer, i.pointer, null)).toBe(0);
      stale.dispose();
      expect(s.topk_sigmoid_ck(stalePointer, 0, 1, 64, 64, null, 0, 8, 0, 1, w.pointer, i.pointer, null)).toBe(25);
      if (info?.vendor === "nvidia") {
        expect(s.topk_sigmoid_gfx9(big.pointer, 0, 1, 64, 64, null, 0, 8, 0, 1, w.pointer, i.pointer, null)).toBe(22);
        expect(s.topk_sigmoid_last_error()?.toString()).toMatch(/AMD gfx9/);
      }
    } finally {
      lib.close();
    }
  });

  test("wrapped (non-owning) buffers and streams route like owned ones and are not freed by dispose", () => {
    const logits = makeLogits(11, 64, 128, 128, "bf16");
    using host = createRouter({ experts: 128, topk: 4, dtype: "bf16", backend: "host" });
    using router = createRouter({ experts: 128, topk: 4, dtype: "bf16" });
    using owner = DeviceBuffer.from(logits);
    using w = DeviceBuffer.alloc(64 * 4 * 4);
    using i = DeviceBuffer.alloc(64 * 4 * 4);
    using ownedStream = Stream.create();
    const view = DeviceBuffer.wrap(owner.pointer, owner.bytes);
    const streamView = Stream.wrap(ownedStream.handle);
    router.routeDevice(view, 64, { weights: w, indices: i }, streamView);
    streamView.synchronize();
    view.dispose();
    streamView.dispose();
    expect(owner.toUint16Array()).toEqual(logits as Uint16Array); // still allocated
    ownedStream.synchronize(); // still alive
    expect(
      firstDifference(4, { weights: w.toFloat32Array(), indices: i.toInt32Array() }, host.route(logits)),
    ).toBeUndefined();
  });

  test("DeviceBuffer: round trip, dispose twice, use after dispose throws", () => {
    const data = Float32Array.from({ length: 1000 }, (_, i) => i * 0.5 - 3);
    const b = DeviceBuffer.from(data);
    expect(Array.from(b.toFloat32Array())).toEqual(Array.from(data));
    using copy = DeviceBuffer.alloc(b.bytes);
    copy.copyFrom(b);
    synchronize();
    expect(Array.from(copy.toFloat32Array())).toEqual(Array.from(data));
    expect(deviceInfo().l2CacheBytes).toBeGreaterThan(1 << 20);
    b.dispose();
    b.dispose();
    expect(b.disposed).toBe(true);
    expect(() => b.pointer).toThrow(/disposed/);
  });
});
