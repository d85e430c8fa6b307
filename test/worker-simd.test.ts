// The Workers build without onnxruntime-web (src/hosts/worker-simd.ts, wrangler.simd.toml): its
// bundle holds none of ORT, it serves a completion on our kernels under workerd, and a model only
// onnxruntime-web can run is a load error that says so.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_DIR, folderReader, KERNELS_WASM, parity } from "./helpers/fixture.js";
import { freePort, spawnHost } from "./helpers/spawn.js";
import type { RunningServer } from "./helpers/server.js";
import { loadModel } from "../src/model.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";

const ROOT = join(import.meta.dirname, "..");
const wrangler = join(ROOT, "node_modules/.bin/wrangler");
const ENV = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true", NO_UPDATE_NOTIFIER: "1" };
const tokenizer = loadTokenizer(FIXTURE_DIR);

describe("Workers build without onnxruntime-web", () => {
  it("bundles no module of onnxruntime-web and no ORT .wasm (wrangler deploy --dry-run)", () => {
    const out = mkdtempSync(join(tmpdir(), "simd-bundle-"));
    execFileSync(wrangler, ["deploy", "-c", "wrangler.simd.toml", "--dry-run", "--outdir", out, "--metafile", join(out, "meta.json")],
      { cwd: ROOT, env: { ...process.env, ...ENV }, stdio: "pipe" });
    const meta = JSON.parse(readFileSync(join(out, "meta.json"), "utf8")) as { inputs: Record<string, unknown> };
    const inputs = Object.keys(meta.inputs);
    expect(inputs).toContain("src/hosts/worker-simd.ts");
    expect(inputs.filter((p) => p.includes("onnxruntime"))).toEqual([]);
    const wasm = readdirSync(out).filter((f) => f.endsWith(".wasm")).map((f) => f.replace(/^[0-9a-f]+-/, "")).sort();
    expect(wasm).toEqual(["kernels.wasm", "relaxed.wasm"]);
  }, 60_000);

  describe("under workerd (wrangler dev, test/wrangler.simd.toml)", () => {
    let server: RunningServer;
    beforeAll(async () => {
      const port = await freePort();
      server = await spawnHost(wrangler, ["dev", "-c", "test/wrangler.simd.toml", "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(await freePort())], ENV, port);
    }, 120_000);
    afterAll(() => server?.close());

    it("serves the fixture on our kernels: PyTorch's greedy continuation", async () => {
      const models = (await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { meta: { engine: string } }[] };
      expect(models.data[0].meta.engine).toBe("simd");
      const g = parity.greedy[0];
      const res = await fetch(`${server.baseURL}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tinylm-fixture", prompt: g.prompt, max_tokens: 8, temperature: 0 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { text: string }[] };
      const eos = g.tokens.slice(0, 8).indexOf(tokenizer.eosId!);
      expect(body.choices[0].text).toBe(tokenizer.decode(g.tokens.slice(0, eos >= 0 ? eos : 8)));
    });
  });

  // A folder deployed as Workers need it for a larger model: the pack in parts, the checkpoint left out
  // (manifest.json vouches for it); the isolate reads the parts one at a time into the kernels' memory.
  describe("under workerd: a folder of only the pack, in parts", () => {
    let server: RunningServer, deploy: string;
    beforeAll(async () => {
      const tmp = mkdtempSync(join(tmpdir(), "simd-parts-"));
      deploy = join(tmp, "model");
      cpSync(FIXTURE_DIR, deploy, { recursive: true });
      execFileSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/pack.ts", deploy, "--part-mib", "0.1"], { cwd: ROOT });
      rmSync(join(deploy, "onnx"), { recursive: true });
      writeFileSync(join(tmp, "wrangler.toml"), [
        `name = "tinylm-edge-test-parts"`, `main = ${JSON.stringify(join(ROOT, "src/hosts/worker-simd.ts"))}`, `compatibility_date = "2025-09-01"`,
        `compatibility_flags = ["nodejs_compat"]`, "[assets]", `directory = "./model"`, `binding = "ASSETS"`, "run_worker_first = true", "[vars]", `ENGINE = "simd"`,
      ].join("\n"));
      const port = await freePort();
      server = await spawnHost(wrangler, ["dev", "-c", join(tmp, "wrangler.toml"), "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(await freePort())], ENV, port);
    }, 120_000);
    afterAll(() => server?.close());

    it("serves PyTorch's greedy continuation from the parts, with no ONNX graph uploaded", async () => {
      const parts = readdirSync(deploy).filter((f) => f.startsWith("kernels.pack"));
      expect(parts.length).toBeGreaterThan(2);
      expect(Math.max(...parts.map((f) => statSync(join(deploy, f)).size))).toBeLessThanOrEqual(0.1 * 2 ** 20);
      const g = parity.greedy[0];
      const res = await fetch(`${server.baseURL}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tinylm-fixture", prompt: g.prompt, max_tokens: 8, temperature: 0 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { text: string }[] };
      const eos = g.tokens.slice(0, 8).indexOf(tokenizer.eosId!);
      expect(body.choices[0].text).toBe(tokenizer.decode(g.tokens.slice(0, eos >= 0 ? eos : 8)));
      const models = (await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { meta: { engine: string } }[] };
      expect(models.data[0].meta.engine).toBe("simd");
    });
  });

  it("a graph only onnxruntime-web runs, or ENGINE=ort, is a load error naming the build", async () => {
    const kernels = async () => WebAssembly.compile(readFileSync(KERNELS_WASM));
    const base = { ort: null, kernels, engine: { maxBatch: 1, maxQueue: 1, prefixCache: false }, log: () => {} };
    const read = folderReader(FIXTURE_DIR);
    await expect(loadModel(read, { ...base, onnxFile: "onnx/model.onnx" })).rejects.toThrow(
      /the kernels cannot run onnx\/model\.onnx \(.*\), and this build has no onnxruntime-web \(the Workers ENGINE=simd build/);
    await expect(loadModel(read, { ...base, backend: "ort", onnxFile: "onnx/model_quantized.onnx" })).rejects.toThrow(/ENGINE=ort, but this build has no onnxruntime-web/);
  });
});
