// Figures in README.md and the model card against the files they come from (the bench's latest
// results, the model folder, its manifest): a figure that drifts from its source fails here.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");
const readme = read("README.md");
const card = read("model/MODEL_CARD.md");
const bench = JSON.parse(read("bench/results/latest.json"));
const manifest = JSON.parse(read("model/manifest.json"));
const mb = (bytes: number) => (bytes / 1e6).toFixed(1);

describe("README and model card figures", () => {
  it("engine ratios and the Workers heap come from bench/results/latest.json", () => {
    const row = (engine: string) => bench.engines.find((e: { engine: string; threads: number; file: string }) => e.engine === engine && e.threads === 1 && e.file.includes("quantized"));
    const web = (row("simd").decode_tok_s["128"] / row("web").decode_tok_s["128"]).toFixed(1);
    const native = (row("simd").decode_tok_s["128"] / row("native").decode_tok_s["128"]).toFixed(1);
    expect(readme).toContain(`decode ~${web}× faster than onnxruntime-web`);
    expect(readme).toContain(`~${native}× faster than a bare native onnxruntime loop`);
    const workers = bench.hosts.find((h: { host: string }) => h.host.startsWith("Cloudflare"));
    expect(readme).toContain(`measured by \`npm run bench\` at ${workers.wasm_heap_mb.toFixed(1)} MB`);
  });

  it("model sizes come from the model folder", () => {
    const graph = statSync(join(ROOT, "model/onnx/model_quantized.onnx")).size;
    expect(readme).toContain(`the int8 graph ${mb(graph)} MB`);
    expect(readme).toContain(`(int8, ${mb(graph)} MB)`);
    const ignored = read("model/.assetsignore").split("\n").filter(Boolean);
    const walk = (dir: string): string[] => readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((d) =>
      d.isDirectory() ? walk(join(dir, d.name)) : [join(dir, d.name).slice("model/".length)]);
    const assets = walk("model").filter((f) => !f.startsWith(".") && !ignored.some((i) => f === i || f.startsWith(`${i}/`)));
    const total = assets.reduce((sum, f) => sum + statSync(join(ROOT, "model", f)).size, 0);
    expect(readme).toContain(`the model assets the worker reads add ${mb(total)} MB`);
  });

  it("the model card's quality figures come from the manifest the export wrote", () => {
    const v = manifest.eval.validation;
    expect(card).toContain(`**${v.bits_per_byte.toFixed(3)} bits per byte**`);
    expect(card).toContain(`${v.val_loss.toFixed(3)} nats/token, ${v.bits_per_byte.toFixed(3)} bits/byte`);
    const first = manifest.eval.validation_first_262144_tokens;
    expect(card).toContain(`validation tokens: ${first.bits_per_byte.toFixed(3)}`);
    const p = manifest.parity;
    expect(card).toContain(`top-1 agreement ${(100 * p.int8_top1_agreement).toFixed(1)}%`);
    expect(card).toContain(`max |Δlogit| ${p.fp32_max_abs_logit_diff.toExponential(1)}`);
  });

  it("the parameter count comes from the manifest", () => {
    const total = manifest.parameters.total as number;
    expect(card).toContain(`| total | ${total.toLocaleString("en-US")} |`);
    expect(card).toContain(`A ${(total / 1e6).toFixed(1)}M-parameter`);
    expect(readme).toContain(`${(total / 1e6).toFixed(1)}M parameters`);
  });
});
