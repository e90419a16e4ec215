// bench/lib/util.ts: small statistics and the progress line on stderr.

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export const mean = (values: readonly number[]): number =>
  values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length;

export const geomean = (values: readonly number[]): number =>
  values.length === 0 ? Number.NaN : Math.exp(mean(values.map((v) => Math.log(v))));

/** Formats microseconds: 2 decimals below 100, 1 below 1000, else none. */
export function us(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return "-";
  return v < 100 ? v.toFixed(2) : v < 1000 ? v.toFixed(1) : v.toFixed(0);
}

export const ratio = (v: number | undefined): string =>
  v === undefined || !Number.isFinite(v) ? "-" : `${v.toFixed(v < 10 ? 2 : 1)}x`;

/**
 * Progress on stderr: one line per section, then updates. On a TTY a single line is rewritten;
 * elsewhere (the GPU machine's captured output) a line is printed about every 10% or 15 s, so
 * the log stays short.
 */
export class Progress {
  readonly #tty = Boolean(process.stderr.isTTY);
  readonly #t0 = performance.now();
  #name = "";
  #total = 0;
  #done = 0;
  #lastPrint = 0;
  #lastBucket = -1;
  #sectionT0 = 0;

  elapsedS(): number {
    return (performance.now() - this.#t0) / 1000;
  }

  #stamp(): string {
    return `[bench ${this.elapsedS().toFixed(0).padStart(4)}s]`;
  }

  log(message: string): void {
    if (this.#tty) process.stderr.write("\r\x1b[K");
    process.stderr.write(`${this.#stamp()} ${message}\n`);
  }

  section(name: string, total: number): void {
    this.#name = name;
    this.#total = total;
    this.#done = 0;
    this.#lastBucket = -1;
    this.#sectionT0 = performance.now();
    this.log(`${name}: ${total} item${total === 1 ? "" : "s"}`);
  }

  tick(label: string): void {
    this.#done++;
    const now = performance.now();
    const line = `${this.#name} ${this.#done}/${this.#total} ${label}`;
    if (this.#tty) {
      process.stderr.write(`\r\x1b[K${this.#stamp()} ${line}`);
      return;
    }
    const bucket = Math.floor((10 * this.#done) / Math.max(1, this.#total));
    if (bucket !== this.#lastBucket || now - this.#lastPrint > 15000 || this.#done === this.#total) {
      this.#lastBucket = bucket;
      this.#lastPrint = now;
      process.stderr.write(`${this.#stamp()} ${line}\n`);
    }
  }

  /** Ends the section; returns its duration in seconds. */
  end(): number {
    const s = (performance.now() - this.#sectionT0) / 1000;
    if (this.#tty) process.stderr.write("\r\x1b[K");
    process.stderr.write(`${this.#stamp()} ${this.#name}: done in ${s.toFixed(1)} s\n`);
    return s;
  }
}
