// Interop both ways: transformers.js runs our exported folders (token-identical to our server at
// temperature 0), and our server runs a decoder our tooling did not shape (torch.onnx.export with
// Hugging Face's names, MatMulInteger quantization, untied head, Llama 2's tokenizer) on our kernels,
// its weights lifted out of the graph.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AutoModelForCausalLM, AutoTokenizer, env, pipeline } from "@huggingface/transformers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type ReadModelFile } from "../src/model.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { nodeOrt } from "../src/node-runtime.js";
import { FIXTURE_DIR } from "./helpers/fixture.js";
import { foreignFixture } from "./helpers/interop-fixtures.js";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";

env.allowRemoteModels = false;
env.localModelPath = "/";
const ROOT = join(import.meta.dirname, "..");
const PROMPTS = ["The old man said", "Once upon a time there was", "It was the best of times"];
const NEW_TOKENS = 16;

/** transformers.js greedy continuations (token ids) of each prompt, as a user of that library gets them. */
async function transformersJs(dir: string, dtype: "q8" | "fp32"): Promise<number[][]> {
  const tokenizer = await AutoTokenizer.from_pretrained(dir);
  const model = await AutoModelForCausalLM.from_pretrained(dir, { dtype });
  const out: number[][] = [];
  for (const prompt of PROMPTS) {
    const inputs = tokenizer(prompt);
    const ids = (await model.generate({ ...inputs, max_new_tokens: NEW_TOKENS, do_sample: false })) as { tolist(): bigint[][] };
    out.push(ids.tolist()[0].map(Number).slice(inputs.input_ids.dims[1]));
  }
  await model.dispose();
  return out;
}

/** Our server's greedy continuations, through /v1/completions, as text and token count. */
async function ours(server: RunningServer, model: string): Promise<{ text: string; tokens: number }[]> {
  const out = [];
  for (const prompt of PROMPTS) {
    const res = await fetch(`${server.baseURL}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model, prompt, max_tokens: NEW_TOKENS, temperature: 0 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    out.push({ text: body.choices[0].text, tokens: body.usage.completion_tokens });
  }
  return out;
}

async function expectSameTokens(dir: string, server: RunningServer, model: string, dtype: "q8" | "fp32") {
  const [theirs, mine] = [await transformersJs(dir, dtype), await ours(server, model)];
  const tokenizer = loadTokenizer(dir); // the server's own id → text, so the comparison is token for token
  theirs.forEach((ids, i) => {
    const eos = ids.indexOf(tokenizer.eosId ?? -1);
    const kept = eos >= 0 ? ids.slice(0, eos) : ids; // our server stops at end-of-text without returning it
    expect(mine[i]).toEqual({ text: tokenizer.decode(kept), tokens: eos >= 0 ? eos + 1 : ids.length });
  });
}

describe("transformers.js runs our exported folders", () => {
  for (const [name, dir, id] of [["the test fixture", FIXTURE_DIR, "tinylm-fixture"], ["the shipped model", join(ROOT, "model"), "tinylm-edge-14m"]] as const) {
    describe(name, () => {
      let server: RunningServer;
      beforeAll(async () => (server = await startFixtureServer({ MODEL_DIR: dir, ENGINE: "ort" })));
      afterAll(() => server?.close());

      it("q8 (the default dtype config.json names): greedy tokens equal our server's on onnxruntime-web", async () => {
        await expectSameTokens(dir, server, id, "q8");
      });

      it("pipeline(\"text-generation\") with no options (config.json's default dtype) writes prompt + our completion", async () => {
        const generate = await pipeline("text-generation", dir);
        const mine = await ours(server, id);
        for (const [i, prompt] of PROMPTS.entries()) {
          const [out] = (await generate(prompt, { max_new_tokens: NEW_TOKENS, do_sample: false })) as { generated_text: string }[];
          expect(out.generated_text).toBe(prompt + mine[i].text);
        }
        await generate.dispose();
      });

      it("and equal our own WASM SIMD kernels' on these prompts", async () => {
        const simd = await startFixtureServer({ MODEL_DIR: dir });
        try {
          await expectSameTokens(dir, simd, id, "q8");
        } finally {
          await simd.close();
        }
      });
    });
  }

  it("fp32 (the fixture keeps its fp32 graph)", async () => {
    const server = await startFixtureServer({ ONNX_FILE: "onnx/model.onnx" });
    try {
      await expectSameTokens(FIXTURE_DIR, server, "tinylm-fixture", "fp32");
    } finally {
      await server.close();
    }
  });
});

describe("our server runs a standard ONNX decoder it did not export", () => {
  let dir: string;
  beforeAll(() => void (dir = foreignFixture()), 120_000);

  for (const [dtype, file] of [["q8", "onnx/model_quantized.onnx"], ["fp32", "onnx/model.onnx"]] as const) {
    // q8's tokens are compared on onnxruntime-web (ENGINE=ort), whose MatMulInteger arithmetic is transformers.js's: our kernels
    // requantize the lifted weights per row, so their greedy tokens may part from it at a near-tie (test/onnx-lift.test.ts holds
    // the kernels to the PyTorch reference instead).
    const where = dtype === "q8" ? "on onnxruntime-web (ENGINE=ort)" : "on our kernels";
    it(`${file} (${dtype}): runs on our kernels, its weights lifted out of the graph; ${where}, matches transformers.js token for token`, async () => {
      const server = await startFixtureServer({ MODEL_DIR: dir, ONNX_FILE: file });
      const ort = dtype === "q8" ? await startFixtureServer({ MODEL_DIR: dir, ONNX_FILE: file, ENGINE: "ort" }) : null;
      try {
        const models = (await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { id: string; meta: { engine: string; engine_fallback_reason: string | null; quantization: string } }[] };
        expect(models.data[0].meta).toMatchObject({ engine: "simd", engine_fallback_reason: null });
        expect(models.data[0].meta.quantization).toMatch(dtype === "q8" ? /from the graph's int8 MatMulInteger, a scale per column$/ : /from the graph's F32 MatMul$/);
        await expectSameTokens(dir, ort ?? server, models.data[0].id, dtype);
      } finally {
        await Promise.all([server.close(), ort?.close()]);
      }
    });
  }

  // On onnxruntime-web (ENGINE=ort): the graphs' inputs and outputs are what differ, and our kernels read only their weights.
  it("on onnxruntime-web, a float16 cache (model_kv16.onnx) and a graph without position_ids (model_no_position_ids.onnx): the fp32 graph's greedy tokens", async () => {
    const fp32 = await startFixtureServer({ MODEL_DIR: dir, ONNX_FILE: "onnx/model.onnx", ENGINE: "ort" });
    try {
      const expected = await ours(fp32, "tinylm-edge");
      for (const file of ["onnx/model_kv16.onnx", "onnx/model_no_position_ids.onnx"]) {
        const variant = await startFixtureServer({ MODEL_DIR: dir, ONNX_FILE: file, ENGINE: "ort" });
        try {
          expect(await ours(variant, "tinylm-edge")).toEqual(expected);
        } finally {
          await variant.close();
        }
      }
    } finally {
      await fp32.close();
    }
  });

  it("a vocab_size padded past the tokenizer (as Qwen2 and Phi-3): the padded ids, made to win every argmax, are never emitted", async () => {
    const padded = foreignFixture({ padVocab: 64 });
    expect(JSON.parse(readFileSync(join(padded, "config.json"), "utf8")).vocab_size).toBe(32064);
    const plain = await startFixtureServer({ MODEL_DIR: dir, ONNX_FILE: "onnx/model.onnx" });
    const wide = await startFixtureServer({ MODEL_DIR: padded, ONNX_FILE: "onnx/model.onnx" });
    try {
      expect(await ours(wide, "tinylm-edge")).toEqual(await ours(plain, "tinylm-edge"));
      const res = await fetch(`${wide.baseURL}/v1/completions`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "tinylm-edge", prompt: "Once", max_tokens: 8, temperature: 1.5, seed: 3, logprobs: 5 }),
      });
      const body = (await res.json()) as { choices: { logprobs: { top_logprobs: Record<string, number>[] } }[] };
      expect(res.status).toBe(200);
      for (const top of body.choices[0].logprobs.top_logprobs) {
        const total = Object.values(top).reduce((a, l) => a + Math.exp(l), 0);
        expect(total).toBeLessThanOrEqual(1.0001); // renormalised over the real ids
      }
    } finally {
      await Promise.all([plain.close(), wide.close()]);
    }
  });

  it("adds Llama 2's <s> to raw prompts as tokenizer(text) does, streams the same text, round-trips /tokenize, and refuses chat without a template", async () => {
    const server = await startFixtureServer({ MODEL_DIR: dir });
    const post = (path: string, body: unknown) => fetch(`${server.baseURL}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    try {
      const model = "tinylm-edge";
      const whole = (await (await post("/v1/completions", { model, prompt: "Once upon a time", max_tokens: 10, temperature: 0 })).json()) as
        { choices: { text: string }[]; usage: { prompt_tokens: number } };
      expect(whole.usage.prompt_tokens).toBe(5); // <s> ▁Once ▁upon ▁a ▁time
      const sse = await (await post("/v1/completions", { model, prompt: "Once upon a time", max_tokens: 10, temperature: 0, stream: true })).text();
      const streamed = sse.split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)).choices[0].text).join("");
      expect(streamed).toBe(whole.choices[0].text);
      const text = "Once upon a time,\n👑 naïve";
      const { tokens } = (await (await post("/tokenize", { content: text })).json()) as { tokens: number[] };
      expect(((await (await post("/detokenize", { tokens })).json()) as { content: string }).content).toBe(text);
      const chat = await post("/v1/chat/completions", { model, messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
      expect(chat.status).toBe(400);
      expect(((await chat.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: "model_not_chat", message: expect.stringContaining("chat template") });
    } finally {
      await server.close();
    }
  });
});

describe("a folder the server cannot run is a clear error at load, naming the file and the field", () => {
  const ort = nodeOrt(1);
  const base = { ort, backend: "ort" as const, engine: { maxBatch: 2, maxQueue: 4, prefixCache: false } };
  /** The fixture's files, with some replaced. */
  const folder = (replace: Record<string, Uint8Array | string | null> = {}): ReadModelFile => async (path) => {
    if (path in replace) {
      const v = replace[path];
      if (v === null) throw new Error(`${path}: not found`);
      return typeof v === "string" ? new TextEncoder().encode(v) : v;
    }
    return readFileSync(join(FIXTURE_DIR, path));
  };
  const config = JSON.parse(readFileSync(join(FIXTURE_DIR, "config.json"), "utf8"));
  const onnxFile = "onnx/model_quantized.onnx";

  it("an architecture that is not Llama-like", async () => {
    await expect(loadModel(folder({ "config.json": JSON.stringify({ ...config, model_type: "gpt2" }) }), { ...base, onnxFile }))
      .rejects.toThrow(/config\.json: "model_type" is "gpt2"; this server runs Llama-family decoders/);
  });

  it("a graph lacking an input the config implies, and one in no decoder contract", async () => {
    const noCompanion = { "onnx/model_quantized.tinylm.onnx": null };
    await expect(loadModel(folder({ ...noCompanion, "config.json": JSON.stringify({ ...config, num_hidden_layers: 3 }) }), { ...base, onnxFile }))
      .rejects.toThrow(/onnx\/model_quantized\.onnx: the graph lacks input "past_key_values\.2\.key" \(config\.json has 3 layers\)/);
    const matmul = readFileSync(join(ROOT, "bench/matmul.onnx"));
    await expect(loadModel(folder({ [onnxFile]: matmul, "onnx/model_quantized.tinylm.onnx": null, "manifest.json": null }), { ...base, onnxFile }))
      .rejects.toThrow(/onnx\/model_quantized\.onnx: the graph lacks input "input_ids"|follow no decoder contract/);
  });

  it("a tokenizer larger than vocab_size, and a vocab_size the graph's logits do not have", async () => {
    await expect(loadModel(folder({ "config.json": JSON.stringify({ ...config, vocab_size: 4096 }) }), { ...base, onnxFile }))
      .rejects.toThrow(/tokenizer\.json has 8192 tokens, more than config\.json's vocab_size 4096/);
    await expect(loadModel(folder({ "config.json": JSON.stringify({ ...config, vocab_size: 8256 }) }), { ...base, onnxFile }))
      .rejects.toThrow(/onnx\/model_quantized\.tinylm\.onnx: the graph's logits have 8192 entries per position, config\.json's vocab_size is 8256/);
  });

  it("a chat template that is neither a string nor a named list", async () => {
    const tc = JSON.parse(readFileSync(join(FIXTURE_DIR, "tokenizer_config.json"), "utf8"));
    await expect(loadModel(folder({ "tokenizer_config.json": JSON.stringify({ ...tc, chat_template: 42 }) }), { ...base, onnxFile }))
      .rejects.toThrow(/tokenizer_config\.json: "chat_template" must be a string/);
    const named = await loadModel(folder({ "tokenizer_config.json": JSON.stringify({ ...tc, chat_template: [{ name: "default", template: "{{ messages[0]['content'] }}!" }] }) }), { ...base, onnxFile });
    expect(named.chatTemplate!.render([{ role: "user", content: "hi" }])).toBe("hi!");
  });
});
