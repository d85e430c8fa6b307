// npm run compress on checkpoints as they come from a hub (scripts/tinylm/checkpoints.py): Llama 2's
// SentencePiece-style BPE with byte fallback (llama: sharded BF16, untied head; mistral: F16, untied)
// and cl100k's byte-level BPE (qwen2: BF16, tied; qwen3: F32, tied). The compact folder's tokenizer
// is closed under merges and encodes as the original wherever the original's tokens are kept; on
// such text its logits equal the original's at the kept ids exactly (the kernels quantize each
// embedding and head row on its own, and the rows are the same bytes), and the PyTorch reference
// reading both folders agrees to float rounding; it serves through the app.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compressModel, parseCompressArgs } from "../scripts/compress.js";
import { compressVocabulary, unreachableTokens } from "../scripts/tokenizer/compress.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { createApp } from "../src/app.js";
import type { Decoder } from "../src/engine/decoder.js";
import { parseSafetensors } from "../src/formats/safetensors.js";
import { loadModel, ModelHandle, type LoadedModel } from "../src/model.js";
import { nodeOrt } from "../src/node-runtime.js";
import { CORPUS_DIR, sampleTexts } from "./helpers/corpus-sample.js";
import { KERNELS_WASM, folderReader } from "./helpers/fixture.js";
import { checkpointFixtures } from "./helpers/interop-fixtures.js";

const ROOT = checkpointFixtures();
const CORPUS = join(CORPUS_DIR, "stories-002.jsonl.gz");
const KEEP = 2048;
const OUT = mkdtempSync(join(tmpdir(), "tinylm-compress-"));
afterAll(() => rmSync(OUT, { recursive: true, force: true }));

// Plain SIMD128 for both: relaxed SIMD takes another head kernel when the vocabulary is a multiple of 4, and 100,277 is not.
const load = (dir: string) => loadModel(folderReader(dir), {
  ort: nodeOrt(1), kernels: () => WebAssembly.compile(readFileSync(KERNELS_WASM)), engine: { maxBatch: 2, maxQueue: 4, prefixCache: false },
  onnxFile: "onnx/model_quantized.onnx", log: () => {},
});

async function logitRows(dec: Decoder, tokens: number[], next: number): Promise<Float32Array[]> {
  const V = dec.shape.vocabSize, cache = dec.newCache();
  const [{ logits }] = await dec.step([{ cache, tokens, logits: "all" }]); // prefill (two rows at a time)
  const [{ logits: last }] = await dec.step([{ cache, tokens: [next] }]); // one decode step (one row)
  return [...Array.from({ length: tokens.length }, (_, i) => logits.subarray(i * V, (i + 1) * V)), last];
}

function referenceLogits(dir: string, ids: number[]): Float32Array {
  const r = spawnSync("/usr/bin/python3", ["-m", "scripts.tinylm.hf_logits", dir], { cwd: join(import.meta.dirname, ".."), input: JSON.stringify(ids), maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`hf_logits ${dir}: ${r.stderr}`);
  return new Float32Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength / 4);
}

describe.each([
  { arch: "llama", kind: "SentencePiece-style BPE with byte fallback", files: ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], pytorch: true },
  { arch: "mistral", kind: "SentencePiece-style BPE with byte fallback", files: ["model.safetensors"], pytorch: false },
  { arch: "qwen2", kind: "byte-level BPE", files: ["model.safetensors"], pytorch: true },
  { arch: "qwen3", kind: "byte-level BPE", files: ["model.safetensors"], pytorch: false },
])("$arch ($kind)", ({ arch, kind, files, pytorch }) => {
  const model = join(ROOT, `${arch}-safetensors`), out = join(OUT, arch);
  let report: Awaited<ReturnType<typeof compressModel>>, vocabMap: number[], paragraphs: string[];
  beforeAll(async () => {
    report = await compressModel({ model, corpus: [CORPUS], keep: KEEP, out });
    vocabMap = JSON.parse(readFileSync(join(out, "vocab_map.json"), "utf8"));
    // Held-out text (another shard than the corpus), a sentence at a time.
    paragraphs = (await sampleTexts(1, 1, 40_000))[0].split(/(?<=[.!?;:])\s+|\n+/).filter((p) => p.trim());
  }, 120_000);

  it("writes the tokenizer, configs, weights and report; rows copied in the original dtype", () => {
    expect(report).toMatchObject({ tokenizer: kind, vocabulary: { after: KEEP } });
    expect(vocabMap).toHaveLength(KEEP);
    expect([...vocabMap].sort((a, b) => a - b)).toEqual(vocabMap); // dense, in original order
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")), original = JSON.parse(readFileSync(join(model, "config.json"), "utf8"));
    expect(config.vocab_size).toBe(KEEP);
    for (const field of ["bos_token_id", "eos_token_id"]) expect(vocabMap[config[field]]).toBe(original[field]);
    for (const file of files) {
      const before = parseSafetensors(new Uint8Array(readFileSync(join(model, file))), file), after = parseSafetensors(new Uint8Array(readFileSync(join(out, file))), file);
      expect([...after.keys()]).toEqual([...before.keys()]);
      for (const [name, t] of after) {
        const b = before.get(name)!;
        expect(t.dtype).toBe(b.dtype);
        if (name === "model.embed_tokens.weight" || name === "lm_head.weight") {
          const row = b.bytes.byteLength / b.shape[0];
          expect(t.shape).toEqual([KEEP, b.shape[1]]);
          for (const i of [0, 1, 300, KEEP - 1]) expect(t.bytes.subarray(i * row, (i + 1) * row)).toEqual(b.bytes.subarray(vocabMap[i] * row, (vocabMap[i] + 1) * row));
        } else expect(t.bytes).toEqual(b.bytes);
      }
    }
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain(`The kept tokens cover ${(report.coverage * 100).toFixed(2)}% of the corpus's tokens`);
    expect(report.tokens.per_byte_after).toBeGreaterThan(report.tokens.per_byte_before);
    expect(report.coverage).toBeGreaterThan(0.85);
  });

  it("the compact tokenizer is closed under merges, keeps specials and bytes, and encodes as the original where all its tokens are kept", () => {
    const json = JSON.parse(readFileSync(join(out, "tokenizer.json"), "utf8"));
    expect(unreachableTokens(json)).toEqual([]);
    const orig = loadTokenizer(model), compact = loadTokenizer(out);
    expect(compact.vocabSize).toBe(KEEP);
    for (const [content, id] of orig.specialTokens) expect(vocabMap[compact.specialTokens.get(content)!]).toBe(id);
    expect([compact.bosId, compact.eosId].map((id) => id === undefined ? id : vocabMap[id])).toEqual([orig.bosId, orig.eosId]);
    const kept = new Set(vocabMap);
    let identical = 0;
    for (const p of paragraphs) {
      const ids = orig.encode(p), ours = compact.encode(p);
      if (ids.every((id) => kept.has(id))) {
        expect(ours.map((id) => vocabMap[id])).toEqual(ids);
        expect(compact.encode(p, { addSpecial: true }).map((id) => vocabMap[id])).toEqual(orig.encode(p, { addSpecial: true })); // Llama 2's <s>, renumbered
        identical++;
      }
      expect(compact.decodeText(ours)).toBe(orig.decodeText(ids)); // lossless either way: the byte tokens are there
    }
    expect(identical).toBeGreaterThanOrEqual(20);
  });

  it("logits at the kept ids equal the original model's exactly, on text both encode alike; the folder serves", async () => {
    const [orig, compact] = [await load(model), await load(out)];
    expect(compact.backend).toMatchObject({ name: "simd", kernels: "simd128", reason: null });
    expect(compact.engine.decoder.shape.vocabSize).toBe(KEEP);
    // Sentences both tokenizers encode alike, one after the other (36 tokens, within the fixtures' context of 128).
    const kept = new Set(vocabMap), ids: number[] = [];
    for (const p of paragraphs) {
      const own = orig.tokenizer.encode(p);
      if (own.every((id) => kept.has(id))) ids.push(...compact.tokenizer.encode(p));
      if (ids.length >= 36) break;
    }
    ids.length = 36;
    const origIds = ids.map((id) => vocabMap[id]);
    const next = ids.length % KEEP;
    const [a, b] = [await logitRows(orig.engine.decoder, origIds, vocabMap[next]), await logitRows(compact.engine.decoder, ids, next)];
    let compared = 0;
    for (const [r, row] of b.entries()) {
      for (let i = 0; i < KEEP; i++) {
        if (!Object.is(row[i], a[r][vocabMap[i]])) throw new Error(`row ${r}, id ${i} (original ${vocabMap[i]}): ${row[i]} ≠ ${a[r][vocabMap[i]]}`);
        compared++;
      }
    }
    expect(compared).toBe(b.length * KEEP);

    if (pytorch) {
      // The PyTorch reference in fp32 on both folders as written (its own safetensors reader): the
      // same logits at the kept ids up to float rounding (its matmul blocks the head by vocabulary size).
      const [p, q] = [referenceLogits(model, origIds), referenceLogits(out, ids)];
      const V = p.length / ids.length;
      let worst = 0;
      for (let r = 0; r < ids.length; r++) for (let i = 0; i < KEEP; i++) worst = Math.max(worst, Math.abs(q[r * KEEP + i] - p[r * V + vocabMap[i]]));
      console.log(`${arch}: PyTorch fp32, compact vs original at the kept ids: max |Δlogit| ${worst.toExponential(1)}`);
      expect(worst).toBeLessThan(1e-4);
    }

    const app = createApp(new ModelHandle(async (): Promise<LoadedModel> => compact));
    const res = await app.request("/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ model: compact.id, prompt: "Once upon a time", max_tokens: 6, temperature: 0 }) });
    const body = await res.json();
    expect([res.status, body.error?.message]).toEqual([200, undefined]);
    expect(body.usage.completion_tokens).toBe(6);
    const models = await (await app.request("/v1/models")).json();
    expect(models.data[0].meta).toMatchObject({ format: "safetensors", engine: "simd", vocabulary: KEEP });
  }, 60_000);
});

describe("bad input: a clear error naming the flag or file", () => {
  const qwen2 = join(ROOT, "qwen2-safetensors");
  const opts = (o: Partial<Parameters<typeof compressModel>[0]>) => ({ model: qwen2, corpus: [CORPUS], keep: KEEP, out: join(OUT, "bad"), ...o });

  it("flags", () => {
    expect(() => parseCompressArgs(["--model", qwen2, "--corpus", CORPUS, "--out", "x"])).toThrow("--keep is required (see --help)");
    expect(() => parseCompressArgs(["--model", qwen2, "--corpus", CORPUS, "--keep", "lots", "--out", "x"])).toThrow('--keep must be a positive integer, got "lots"');
    expect(() => parseCompressArgs(["--model", qwen2, "--corpus", CORPUS, "--keep", "100", "--out", "x", "--vocab", "3"])).toThrow("unknown flag --vocab");
    expect(() => parseCompressArgs(["--model", "--corpus", CORPUS, "--keep", "100", "--out", "x"])).toThrow("--model is required");
    expect(parseCompressArgs(["--model", qwen2, "--corpus", "a.txt", "b.txt", "--keep", "4096", "--out", "x"])).toEqual({ model: qwen2, corpus: ["a.txt", "b.txt"], keep: 4096, out: "x" });
  });

  it("inputs", async () => {
    await expect(compressModel(opts({ model: join(ROOT, "llama-gguf/model.gguf") }))).rejects.toThrow(/GGUF input is not supported by compress; give the model's Hugging Face folder/);
    await expect(compressModel(opts({ model: join(ROOT, "llama-gguf") }))).rejects.toThrow(/GGUF input is not supported by compress/);
    await expect(compressModel(opts({ out: qwen2 }))).rejects.toThrow(/is the model folder itself/);
    const taken = join(OUT, "taken");
    mkdirSync(taken, { recursive: true });
    writeFileSync(join(taken, "notes.txt"), "mine");
    await expect(compressModel(opts({ out: taken }))).rejects.toThrow(/exists and is not a folder compress wrote \(no vocab_map\.json\): not replaced/);
    await expect(compressModel(opts({ corpus: [join(OUT, "nothing-here")] }))).rejects.toThrow(/--corpus .*nothing-here: no such file or folder/);
    await expect(compressModel(opts({ keep: 200 }))).rejects.toThrow(/tokenizer\.json: the vocabulary must leave room for 256 byte tokens and 5 specials/);
    await expect(compressModel(opts({ keep: 100_277 }))).rejects.toThrow("--keep 100277 is not below the model's vocabulary (100277 tokens): nothing to prune");
    await expect(compressModel(opts({ model: join(OUT, "no-model") }))).rejects.toThrow(/no-model: no config\.json/);
    const llama = JSON.parse(readFileSync(join(ROOT, "llama-safetensors/tokenizer.json"), "utf8"));
    expect(() => compressVocabulary({ ...llama, model: { ...llama.model, byte_fallback: false } }, [], { vocab: KEEP })).toThrow("neither byte-level BPE nor BPE with byte fallback");
  });

  it("the command exits 1 with one line on stderr", () => {
    const r = spawnSync(join(import.meta.dirname, "../node_modules/.bin/tsx"), ["scripts/compress.ts", "--model", qwen2, "--corpus", CORPUS], { cwd: join(import.meta.dirname, ".."), encoding: "utf8" });
    expect([r.status, r.stderr]).toEqual([1, "error: --keep is required (see --help)\n"]);
  });
});
