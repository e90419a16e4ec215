// examples/lib/report.ts: the terminal picture of one routing run: per-expert load as a compact
// block-character map (64 experts per row), the busiest and least busy experts as bars, balance
// figures, and the first tokens' routes. Fits 80-100 columns. Colour only on a TTY without
// NO_COLOR (FORCE_COLOR forces it).

/** Load statistics of one routing result. */
export interface LoadStats {
  /** Tokens routed to each expert. */
  load: Int32Array;
  mean: number;
  max: number;
  min: number;
  idle: number;
  /** Experts by load, busiest first (ties: lower index first). */
  order: Int32Array;
}

/** Counts tokens per expert from the flat indices of a routing result. */
export function loadStats(indices: Int32Array, count: number, experts: number): LoadStats {
  const load = new Int32Array(experts);
  for (let i = 0; i < count; i++) {
    const e = indices[i] as number;
    if (e >= 0 && e < experts) load[e] = (load[e] as number) + 1;
  }
  let max = 0;
  let min = Number.POSITIVE_INFINITY;
  let idle = 0;
  for (const n of load) {
    if (n > max) max = n;
    if (n < min) min = n;
    if (n === 0) idle++;
  }
  const order = Int32Array.from({ length: experts }, (_, e) => e).sort(
    (a, b) => (load[b] as number) - (load[a] as number) || a - b,
  );
  return { load, mean: count / experts, max, min, idle, order };
}

/** Whether to colour stdout: a TTY, NO_COLOR unset or empty, TERM not dumb; FORCE_COLOR (not "0") forces it. */
export function wantColor(): boolean {
  const force = process.env.FORCE_COLOR;
  if (force !== undefined && force !== "" && force !== "0") return true;
  if (process.env.NO_COLOR) return false;
  if (process.env.TERM === "dumb") return false;
  return process.stdout.isTTY === true;
}

const ansi = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g");
/** `s` without ANSI colour codes (for measuring what the terminal shows). */
export const stripAnsi = (s: string): string => s.replace(ansi, "");

export interface Paint {
  bold: (s: string) => string;
  dim: (s: string) => string;
  bar: (s: string) => string;
  hot: (s: string) => string;
  cold: (s: string) => string;
}

export function painter(color: boolean): Paint {
  const wrap = (code: string) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
  return { bold: wrap("1"), dim: wrap("2"), bar: wrap("36"), hot: wrap("33"), cold: wrap("31") };
}

const levels = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"];
const PER_ROW = 64;
const GROUP = 16;

/** The load map: one block character per expert, height relative to the busiest; '·' = idle. */
export function loadMap(stats: LoadStats, paint: Paint): string[] {
  const { load, max, mean } = stats;
  const experts = load.length;
  const width = String(experts - 1).length;
  const lines: string[] = [];
  for (let start = 0; start < experts; start += PER_ROW) {
    let row = "";
    for (let e = start; e < Math.min(start + PER_ROW, experts); e++) {
      if (e > start && (e - start) % GROUP === 0) row += " ";
      const n = load[e] as number;
      if (n === 0) row += paint.cold("·");
      else {
        const glyph = levels[Math.min(7, Math.ceil((n / max) * 8) - 1)] as string;
        row += n >= 2 * mean ? paint.hot(glyph) : paint.bar(glyph);
      }
    }
    lines.push(`  ${paint.dim(String(start).padStart(width))} ${row}`);
  }
  return lines;
}

const expertLabel = (e: number, experts: number) => `e${String(e).padStart(String(experts - 1).length, "0")}`;

/** Horizontal bars for the `n` busiest and `n` least busy experts. */
export function extremes(stats: LoadStats, n: number, paint: Paint, barWidth = 36): string[] {
  const { load, order, max, mean } = stats;
  const experts = load.length;
  const line = (e: number) => {
    const count = load[e] as number;
    const cells = max === 0 ? 0 : (count / max) * barWidth;
    const full = Math.floor(cells);
    const bar = "█".repeat(full) + (cells - full >= 0.5 ? "▌" : "") || (count > 0 ? "▏" : "");
    const ratio = mean > 0 ? count / mean : 0;
    const text = count === 0 ? "idle" : bar;
    const painted = count === 0 ? paint.cold(text) : ratio >= 2 ? paint.hot(text) : paint.bar(text);
    const pad = " ".repeat(Math.max(0, barWidth + 1 - text.length));
    return `${expertLabel(e, experts)} ${painted}${pad}${String(count).padStart(6)}  ${ratio.toFixed(2)}x mean`;
  };
  const shown = Math.min(n, Math.floor(experts / 2));
  const busiest = Array.from(order.subarray(0, shown), line);
  const least = Array.from(order.subarray(experts - shown).reverse(), line);
  return [
    ...busiest.map((l, i) => `  ${i === 0 ? "busiest   " : "          "} ${l}`),
    ...least.map((l, i) => `  ${i === 0 ? "least busy" : "          "} ${l}`),
  ];
}

/** The first `n` tokens' routes, `e017 0.412` pairs in rank order, wrapped at `perLine` pairs. */
export function firstRoutes(
  weights: Float32Array,
  indices: Int32Array,
  topk: number,
  tokens: number,
  experts: number,
  n: number,
  paint: Paint,
  perLine = 8,
): string[] {
  const lines: string[] = [];
  const label = String(Math.min(n, tokens) - 1).length + 1;
  for (let t = 0; t < Math.min(n, tokens); t++) {
    const pairs: string[] = [];
    for (let j = 0; j < topk; j++) {
      const i = t * topk + j;
      pairs.push(`${expertLabel(indices[i] as number, experts)} ${(weights[i] as number).toFixed(3)}`);
    }
    for (let p = 0; p < pairs.length; p += perLine) {
      const head = p === 0 ? paint.dim(`t${t}`.padEnd(label)) : " ".repeat(label);
      lines.push(`  ${head}  ${pairs.slice(p, p + perLine).join("  ")}`);
    }
  }
  return lines;
}

/** Formats a duration given in milliseconds with a sensible unit. */
export function formatMs(ms: number): string {
  if (ms < 0.001) return `${(ms * 1e6).toFixed(0)} ns`;
  if (ms < 1) return `${(ms * 1e3).toFixed(1)} us`;
  if (ms < 1000) return `${ms.toFixed(3)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
