// Checkpoints as they come from a hub, on our kernels: each architecture (llama with Llama 3's rope
// scaling, head_dim ≠ hidden/heads and an untied head; mistral's sliding window; qwen2's q/k/v biases;
// qwen3's q/k RMSNorm) as a safetensors folder and as a GGUF file with its own vocabulary, against
// the PyTorch reference on the same stored weights (scripts/tinylm/checkpoints.py).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { greedy } from "../scripts/parity.js";
import type { Decoder } from "../src/engine/decoder.js";
import { checkGgufVocabulary, locateCheckpoint, readCheckpoint } from "../src/formats/checkpoint.js";
import { ggufDescription, ggufVocab, parseGguf } from "../src/formats/gguf.js";
import { Tokenizer } from "../src/tokenizer/tokenizer.js";
import { parseSafetensors } from "../src/formats/safetensors.js";
import { tokenizerJsonFromGguf } from "../src/tokenizer/gguf-vocab.js";
import { sampleTexts } from "./helpers/corpus-sample.js";
import { loadModel } from "../src/model.js";
import { nodeOrt } from "../src/node-runtime.js";
import { KERNELS_WASM, RELAXED_WASM, folderReader } from "./helpers/fixture.js";
import { CHECKPOINT_ARCHS, checkpointFixtures } from "./helpers/interop-fixtures.js";
import { DECISIVE, logSoftmax, reference, top2, type Reference } from "./helpers/checkpoint-reference.js";

const ROOT = checkpointFixtures();
const kernels = () => WebAssembly.compile(readFileSync(KERNELS_WASM));
const relaxed = () => WebAssembly.compile(readFileSync(RELAXED_WASM));
const base = { ort: nodeOrt(1), kernels, engine: { maxBatch: 4, maxQueue: 8, prefixCache: false }, onnxFile: "onnx/model_quantized.onnx", log: () => {} };

/**
 * Fed the reference's tokens, row by row: mean KL(reference ‖ ours), our argmax where the
 * reference's choice is decisive, and how many greedy steps each prompt has before its first near-tie.
 */
async function compare(dec: Decoder, ref: Reference) {
  const V = dec.shape.vocabSize;
  let kl = 0, row = 0, decisive = 0, agree = 0;
  const decisivePrefix: number[] = [];
  for (const [i, prompt] of ref.prompts.entries()) {
    const cache = dec.newCache();
    let feed = prompt, prefix = -1;
    for (const [j, next] of ref.greedy[i].entries()) {
      const [{ logits }] = await dec.step([{ cache, tokens: feed }]);
      const refRow = ref.logits.subarray(row * V, (row + 1) * V), ours = logits.subarray(logits.length - V);
      const p = logSoftmax(refRow), q = logSoftmax(ours);
      for (let k = 0; k < V; k++) kl += Math.exp(p[k]) * (p[k] - q[k]);
      const { best, gap } = top2(refRow);
      expect(best).toBe(next);
      if (gap >= DECISIVE) {
        decisive++;
        if (top2(ours).best === best) agree++;
      } else if (prefix < 0) prefix = j;
      row++;
      feed = [next];
    }
    decisivePrefix.push(prefix < 0 ? ref.greedy[i].length : prefix);
  }
  return { kl: kl / row, decisive, agree, decisivePrefix };
}

const cases = CHECKPOINT_ARCHS.flatMap((arch) => [
  { arch, format: "safetensors", dir: join(ROOT, `${arch}-safetensors`) },
  { arch, format: "gguf", dir: join(ROOT, `${arch}-gguf`) },
]);

// Each kernel variant on half the cases (relaxed SIMD on the GGUF files, plain SIMD128 on the safetensors folders), to keep CI short.
describe.each(cases)("$arch as $format", ({ arch, format, dir }) => {
  const variant = format === "gguf" ? "relaxed-simd" : "simd128";
  it(`loads on our kernels (${variant}, no fallback); greedy continuation equals the PyTorch reference's; mean KL reported`, async () => {
    const files = ["model.gguf", "model.safetensors", "model.safetensors.index.json"].filter((f) => existsSync(join(dir, f)));
    const m = await loadModel(folderReader(dir), { ...base, relaxed: variant === "relaxed-simd" ? relaxed : undefined, files });
    expect(m.backend).toMatchObject({ name: "simd", kernels: variant, reason: null });
    expect(m.weights).toMatchObject({ format, architecture: arch });
    // GGUF's Q8_0 / Q4_0 blocks are kept as they are; float weights become 8-bit rows (WEIGHT_BITS=8).
    expect(m.weights.quantization).toMatch(/^projections (8-bit, a scale per row|8-bit, a scale per 32 values|4-bit, a scale per 32 values), embedding .*; from /);
    expect(m.onnxFile).toBeNull();
    const dec = m.engine.decoder;
    const ref = reference(dir);
    const { kl, decisive, agree, decisivePrefix } = await compare(dec, ref);
    console.log(`${arch} ${format} (${m.weights.quantization?.replace(/.* from /, "")} → ${m.weights.quantization?.replace(/;.*/, "")}) on ${variant}, vs PyTorch fp32: mean KL ${kl.toExponential(2)}; argmax agrees on ${agree}/${decisive} decisive rows (of ${ref.greedy.flat().length})`);
    expect(agree).toBe(decisive);
    expect(decisive).toBeGreaterThanOrEqual(4);
    expect(kl).toBeLessThan(0.02);
    // Our own greedy decode (cache, rows, prefill) follows the reference up to its first near-tie.
    for (const [i, prompt] of ref.prompts.entries()) {
      const n = decisivePrefix[i];
      expect((await greedy(dec, prompt, ref.greedy[i].length)).slice(0, n)).toEqual(ref.greedy[i].slice(0, n));
    }
  });
});

// int4 (WEIGHT_BITS=4), 7-bit rows (WEIGHT_BITS=7) and the int8 KV cache (KV_CACHE=int8) on checkpoints, reported beside the int8 rows above.
describe.each([
  { arch: "qwen2", opts: { weightBits: 4 as const }, what: "int4 projections (q4_32)", maxKl: 0.05, agreeShare: 0.75 },
  { arch: "llama", opts: { weightBits: 7 as const }, what: "7-bit rows (q7), the embedding too", maxKl: 0.02, agreeShare: 0.75 },
  { arch: "mistral", opts: { kvCache: "int8" as const }, what: "int8 KV cache within the sliding window", maxKl: 0.02, agreeShare: 1 },
  // head_dim 16, 4 query heads per KV head: relaxed SIMD's integer attention loops, the window masked in the softmax they fold in
  { arch: "mistral", opts: { kvCache: "int8" as const, relaxed }, what: "int8 KV cache within the sliding window, relaxed SIMD", maxKl: 0.02, agreeShare: 1 },
])("$arch safetensors, $what", ({ arch, opts, what, maxKl, agreeShare }) => {
  it("loads on our kernels and follows the PyTorch reference on the decisive rows", async () => {
    const dir = join(ROOT, `${arch}-safetensors`);
    const m = await loadModel(folderReader(dir), { ...base, ...opts, files: ["model.safetensors"] });
    if (opts.weightBits === 4) expect(m.weights.quantization).toMatch(/^projections 4-bit, a scale per 32 values, embedding 8-bit, a scale per row;/);
    if (opts.weightBits === 7) expect(m.weights.quantization).toMatch(/^projections 7-bit, a scale per row, embedding 7-bit, a scale per row;/);
    const { kl, decisive, agree } = await compare(m.engine.decoder, reference(dir));
    console.log(`${arch} safetensors, ${what}, ${m.backend.kernels} vs PyTorch fp32: mean KL ${kl.toExponential(2)}; argmax agrees on ${agree}/${decisive} decisive rows`);
    expect(kl).toBeLessThan(maxKl);
    expect(agree).toBeGreaterThanOrEqual(Math.ceil(decisive * agreeShare));
  });
});

describe("MAX_CONTEXT below the model's context", () => {
  it("serves at most that many positions: the engine's context and the kernels' cache are capped", async () => {
    const dir = join(ROOT, "qwen2-gguf");
    const m = await loadModel(folderReader(dir), { ...base, files: ["model.gguf"], maxContext: 24 });
    expect(m.engine.maxLength).toBe(24);
    const cache = m.engine.decoder.newCache();
    await m.engine.decoder.step([{ cache, tokens: Array.from({ length: 24 }, (_, i) => 100 + i) }]);
    await expect(m.engine.decoder.step([{ cache, tokens: [1] }])).rejects.toThrow(/context of 25 tokens exceeds the model's 24/);
  });
});

describe("a GGUF's own vocabulary (no tokenizer.json beside it)", () => {
  it.each([["llama", "SentencePiece BPE, byte fallback"], ["qwen2", "byte-level BPE, cl100k"]])("%s (%s) encodes and decodes as the tokenizer.json it came from", async (arch) => {
    const texts = [...(await sampleTexts(2, 1, 20_000)), "Ünïcödé — 日本語 🤖 tabs\tand\nnewlines   spaces, digits 1234567 and <s> </s> <|endoftext|>"];
    const st = join(ROOT, `${arch}-safetensors`);
    const fromJson = Tokenizer.fromJSON(JSON.parse(readFileSync(join(st, "tokenizer.json"), "utf8")), JSON.parse(readFileSync(join(st, "tokenizer_config.json"), "utf8")));
    const vocab = ggufVocab(parseGguf(new Uint8Array(readFileSync(join(ROOT, `${arch}-gguf/model.gguf`))), "model.gguf"), "model.gguf")!;
    const built = tokenizerJsonFromGguf(vocab, "model.gguf");
    const fromGguf = Tokenizer.fromJSON(built.json, built.config);
    expect(fromGguf.vocabSize).toBe(fromJson.vocabSize);
    expect([fromGguf.bosId, fromGguf.eosId]).toEqual([fromJson.bosId, fromJson.eosId]);
    for (const text of texts) {
      const ids = fromJson.encode(text);
      expect(fromGguf.encode(text)).toEqual(ids);
      expect(fromGguf.encode(text, { addSpecial: true })).toEqual(fromJson.encode(text, { addSpecial: true }));
      expect(fromGguf.decodeText(ids)).toBe(fromJson.decodeText(ids));
    }
  });
});

describe("bad checkpoints: a clear error at load naming file and field", () => {
  const st = readFileSync(join(ROOT, "qwen2-safetensors/model.safetensors"));
  const gguf = readFileSync(join(ROOT, "qwen2-gguf/model.gguf"));
  const stHeader = () => JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString());
  const withHeader = (header: unknown) => {
    const json = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json, st.subarray(8 + Number(st.readBigUInt64LE(0)))]);
  };
  const tensorName = "model.layers.0.self_attn.q_proj.weight";

  it("safetensors: truncated, a header that lies, an unsupported dtype", () => {
    expect(() => parseSafetensors(st.subarray(0, 5), "model.safetensors")).toThrow(/model\.safetensors: truncated/);
    expect(() => parseSafetensors(st.subarray(0, 1000), "model.safetensors")).toThrow(/model\.safetensors: header length \d+ runs past the end/);
    expect(() => parseSafetensors(st.subarray(0, st.length - 10), "model.safetensors")).toThrow(/model\.safetensors: tensor ".+" "data_offsets" \[\d+, \d+\] run past the data/);
    const h = stHeader();
    h[tensorName].data_offsets[1] += 2;
    expect(() => parseSafetensors(withHeader(h), "model.safetensors")).toThrow(`model.safetensors: tensor "${tensorName}" holds`);
    const d = stHeader();
    d[tensorName].dtype = "I32";
    expect(() => parseSafetensors(withHeader(d), "model.safetensors")).toThrow(`model.safetensors: tensor "${tensorName}" has dtype "I32"; supported: F32, F16, BF16`);
    const s = stHeader();
    s[tensorName].shape = [32, 64];
    expect(() => parseSafetensors(withHeader(s), "model.safetensors")).toThrow(`tensor "${tensorName}" holds 8192 bytes, BF16 [32,64] is 4096`);
  });

  it("config.json: an architecture or feature outside the list; tensors that do not fit it", async () => {
    const config = JSON.parse(readFileSync(join(ROOT, "qwen2-safetensors/config.json"), "utf8"));
    const read = (overrides: Record<string, unknown>) => async (path: string) =>
      path === "config.json" ? new TextEncoder().encode(JSON.stringify({ ...config, ...overrides })) : folderReader(join(ROOT, "qwen2-safetensors"))(path);
    await expect(loadModel(read({ model_type: "gpt2" }), base)).rejects.toThrow(`config.json: "model_type" is "gpt2"; the kernels run llama, mistral, qwen2, qwen3`);
    await expect(loadModel(read({ rope_scaling: { rope_type: "yarn", factor: 4 } }), base)).rejects.toThrow(`config.json: "rope_scaling" of type "yarn" is not supported`);
    await expect(loadModel(read({ use_sliding_window: true }), base)).rejects.toThrow(`config.json: "use_sliding_window" true is not supported for qwen2`);
    await expect(loadModel(read({ hidden_act: "gelu" }), base)).rejects.toThrow(`config.json: "hidden_act" "gelu" is not supported`);
    await expect(loadModel(read({ num_hidden_layers: 3 }), base)).rejects.toThrow(`model.safetensors: no tensor "model.layers.2.input_layernorm.weight"`);
    await expect(loadModel(read({ intermediate_size: 256 }), base)).rejects.toThrow(`model.safetensors: tensor "model.layers.0.mlp.gate_proj.weight" has shape [128,64], the architecture needs [256,64]`);
    await expect(loadModel(read({ tie_word_embeddings: false }), base)).rejects.toThrow(`no tensor "lm_head.weight"`);
    await expect(loadModel(read({ model_type: "llama", attention_bias: false }), base)).rejects.toThrow(`model.safetensors: tensor "model.layers.0.self_attn.q_proj.bias" is not part of a llama decoder`);
    await expect(loadModel(read({ vocab_size: 50_000 }), base)).rejects.toThrow(/tokenizer\.json has 100277 tokens, more than the embedding's rows 50000|has shape \[100277,64\], the architecture needs \[50000,64\]/);
    await expect(loadModel(read({}), { ...base, backend: "ort" })).rejects.toThrow(/ENGINE=ort, but onnxruntime-web runs ONNX graphs only; model\.safetensors \(safetensors\) runs on our WASM kernels/);
  });

  it("GGUF: truncated, a header that lies, an unsupported type or architecture, a vocabulary that does not match the embedding", () => {
    expect(() => parseGguf(gguf.subarray(0, 3), "model.gguf")).toThrow(/model\.gguf: truncated at byte 0 reading the magic/);
    expect(() => parseGguf(gguf.subarray(0, 5000), "model.gguf")).toThrow(/model\.gguf: truncated at byte \d+ reading metadata "tokenizer\.ggml\.tokens"/);
    expect(() => parseGguf(gguf.subarray(0, gguf.length - 100), "model.gguf")).toThrow(/model\.gguf: tensor ".+" \(\d+ bytes at offset \d+\) runs past the end of the file/);
    const g = parseGguf(gguf, "model.gguf");
    // The header's tensor infos, patched in place: find one by its name.
    const patch = (name: string, edit: (view: DataView, typeAt: number) => void) => {
      const copy = Buffer.from(gguf), at = copy.indexOf(Buffer.from(name)) + name.length;
      const nDims = copy.readUInt32LE(at);
      edit(new DataView(copy.buffer, copy.byteOffset, copy.byteLength), at + 4 + 8 * nDims);
      return copy;
    };
    expect(() => parseGguf(patch("blk.0.attn_q.weight", (v, at) => v.setUint32(at, 12, true)), "model.gguf")).toThrow(`model.gguf: tensor "blk.0.attn_q.weight" has ggml type Q4_K; supported: F32, F16, BF16, Q8_0, Q4_0`);
    expect(() => parseGguf(patch("blk.0.attn_q.weight", (v, at) => v.setBigUint64(at + 4, BigInt(gguf.length), true)), "model.gguf")).toThrow(/tensor "blk\.0\.attn_q\.weight" .* runs past the end of the file/);
    const arch = Buffer.from(gguf);
    arch.write("gpt2\0", arch.indexOf(Buffer.from("qwen2")));  // general.architecture's value, same length
    expect(() => ggufDescription(parseGguf(arch, "model.gguf"), "model.gguf")).toThrow(`model.gguf: "general.architecture" is "gpt2\\u0000"; the kernels run llama, qwen2, qwen3`);
    expect(() => ggufDescription(g, "model.gguf")).not.toThrow();
    g.metadata.delete("qwen2.block_count");
    expect(() => ggufDescription(g, "model.gguf")).toThrow(`model.gguf: "qwen2.block_count" must be a positive number`);
  });

  it("GGUF: a vocabulary of another size than the embedding's rows", async () => {
    const bytes = readFileSync(join(ROOT, "qwen2-gguf/model.gguf"));
    const read = async (path: string) => {
      if (path !== "model.gguf") throw new Error(`${path}: not found in the model folder`);
      return new Uint8Array(bytes);
    };
    const { description, vocab } = await readCheckpoint(read, { format: "gguf", file: "model.gguf" }, undefined);
    expect(vocab!.tokens.length).toBe(description.arch.vocab);
    expect(() => checkGgufVocabulary({ ...vocab!, tokens: vocab!.tokens.slice(0, 1000) }, description)).toThrow(`model.gguf: "tokenizer.ggml.tokens" has 1000 tokens, the embedding "token_embd.weight" 100277 rows`);
    expect(() => tokenizerJsonFromGguf({ ...vocab!, tokens: vocab!.tokens.slice(0, 1000) }, "model.gguf")).toThrow(`model.gguf: "tokenizer.ggml.token_type" has 100277 entries for 1000 tokens`);
    expect(() => tokenizerJsonFromGguf({ ...vocab!, pre: "falcon" }, "model.gguf")).toThrow(`model.gguf: "tokenizer.ggml.pre" "falcon" is not a pre-tokenizer this server knows`);
    expect(() => tokenizerJsonFromGguf({ ...vocab!, model: "bert" }, "model.gguf")).toThrow(`model.gguf: "tokenizer.ggml.model" "bert" is not supported (gpt2 or llama)`);
  });
});
