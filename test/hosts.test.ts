// The same host-agnostic API suite on workerd (wrangler dev) and Deno, each on 127.0.0.1, and the
// Node host in a process of its own with two WASM threads (ORT fixes its thread count per process).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiCases } from "./api-cases.js";
import { FIXTURE_DIR, parity } from "./helpers/fixture.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { standardFixture } from "./helpers/interop-fixtures.js";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";
import { freePort, spawnHost } from "./helpers/spawn.js";
import { DENO_RUN_ARGS } from "../src/hosts/config.js";

const ROOT = join(import.meta.dirname, "..");
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);
const tokenizer = loadTokenizer(FIXTURE_DIR);

/** wrangler dev (workerd) on a free loopback port with the fixture model; no Request.cf download, telemetry or update check. */
async function startWorker(extraArgs: string[] = [], anyStatus = false, config = "test/wrangler.fixture.toml"): Promise<RunningServer> {
  const port = await freePort();
  const args = ["dev", "-c", config, "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(await freePort()), ...extraArgs];
  const env = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true", NO_UPDATE_NOTIFIER: "1" };
  return spawnHost(bin("wrangler"), args, env, port, 90_000, anyStatus);
}

describe("Cloudflare Workers host (workerd via wrangler dev)", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startWorker()), 120_000);
  afterAll(() => server?.close());
  apiCases(() => server.baseURL);
});

describe("Workers host with a missing model asset", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startWorker(["--var", "ONNX_FILE:onnx/missing.onnx"], true)), 120_000);
  afterAll(() => server?.close());

  it("answers 503 with an OpenAI-style error naming the missing file, and keeps answering", async () => {
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${server.baseURL}/v1/models`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { message: string; code: string } };
      expect(body.error.code).toBe("model_not_loaded");
      expect(body.error.message).toContain("onnx/missing.onnx");
    }
    expect((await fetch(`${server.baseURL}/health`)).status).toBe(503);
  });
});

describe("Workers host with named keys and the rate-limiting binding", () => {
  let server: RunningServer;
  beforeAll(async () => {
    const secrets = join(mkdtempSync(join(tmpdir(), "keys-")), ".env");
    writeFileSync(secrets, "API_KEYS=carol:sk-carol-0123456789,dave:sk-dave-0123456789\n");
    server = await startWorker(["--env-file", secrets], false, "test/wrangler.keys.toml");
  }, 120_000);
  afterAll(() => server?.close());

  it("counts each key's generation requests in the binding: the third in a period is a 429 with Retry-After; the other key is unaffected; no key in the log", async () => {
    const respond = (key: string) => fetch(`${server.baseURL}/v1/responses`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "tinylm-fixture", input: "Hello", max_output_tokens: 4 }),
    });
    const carol = [];
    for (let i = 0; i < 3; i++) carol.push(await respond("sk-carol-0123456789"));
    expect(carol.map((r) => r.status)).toEqual([200, 200, 429]);
    expect(carol[2].headers.get("retry-after")).toBe("60");
    expect(((await carol[2].json()) as { error: object }).error).toMatchObject({ code: "rate_limit_exceeded", message: expect.stringContaining("carol") });
    expect((await respond("sk-dave-0123456789")).status).toBe(200);
    expect((await fetch(`${server.baseURL}/v1/models`, { headers: { Authorization: "Bearer sk-carol-0123456789" } })).status).toBe(200); // not a generation
    const metrics = await (await fetch(`${server.baseURL}/metrics`, { headers: { Authorization: "Bearer sk-dave-0123456789" } })).text();
    expect(metrics).toContain('tinylm_key_rate_limited_total{key="carol"} 1');
    expect(metrics).toContain('tinylm_key_requests_total{key="dave"} 2');
    for (const text of [metrics, server.log!()]) {
      expect(text).not.toContain("sk-carol");
      expect(text).not.toContain("sk-dave");
    }
  });
});

describe("Workers host with ENGINE=ort: our contract's graph reads its weights out of the standard file (external data)", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startWorker(["--var", "ENGINE:ort"])), 120_000);
  afterAll(() => server?.close());

  it("loads onnx/model_quantized.tinylm.onnx and generates PyTorch's greedy continuation", async () => {
    const models = (await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { meta: { ort_graph: unknown } }[] };
    expect(models.data[0].meta.ort_graph).toEqual({ file: "onnx/model_quantized.tinylm.onnx", contract: "tinylm" });
    const g = parity.greedy[0];
    const res = await fetch(`${server.baseURL}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "tinylm-fixture", prompt: g.prompt, max_tokens: 8, temperature: 0 }),
    });
    const body = (await res.json()) as { choices: { text: string }[] };
    const eos = g.tokens.slice(0, 8).indexOf(tokenizer.eosId!);
    expect(body.choices[0].text).toBe(tokenizer.decode(g.tokens.slice(0, eos >= 0 ? eos : 8)));
  });
});

describe("Deno host", () => {
  let server: RunningServer;
  beforeAll(async () => {
    const port = await freePort();
    server = await spawnHost(
      bin("deno"),
      DENO_RUN_ARGS,
      { MODEL_DIR: FIXTURE_DIR.replace(`${ROOT}/`, ""), PORT: String(port), HOST: "127.0.0.1", DENO_NO_UPDATE_CHECK: "1" },
      port,
    );
  }, 120_000);
  afterAll(() => server?.close());
  apiCases(() => server.baseURL);
});

describe("Node host with THREADS=2", () => {
  let server: RunningServer;
  beforeAll(async () => {
    const port = await freePort();
    server = await spawnHost(bin("tsx"), ["src/hosts/node.ts"], { MODEL_DIR: FIXTURE_DIR, PORT: String(port), HOST: "127.0.0.1", THREADS: "2", ONNX_FILE: "onnx/model.onnx" }, port);
  }, 120_000);
  afterAll(() => server?.close());

  it("loads and gives PyTorch's greedy continuation", async () => {
    for (const g of parity.greedy) {
      const res = await fetch(`${server.baseURL}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tinylm-fixture", prompt: g.prompt, max_tokens: g.tokens.length, temperature: 0 }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { text: string }[] };
      const eos = g.tokens.indexOf(tokenizer.eosId!);
      expect(body.choices[0].text).toBe(tokenizer.decode(eos >= 0 ? g.tokens.slice(0, eos) : g.tokens));
    }
  });
});

// The same suite on a folder with only standard-contract graphs (Optimum / transformers.js layout),
// served by onnxruntime-web through the standard decoder, on every host.
describe("standard-contract folder on every host (ENGINE=ort)", () => {
  const hosts: [string, () => Promise<RunningServer>][] = [
    ["workerd", () => startWorker([], false, "test/wrangler.standard.toml")],
    ["Deno", async () => {
      const port = await freePort();
      return spawnHost(bin("deno"), DENO_RUN_ARGS, { MODEL_DIR: relative(ROOT, standardFixture()), ENGINE: "ort", PORT: String(port), HOST: "127.0.0.1", DENO_NO_UPDATE_CHECK: "1" }, port);
    }],
    ["Node", () => startFixtureServer({ MODEL_DIR: standardFixture(), ENGINE: "ort" })],
  ];
  for (const [host, start] of hosts) {
    describe(host, () => {
      let server: RunningServer;
      beforeAll(async () => {
        standardFixture();
        server = await start();
      }, 120_000);
      afterAll(() => server?.close());

      it("runs the standard graph itself", async () => {
        const models = (await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { meta: { engine: string; ort_graph: unknown; v8: string | null } }[] };
        expect(models.data[0].meta).toMatchObject({ engine: "ort", ort_graph: { file: "onnx/model_quantized.onnx", contract: "standard" } });
        // V8's version where the runtime tells it (Node, Deno); workerd does not.
        if (host === "workerd") expect(models.data[0].meta.v8).toBeNull();
        else expect(models.data[0].meta.v8).toMatch(/^\d+\.\d+\.\d+/);
      });
      apiCases(() => server.baseURL);
    });
  }
});
