// Charts from bench/results/latest.json into docs/charts/*.svg (plain SVG, no dependencies): what
// people would rather look at than read. npm run bench regenerates them; so does
//   npx tsx bench/charts.ts [results.json] [out-dir]
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

interface Series {
  name: string;
  points: [number, number][];
}

const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#57606a"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Nice round tick step for a range. */
function step(max: number): number {
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw)!;
}

/** A line chart (x numeric, log2 when asked) with a legend. */
export function lineChart(title: string, xLabel: string, yLabel: string, series: Series[], opts: { logX?: boolean } = {}): string {
  const W = 720, H = 360, L = 64, R = 230, T = 40, B = 48;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const fx = (x: number) => (opts.logX ? Math.log2(x) : x);
  const [x0, x1] = [Math.min(...xs.map(fx)), Math.max(...xs.map(fx))];
  const yStep = step(Math.max(...ys));
  const yMax = Math.ceil(Math.max(...ys) / yStep) * yStep;
  const px = (x: number) => L + ((fx(x) - x0) / Math.max(x1 - x0, 1e-9)) * (W - L - R);
  const py = (y: number) => H - B - (y / yMax) * (H - T - B);
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${L}" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`];
  for (let y = 0; y <= yMax; y += yStep) {
    out.push(`<line x1="${L}" x2="${W - R}" y1="${py(y)}" y2="${py(y)}" stroke="#e5e7eb"/>`, `<text x="${L - 6}" y="${py(y) + 4}" text-anchor="end">${y}</text>`);
  }
  // Every x value as a tick when there are few (clients, prompt lengths), else round steps.
  const distinct = [...new Set(xs)].sort((a, b) => a - b);
  const xStep = step(Math.max(...xs));
  const ticks = distinct.length <= 10 || opts.logX ? distinct : Array.from({ length: Math.floor(Math.max(...xs) / xStep) + 1 }, (_, i) => i * xStep).filter((x) => x >= Math.min(...xs));
  for (const x of ticks) {
    out.push(`<text x="${px(x)}" y="${H - B + 16}" text-anchor="middle">${+x.toFixed(3)}</text>`);
  }
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 10}" text-anchor="middle">${esc(xLabel)}</text>`,
    `<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a[0] - b[0]);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")}"/>`);
    for (const [x, y] of pts) out.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${c}"/>`);
    out.push(`<rect x="${W - R + 12}" y="${T + i * 20}" width="12" height="12" fill="${c}"/>`, `<text x="${W - R + 30}" y="${T + i * 20 + 10}">${esc(s.name)}</text>`);
  });
  return out.join("\n") + "\n</svg>\n";
}

/** Horizontal bars, one per label, with the value printed. */
function barChart(title: string, unit: string, bars: { label: string; value: number }[]): string {
  const W = 640, rowH = 26, L = 230, T = 40, H = T + bars.length * rowH + 16;
  const max = Math.max(...bars.map((b) => b.value));
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="12" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`];
  bars.forEach((b, i) => {
    const y = T + i * rowH, w = ((W - L - 90) * b.value) / max;
    out.push(`<text x="${L - 8}" y="${y + 15}" text-anchor="end">${esc(b.label)}</text>`,
      `<rect x="${L}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${COLORS[i % COLORS.length]}"/>`,
      `<text x="${L + w + 6}" y="${y + 15}">${b.value.toFixed(0)} ${esc(unit)}</text>`);
  });
  return out.join("\n") + "\n</svg>\n";
}

interface Results {
  machine: { cpu: string; date: string };
  engines: { engine: string; file: string; threads: number; prefill_ms: Record<string, number>; decode_tok_s: Record<string, number>; failed?: string }[];
  load: { backend: string; max_batch: number; clients: number; aggregate_tok_s: number }[];
  hosts: { host: string; decode_tok_s: number }[];
}

const ENGINE_NAMES: Record<string, string> = { simd: "ours, relaxed SIMD", simd128: "ours, SIMD128", "simd-kv8": "ours, int8 KV cache", web: "onnxruntime-web", native: "onnxruntime native" };

export function writeCharts(results: Results, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const int8 = results.engines.filter((e) => !e.failed && e.file.includes("quantized"));
  const label = (e: Results["engines"][number]) => `${ENGINE_NAMES[e.engine] ?? e.engine}${e.threads > 1 ? `, ${e.threads} threads` : ""}`;
  const files: [string, string][] = [
    ["throughput-vs-clients.svg", lineChart("Aggregate tok/s by concurrent streaming clients (MAX_BATCH 8)", "clients", "tok/s",
      [...new Set(results.load.filter((r) => r.max_batch === 8).map((r) => r.backend))].map((backend) => ({
        name: backend === "simd" ? "our kernels" : "onnxruntime-web",
        points: results.load.filter((r) => r.backend === backend && r.max_batch === 8).map((r) => [r.clients, r.aggregate_tok_s] as [number, number]),
      })), { logX: true })],
    ["ttft-vs-prompt.svg", lineChart("Time to first token by prompt length (int8, one sequence)", "prompt tokens", "ms",
      int8.map((e) => ({ name: label(e), points: Object.entries(e.prefill_ms).map(([n, ms]) => [Number(n), ms] as [number, number]) })), { logX: true })],
    ["decode-backends.svg", barChart("Decode tok/s at context 128 (int8, one sequence)", "tok/s", int8.map((e) => ({ label: label(e), value: e.decode_tok_s["128"] })))],
    ["hosts.svg", barChart("Through HTTP: 256 greedy tokens, our kernels", "tok/s", results.hosts.map((h) => ({ label: h.host, value: h.decode_tok_s })))],
  ];
  for (const [name, svg] of files) writeFileSync(join(dir, name), svg);
  return files.map(([name]) => join(dir, name));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [input = "bench/results/latest.json", out = "docs/charts"] = process.argv.slice(2);
  for (const f of writeCharts(JSON.parse(readFileSync(input, "utf8")), out)) console.log(f);
}
