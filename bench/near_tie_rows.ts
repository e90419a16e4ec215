// bench/near_tie_rows.ts: which of the benchmark's base rows send a token of the split bias kernel
// (hip/kernel_split_bias.hpp, E = 65..512, k = 8) off its cheap path, per input seed. Host only:
//   bun bench/near_tie_rows.ts [seed ...]        (default: 1 2 3; the benchmark's default is 1)
// The benchmark tiles 1024 base rows over T=65536, so each row flagged here is 64 tokens of its
// bandwidth section, and a failed token holds its warp for the band's serial steps
// (BENCHMARKS.md, What limits). Values are exact in float64 (sigmoid(x) + b), where the kernel
// ranks on cheap ones within 2^-20 of the exact, so a row at the edge of a margin may go either
// way on the card; the counts are a model of the kernel's check, not a copy of it.
import { bf16BitsToFloat, type Dtype } from "../mod.ts";
import { makeBias } from "../tests/gpu_cases.ts";
import { BASE_ROWS, HostInputs } from "./lib/gpu.ts";

const K = 8;
const EXPERTS = [128, 256, 384, 512];

/** The kernel's fixed-point scale and margins in q (one q is 1 / scale of a value). */
function margins(bias: Float32Array): { scale: number; gap: number; selectMargin: number } {
  let largest = 0;
  for (const b of bias) largest = Math.max(largest, Math.abs(b));
  const ex = Math.floor(Math.log2(largest + 1)) + 1; // |b| + 1 < 2^ex
  const scale = 2 ** (21 - ex);
  const gap = Math.floor(2 * (2 ** -20 * scale + 1.125)) + 1; // D: keys closer may be misordered
  const selectMargin = Math.floor((2 ** -16 + 2 ** -20) * scale + 2.75) + 1; // pass-1 score's error
  return { scale, gap, selectMargin };
}

/** Logits per lane of the split bias kernel's shape (4 lanes a token): vectors of 8, lane = vector mod 4. */
const logitsPerLane = (experts: number) => (experts <= 128 ? 32 : experts <= 256 ? 64 : experts <= 384 ? 96 : 128);

interface Flag {
  row: number;
  what: string;
}

/** The flagged rows of one E and seed. */
function flaggedRows(seed: number, experts: number): Flag[] {
  const dtype: Dtype = "bf16";
  const rows = new HostInputs(seed).base(experts, dtype) as Uint16Array;
  const bias = makeBias(seed, experts);
  const { scale, gap, selectMargin } = margins(bias);
  const vectorsPerLane = logitsPerLane(experts) / 8;
  const flags: Flag[] = [];
  for (let t = 0; t < BASE_ROWS; t++) {
    const q: number[] = [];
    for (let e = 0; e < experts; e++) {
      const x = bf16BitsToFloat(rows[t * experts + e] as number);
      q.push(Number.isNaN(x) ? 0 : Math.floor((1 / (1 + Math.exp(-x)) + (bias[e] as number) + 13) * scale));
    }
    const order = [...q.keys()].sort((a, b) => (q[b] as number) - (q[a] as number) || a - b);
    const qk = q[order[K - 1] as number] as number;
    if (qk === 0) continue; // a NaN k-th: the set is exact
    const floor = qk - gap + 1;
    const band = q.filter((v) => v >= floor).length;
    const what: string[] = [];
    if (band > K) what.push(`band of ${band}`);
    if (experts > 128) {
      // The vector selection: each vector's best value ranks it; the best 8 vectors are re-read.
      const vectors = experts / 8;
      const key = Array.from({ length: vectors }, (_, c) => Math.max(...q.slice(8 * c, 8 * c + 8)));
      const ranked = [...key.keys()].sort((a, b) => (key[b] as number) - (key[a] as number) || a - b);
      const chosen = ranked.slice(0, K);
      const perLane = [0, 1, 2, 3].map((l) => chosen.filter((c) => c % 4 === l).length);
      if (vectorsPerLane > 8 && perLane.includes(8)) what.push("all 8 chosen vectors in one lane");
      const near = ranked.slice(K).filter((c) => (key[c] as number) + selectMargin >= floor);
      const reach = near.filter((c) => (key[c] as number) >= floor).length;
      if (reach > 0) what.push(`${reach} unchosen vector(s) reach the floor`);
      else if (near.length > 0) what.push(`${near.length} near-miss vector(s)`);
    }
    if (what.length > 0) flags.push({ row: t, what: what.join(", ") });
  }
  return flags;
}

const seeds = process.argv.slice(2).map(Number);
for (const seed of seeds.length > 0 ? seeds : [1, 2, 3]) {
  for (const experts of EXPERTS) {
    const flags = flaggedRows(seed, experts);
    const failing = flags.filter((f) => !/^\d+ near-miss/.test(f.what)).length;
    console.log(`seed ${seed} E${experts}: ${failing} failing, ${flags.length - failing} near-miss only`);
    for (const f of flags) console.log(`  row ${f.row}: ${f.what}`);
  }
}
