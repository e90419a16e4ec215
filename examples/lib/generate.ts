// examples/lib/generate.ts: seeded, realistic-looking router logits and correction biases, for
// runs without a logits file. Same seed -> same numbers on every machine (a small counter-based
// PRNG, no Math.random).
//
// Logits: x[t, e] = -1.5 + popularity[e] + topic boost + N(0, 1). popularity is a per-expert skew
// (a few experts hot, a few cold), and every token belongs to one of 16 "topics" that favour a
// handful of experts, so the load picture looks like a real router's rather than flat noise.
// Bias: what aux-loss-free balancing would learn: a small push against popular experts plus noise
// (|bias| of a few hundredths, in score units), depending only on the seed and the expert count.

/** sfc32: a small, fast, well-distributed 32-bit PRNG; returns uniforms in [0, 1). */
function sfc32(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 15; i++) next();
  return next;
}

/** Standard normal samples (Box-Muller, both values used). */
export function normals(seed: number): () => number {
  const uniform = sfc32(seed);
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = uniform();
    while (u === 0) u = uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Per-expert popularity skew in logit units (depends on seed and E only). */
export function popularity(experts: number, seed: number): Float64Array {
  const normal = normals(seed * 7919 + 1);
  const uniform = sfc32(seed * 104729 + 2);
  const out = new Float64Array(experts);
  for (let e = 0; e < experts; e++) {
    let p = 0.35 * normal();
    const u = uniform();
    if (u < 0.04)
      p += 0.9; // hot experts
    else if (u > 0.97) p -= 1.4; // experts the router rarely picks
    out[e] = p;
  }
  return out;
}

const TOPICS = 16;

/** Seeded logits `[tokens, experts]` as fp32 values. */
export function generateLogits(tokens: number, experts: number, seed: number): Float32Array {
  const pop = popularity(experts, seed);
  const normal = normals(seed * 31337 + 3);
  const uniform = sfc32(seed * 65537 + 4);
  // Each topic boosts ~3% of the experts (at least 2).
  const perTopic = Math.max(2, Math.round(experts * 0.03));
  const boosts: Int32Array[] = [];
  for (let c = 0; c < TOPICS; c++) {
    const picks = new Int32Array(perTopic);
    for (let i = 0; i < perTopic; i++) picks[i] = Math.floor(uniform() * experts);
    boosts.push(picks);
  }
  const out = new Float32Array(tokens * experts);
  for (let t = 0; t < tokens; t++) {
    const row = t * experts;
    for (let e = 0; e < experts; e++) out[row + e] = -1.5 + (pop[e] as number) + normal();
    const topic = boosts[Math.floor(uniform() * TOPICS)] as Int32Array;
    for (const e of topic) out[row + e] = (out[row + e] as number) + 1.2;
  }
  return out;
}

/** A seeded, plausible correction bias `[experts]` (score units, a few hundredths). */
export function generateBias(experts: number, seed: number): Float32Array<ArrayBuffer> {
  const pop = popularity(experts, seed);
  const normal = normals(seed * 15485863 + 5);
  const score = (x: number) => 1 / (1 + Math.exp(-x));
  let mean = 0;
  for (const p of pop) mean += score(-1.5 + p) / experts;
  const out = new Float32Array(experts);
  for (let e = 0; e < experts; e++) out[e] = -0.35 * (score(-1.5 + (pop[e] as number)) - mean) + 0.01 * normal();
  return out;
}
