// npm run pack: the kernels' weights written once (src/packed.ts, src/engine/simd/pack.ts) and loaded
// instead of converting, with the same logits; a stale pack is ignored (logged), a corrupt one refused.
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURE_DIR, folderReader, KERNELS_WASM, RELAXED_WASM } from "./helpers/fixture.js";
import { checkpointFixtures, standardOnnxFixtures } from "./helpers/interop-fixtures.js";
import { loadModel, type LoadedModel } from "../src/model.js";
import { sha256Hex } from "../src/digest.js";
import { PACK_FILE, packPart } from "../src/packed.js";
import { PackError, readPack, writePack } from "../src/engine/simd/pack.js";
import { KERNEL_WEIGHTS_VERSION } from "../src/engine/simd/llama-weights.js";

const ROOT = join(import.meta.dirname, "..");
const kernels = async () => WebAssembly.compile(readFileSync(KERNELS_WASM));
const relaxed = async () => WebAssembly.compile(readFileSync(RELAXED_WASM));

function copy(dir: string): string {
  const to = join(mkdtempSync(join(tmpdir(), "pack-")), "model");
  cpSync(dir, to, { recursive: true });
  return to;
}

const pack = (target: string) => execFileSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/pack.ts", target], { cwd: ROOT, encoding: "utf8" });

async function load(dir: string, extra: Record<string, unknown> = {}): Promise<{ model: LoadedModel; log: string[] }> {
  const log: string[] = [];
  const model = await loadModel(folderReader(dir), {
    ort: null, kernels, relaxed, engine: { maxBatch: 2, maxQueue: 2, prefixCache: false }, onnxFile: "onnx/model_quantized.onnx", log: (l) => log.push(l), ...extra,
  });
  return { model, log };
}

/** Every position's logits of a few tokens, prompt and decode rows. */
async function logits(m: LoadedModel): Promise<Float32Array[]> {
  const d = m.engine.decoder, cache = d.newCache();
  const prompt = await d.step([{ cache, tokens: [1, 5, 9, 42, 7], logits: "all" }]);
  const next = await d.step([{ cache, tokens: [3] }]);
  cache.release();
  return [prompt[0].logits, next[0].logits];
}

const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { files: Record<string, { sha256: string }> };
const writeManifest = (dir: string, m: object) => writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));

describe("npm run pack", () => {
  const checkpoints = checkpointFixtures();
  const folders: [string, string, string][] = [
    ["our int8 ONNX graph (the fixture)", FIXTURE_DIR, ""],
    ["sharded safetensors (llama)", join(checkpoints, "llama-safetensors"), ""],
    ["GGUF with its own vocabulary (qwen2)", join(checkpoints, "qwen2-gguf"), "model.gguf"],
    ["a standard ONNX graph, its weights lifted (llama, quantize_dynamic's uint8)", join(standardOnnxFixtures(), "llama"), ""],
  ];
  for (const [what, source, file] of folders) {
    it(`${what}: the packed load gives the converted load's logits, bit for bit, and reports the same checkpoint`, async () => {
      const dir = copy(source);
      const before = await load(dir);
      expect(pack(file ? join(dir, file) : dir)).toContain(`${PACK_FILE}:`);
      const manifest = manifestOf(dir);
      expect(manifest.files[PACK_FILE].sha256).toBe(await sha256Hex(readFileSync(join(dir, PACK_FILE))));
      const after = await load(dir);
      expect(after.log.join("\n")).toContain(`runs on our WASM kernels from ${PACK_FILE}`);
      expect(after.model.weights).toEqual(before.model.weights);
      expect(after.model.tokenizer.vocabSize).toBe(before.model.tokenizer.vocabSize);
      expect(after.model.backend).toEqual(before.model.backend);
      expect(await logits(after.model)).toEqual(await logits(before.model));
      if (!file && source === FIXTURE_DIR) return;
      // A checkpoint packed at 8 bits is not what WEIGHT_BITS=4 runs.
      const four = await load(dir, { weightBits: 4 });
      expect(four.log.join("\n")).toContain(`${PACK_FILE} ignored (packed with WEIGHT_BITS=8, the server runs 4)`);
    }, 60_000);
  }

  it("int4 weights (--weight-bits 4, qwen2 safetensors): the packed load gives WEIGHT_BITS=4's logits, bit for bit", async () => {
    const dir = copy(join(checkpoints, "qwen2-safetensors"));
    const before = await load(dir, { weightBits: 4 });
    execFileSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/pack.ts", dir, "--weight-bits", "4"], { cwd: ROOT });
    const after = await load(dir, { weightBits: 4 });
    expect(after.log.join("\n")).toContain(`from ${PACK_FILE}`);
    expect(after.model.weights).toEqual(before.model.weights);
    expect(await logits(after.model)).toEqual(await logits(before.model));
  }, 60_000);

  it("a pack in parts (--part-mib) is read part by part with the same logits; deployed without its checkpoint to a host that cannot list the folder, it still serves; a missing, short or corrupt part is an error naming it", async () => {
    const dir = copy(join(checkpoints, "qwen2-gguf"));
    const before = await load(dir);
    const out = execFileSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/pack.ts", join(dir, "model.gguf"), "--part-mib", "2"], { cwd: ROOT, encoding: "utf8" });
    const parts = readdirSync(dir).filter((f) => f.startsWith(PACK_FILE)).length;
    expect(parts).toBeGreaterThan(3);
    expect(out).toContain(`in ${parts} parts (${PACK_FILE} … ${packPart(parts - 1)})`);
    const manifest = manifestOf(dir);
    for (let i = 0; i < parts; i++) expect(manifest.files[packPart(i)].sha256).toBe(await sha256Hex(readFileSync(join(dir, packPart(i)))));
    const after = await load(dir);
    expect(after.log.join("\n")).toContain(`runs on our WASM kernels from ${PACK_FILE}`);
    expect(await logits(after.model)).toEqual(await logits(before.model));

    // Workers: no listing, and the checkpoint left out of the upload; manifest.json vouches for it, so it is never read.
    const deployed = copy(dir);
    rmSync(join(deployed, "model.gguf"));
    const noListing = await load(deployed, { files: undefined });
    expect(noListing.model.weights).toEqual(before.model.weights);
    expect(await logits(noListing.model)).toEqual(await logits(before.model));

    const last = packPart(parts - 1), middle = packPart(2), bytes = readFileSync(join(dir, middle));
    writeFileSync(join(deployed, middle), bytes.subarray(0, bytes.length - 64));
    await expect(load(deployed)).rejects.toThrow(new RegExp(`${middle.replace(".", "\\.")}: ${bytes.length - 64} bytes, where part 3 of ${parts} of ${PACK_FILE} has ${bytes.length} \\(a partial upload\\?\\)`));
    bytes[100] ^= 1;
    writeFileSync(join(deployed, middle), bytes);
    await expect(load(deployed)).rejects.toThrow(new RegExp(`${middle.replace(".", "\\.")}: sha256 [0-9a-f]{64} does not match manifest.json's`));
    rmSync(join(deployed, last));
    writeFileSync(join(deployed, middle), readFileSync(join(dir, middle)));
    await expect(load(deployed)).rejects.toThrow(`${last}: not found in the model folder`);

    // Packed again in one part: the earlier parts leave the folder and manifest.json.
    execFileSync(join(ROOT, "node_modules/.bin/tsx"), ["scripts/pack.ts", join(dir, "model.gguf"), "--part-mib", "64"], { cwd: ROOT });
    expect(readdirSync(dir).filter((f) => f.startsWith(PACK_FILE))).toEqual([PACK_FILE]);
    expect(Object.keys(manifestOf(dir).files).filter((f) => f.startsWith(PACK_FILE))).toEqual([PACK_FILE]);
    expect(await logits((await load(dir)).model)).toEqual(await logits(before.model));
  }, 60_000);

  it("a stale pack is ignored with the reason logged, and the checkpoint converted: sources changed, another ONNX_FILE, another weights version, not in the manifest", async () => {
    const dir = copy(FIXTURE_DIR);
    pack(dir);
    const reference = await logits((await load(dir)).model);
    const manifest = manifestOf(dir);
    const expectIgnored = async (why: RegExp, extra = {}) => {
      const { model, log } = await load(dir, extra);
      expect(log.join("\n")).toMatch(new RegExp(`${PACK_FILE} ignored \\(${why.source}\\); converting`));
      expect(log.join("\n")).not.toContain(`from ${PACK_FILE}`);
      return model;
    };
    // config.json re-exported (the manifest lists its new hash): the pack no longer stands for the folder.
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, max_position_embeddings: config.max_position_embeddings }, null, 1));
    writeManifest(dir, { ...manifest, files: { ...manifest.files, "config.json": { sha256: await sha256Hex(readFileSync(join(dir, "config.json"))) } } });
    expect(await logits(await expectIgnored(/config\.json has changed since \(manifest\.json: sha256 [0-9a-f]{12}…, packed from [0-9a-f]{12}…\)/))).toEqual(reference);
    writeManifest(dir, manifest);
    writeFileSync(join(dir, "config.json"), readFileSync(join(FIXTURE_DIR, "config.json")));
    const log: string[] = []; // another graph named: the pack is ignored, then the fp32 graph needs onnxruntime-web, which this load lacks
    await expect(load(dir, { onnxFile: "onnx/model.onnx", log: (l: string) => log.push(l) })).rejects.toThrow(/the kernels cannot run onnx\/model\.onnx/);
    expect(log.join("\n")).toContain(`${PACK_FILE} ignored (packed from onnx/model_quantized.onnx, config.json; the folder now serves onnx/model.onnx)`);
    // Written by an older server (another weights version), listed in the manifest.
    const { header, weights } = readPack(readFileSync(join(dir, PACK_FILE)), PACK_FILE);
    const old = writePack(weights, { ...header, weights_version: KERNEL_WEIGHTS_VERSION - 1, tensors: undefined, weights: undefined, version: undefined });
    writeFileSync(join(dir, PACK_FILE), old);
    writeManifest(dir, { ...manifest, files: { ...manifest.files, [PACK_FILE]: { sha256: await sha256Hex(old) } } });
    await expectIgnored(new RegExp(`weights version ${KERNEL_WEIGHTS_VERSION - 1}, this server's kernels take ${KERNEL_WEIGHTS_VERSION}`));
    const { [PACK_FILE]: _, ...unlisted } = manifest.files;
    writeManifest(dir, { ...manifest, files: unlisted });
    expect(await logits(await expectIgnored(/not listed in manifest\.json/))).toEqual(reference);
  }, 60_000);

  it("a pack whose bytes are not manifest.json's is an error naming it; so is a malformed one, checked before any read", async () => {
    const dir = copy(FIXTURE_DIR);
    pack(dir);
    const bytes = readFileSync(join(dir, PACK_FILE));
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(join(dir, PACK_FILE), bytes);
    await expect(load(dir)).rejects.toThrow(new RegExp(`${PACK_FILE}: sha256 [0-9a-f]{64} does not match manifest.json's [0-9a-f]{64}`));
    const good = writePack({ a: new Float32Array([1, 2]), b: [{ kind: "q8", rows: 1, data: new Int8Array([-3]) }] }, {});
    expect(readPack(good, "x").weights).toEqual({ a: new Float32Array([1, 2]), b: [{ kind: "q8", rows: 1, data: new Int8Array([-3]) }] });
    expect(() => readPack(good.subarray(0, good.length - 1), "x")).toThrow(PackError);
    expect(() => readPack(good.subarray(0, 40), "x")).toThrow(/x: a header of \d+ bytes in a file of 40/);
    expect(() => readPack(new TextEncoder().encode("GGUF...."), "x")).toThrow(/x: no pack header/);
  });
});
