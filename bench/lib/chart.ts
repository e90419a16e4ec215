// bench/lib/chart.ts: chart.svg, time per call versus tokens (log-log), one panel per E, one line
// per backend and PyTorch, the bytes floor and the launch floor as dashed lines. Hand-written SVG.
import { configKey, type Mode, type Series } from "./plan.ts";
import { bytesFloorUs, Index } from "./report.ts";
import type { BenchResults } from "./results.ts";

interface Line {
  name: string;
  color: string;
  dash?: string;
  width: number;
  markers: boolean;
  points: [number, number][];
}

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const fmtTick = (v: number) =>
  v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : v >= 1 ? `${v}` : `${Number(v.toPrecision(1))}`;

export function renderChart(r: BenchResults): string | undefined {
  const section = r.sections.find((s) => s.id === "chart");
  if (!section) return undefined;
  const ix = new Index(r.measurements);
  const all = section.keys.flatMap((k) => (r.configs[k] ? [r.configs[k]] : []));
  const expertsList = [...new Set(all.map((c) => c.experts))].sort((a, b) => a - b);
  if (expertsList.length === 0) return undefined;
  const fast = (r.device?.fastBackend ?? "warp") as Series;
  const seriesDefs: { series: Series; mode: Mode; name: string; color: string; dash?: string; width: number }[] = [
    { series: fast, mode: "graph", name: `${fast} (graph)`, color: "#1f77b4", width: 2.2 },
    { series: "auto", mode: "graph", name: "auto (graph)", color: "#17becf", dash: "2 3", width: 1.4 },
    { series: "ck", mode: "graph", name: "ck (graph)", color: "#ff7f0e", width: 1.8 },
    { series: "host", mode: "wall", name: "host (wall clock)", color: "#9467bd", width: 1.5 },
    { series: "torch", mode: "graph", name: "PyTorch (graph)", color: "#d62728", width: 1.8 },
    { series: "torch", mode: "eager", name: "PyTorch (plain eager)", color: "#e377c2", dash: "6 2 1 2", width: 1.2 },
  ];
  const panels = expertsList.map((e) => {
    const cs = all.filter((c) => c.experts === e).sort((a, b) => a.tokens - b.tokens);
    const lines: Line[] = [];
    for (const d of seriesDefs) {
      const points = cs
        .map((c) => [c.tokens, ix.us(c, d.series, d.mode)] as [number, number | undefined])
        .filter((p): p is [number, number] => p[1] !== undefined && p[1] > 0);
      if (points.length) lines.push({ ...d, markers: true, points });
    }
    const copy = r.floors.copyTBps;
    if (copy) {
      const points = cs.map((c) => [c.tokens, bytesFloorUs(c, copy) ?? 0] as [number, number]).filter((p) => p[1] > 0);
      lines.push({
        name: `bytes floor (${copy.toFixed(2)} TB/s)`,
        color: "#444",
        dash: "5 4",
        width: 1.2,
        markers: false,
        points,
      });
    }
    const launch = r.floors.launchGraphUs;
    if (launch && cs.length) {
      const t0 = cs[0]?.tokens ?? 1;
      const t1 = cs.at(-1)?.tokens ?? 1;
      lines.push({
        name: `launch floor (${launch.toFixed(2)} us)`,
        color: "#999",
        dash: "2 3",
        width: 1.2,
        markers: false,
        points: [
          [t0, launch],
          [t1, launch],
        ],
      });
    }
    return { experts: e, lines, keys: cs.map(configKey) };
  });

  // Shared axes: decades covering every point.
  // The y range follows the measured lines and the launch floor; the bytes floor (far below at
  // small T) is clipped to the panel.
  const xs = panels.flatMap((p) => p.lines.flatMap((l) => l.points.map((q) => q[0])));
  const measured = panels.flatMap((p) => p.lines.filter((l) => l.markers || l.name.startsWith("launch")));
  const ys = (measured.length ? measured : panels.flatMap((p) => p.lines)).flatMap((l) => l.points.map((q) => q[1]));
  if (xs.length === 0) return undefined;
  const x0 = 10 ** Math.floor(Math.log10(Math.min(...xs)));
  const x1 = 10 ** Math.ceil(Math.log10(Math.max(...xs) * 1.0001));
  const y0 = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  const y1 = 10 ** Math.ceil(Math.log10(Math.max(...ys) * 1.0001));

  const cols = Math.min(3, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const pw = 360;
  const ph = 270;
  const m = { l: 56, r: 12, t: 28, b: 40 };
  const legendCols = Math.max(2, Math.floor((Math.min(3, panels.length) * pw - 40) / 200));
  const legendH = 20 * Math.ceil((seriesDefs.length + 2) / legendCols) + 10;
  const titleH = 46;
  const width = cols * pw;
  const height = titleH + legendH + rows * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
  );
  const card = r.device?.name ?? "no GPU";
  out.push(
    `<title>topk-sigmoid time per call versus tokens on ${esc(card)}, with the bytes and launch floors</title>`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
  );
  const kDt = all[0] ? `k=${all[0].topk}, ${all[0].dtype}${all[0].renormalize ? ", renormalize" : ""}` : "";
  out.push(
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">topk-sigmoid: time per call vs tokens (${esc(kDt)})</text>`,
    `<text x="${width / 2}" y="37" text-anchor="middle" fill="#555">${esc(`${card} · ${r.date.slice(0, 10)} · graph replay, median; log-log${r.dryRun ? " · DRY RUN (host only)" : ""}${r.grid === "quick" ? " · quick grid" : ""}`)}</text>`,
  );
  // Legend.
  const legendItems = [
    ...seriesDefs.filter((d) => panels.some((p) => p.lines.some((l) => l.name === d.name))),
    ...(r.floors.copyTBps ? [{ name: "bytes floor", color: "#444", dash: "5 4", width: 1.2 }] : []),
    ...(r.floors.launchGraphUs ? [{ name: "launch floor", color: "#999", dash: "2 3", width: 1.2 }] : []),
  ];
  legendItems.forEach((d, i) => {
    const lx = 20 + (i % legendCols) * ((width - 40) / legendCols);
    const ly = titleH + 14 + Math.floor(i / legendCols) * 20;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 26}" y2="${ly - 4}" stroke="${d.color}" stroke-width="${d.width}"${d.dash ? ` stroke-dasharray="${d.dash}"` : ""}/>`,
      `<text x="${lx + 32}" y="${ly}">${esc(d.name)}</text>`,
    );
  });
  const lx = (v: number) => (Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0));
  const ly = (v: number) => (Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0));
  panels.forEach((p, i) => {
    const ox = (i % cols) * pw;
    const oy = titleH + legendH + Math.floor(i / cols) * ph;
    const iw = pw - m.l - m.r;
    const ih = ph - m.t - m.b;
    const X = (v: number) => ox + m.l + lx(v) * iw;
    const Y = (v: number) => oy + m.t + (1 - ly(v)) * ih;
    out.push(
      `<g>`,
      `<clipPath id="panel${i}"><rect x="${ox + m.l}" y="${oy + m.t}" width="${iw}" height="${ih}"/></clipPath>`,
    );
    out.push(
      `<text x="${ox + m.l + iw / 2}" y="${oy + 16}" text-anchor="middle" font-size="13" font-weight="bold">E = ${p.experts}</text>`,
      `<rect x="${ox + m.l}" y="${oy + m.t}" width="${iw}" height="${ih}" fill="none" stroke="#888"/>`,
    );
    for (let v = x0; v <= x1 * 1.0001; v *= 10) {
      out.push(
        `<line x1="${X(v).toFixed(1)}" y1="${oy + m.t}" x2="${X(v).toFixed(1)}" y2="${oy + m.t + ih}" stroke="#e6e6e6"/>`,
        `<text x="${X(v).toFixed(1)}" y="${oy + m.t + ih + 14}" text-anchor="middle" fill="#333">${fmtTick(v)}</text>`,
      );
    }
    for (let v = y0; v <= y1 * 1.0001; v *= 10) {
      out.push(
        `<line x1="${ox + m.l}" y1="${Y(v).toFixed(1)}" x2="${ox + m.l + iw}" y2="${Y(v).toFixed(1)}" stroke="#e6e6e6"/>`,
        `<text x="${ox + m.l - 5}" y="${(Y(v) + 4).toFixed(1)}" text-anchor="end" fill="#333">${fmtTick(v)}</text>`,
      );
    }
    out.push(
      `<text x="${ox + m.l + iw / 2}" y="${oy + ph - 8}" text-anchor="middle" fill="#333">tokens T</text>`,
      `<text transform="translate(${ox + 14},${oy + m.t + ih / 2}) rotate(-90)" text-anchor="middle" fill="#333">us per call</text>`,
    );
    for (const l of p.lines) {
      const d = l.points.map((q, j) => `${j ? "L" : "M"}${X(q[0]).toFixed(1)},${Y(q[1]).toFixed(1)}`).join(" ");
      out.push(
        `<path d="${d}" fill="none" clip-path="url(#panel${i})" stroke="${l.color}" stroke-width="${l.width}"${l.dash ? ` stroke-dasharray="${l.dash}"` : ""}/>`,
      );
      if (l.markers)
        for (const q of l.points)
          out.push(
            `<circle cx="${X(q[0]).toFixed(1)}" cy="${Y(q[1]).toFixed(1)}" r="2.4" fill="${l.color}"><title>${esc(`${l.name}, E=${p.experts}, T=${q[0]}: ${q[1].toFixed(2)} us`)}</title></circle>`,
          );
    }
    out.push(`</g>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
