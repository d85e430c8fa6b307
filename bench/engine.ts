// Engine benchmark: the same ONNX file and thread count on our WASM SIMD kernels, onnxruntime-web
// (WASM SIMD) and onnxruntime-node (native): prefill, time to first token, decode tok/s at two
// context lengths, a batch of 8.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { modelShapeFromConfig, type Decoder, type SequenceCache } from "../src/engine/decoder.js";
import { OnnxDecoder } from "../src/engine/ort/onnx-model.js";
import { SimdDecoder } from "../src/engine/simd/decoder.js";
import { describeQuantization, kernelWeights, llamaWeights, type LlamaWeights, type WeightBits } from "../src/engine/simd/llama-weights.js";
import { ggufDescription, parseGguf } from "../src/formats/gguf.js";
import { readOnnx } from "../src/engine/simd/onnx-reader.js";
import { compileRelaxed } from "../src/engine/simd/relaxed.js";
import { Engine } from "../src/engine/engine.js";
import { DEFAULT_SAMPLING } from "../src/engine/sampler.js";
import { GrammarConstraint, JsonConstraint, TokenTrie } from "../src/engine/constrain/token-mask.js";
import { schemaGrammar } from "../src/engine/constrain/json-schema.js";
import { loadTokenizer } from "../scripts/tokenizer/files.js";
import { argmax } from "../src/engine/sampler.js";
import { createDecoder } from "../src/engine/ort/session.js";
import { ortGraph, tinylmGraphFile } from "../src/engine/backends.js";
import { nodeOrt } from "../src/node-runtime.js";
import { workerHelperThread } from "../src/engine/simd/worker-threads.js";
import { median } from "./stats.js";

import { wasmHeapBytes } from "../src/engine/wasm-memory.js";

export { wasmHeapBytes };

/**
 * simd: our kernels as the hosts run them (relaxed SIMD where the runtime has it); simd128: plain
 * SIMD128 only; simd-kv8: our kernels (relaxed where available) with the int8 KV cache (KV_CACHE=int8);
 * web: onnxruntime-web on our contract's graph; web-standard: onnxruntime-web on the
 * standard-contract graph (Optimum / transformers.js layout); native: onnxruntime-node.
 */
export type EngineName = "simd" | "simd128" | "simd-kv8" | "web" | "web-standard" | "native";

export interface EngineRow {
  engine: EngineName;
  file: string;
  threads: number;
  /** relaxed.wasm's form on our kernels (src/engine/simd/relaxed.ts), else null */
  dot: string | null;
  prefill_ms: Record<string, number>;
  ttft_ms_128: number;
  decode_tok_s: Record<string, number>;
  /** Aggregate tok/s of 8 sequences decoded together at context 128 (one run per step). */
  decode_batch8_tok_s: number;
  /** 128 tokens after a 128-token prompt (positions 128 → 256), the positions bench/served.ts streams with --tokens 128; null when the model is shorter. */
  decode_after_prompt_tok_s: number | null;
}

export const KERNELS_WASM = join(import.meta.dirname, "../src/engine/simd/kernels.wasm");
export const RELAXED_WASM = join(import.meta.dirname, "../src/engine/simd/relaxed.wasm");

/** The runtime under the numbers: Node's and V8's versions and the kernels it runs (relaxed.wasm validates from V8 11.4). */
export function runtimeInfo(): { node: string; v8: string; kernels: "relaxed-simd" | "simd128" } {
  return { node: process.version, v8: process.versions.v8, kernels: WebAssembly.validate(readFileSync(RELAXED_WASM)) ? "relaxed-simd" : "simd128" };
}

/** The CPU as /proc/cpuinfo names it, and the SIMD extensions that decide int8 dot-product speed. */
export function machineInfo() {
  let model = cpus()[0]?.model ?? "unknown", flagsLine = "";
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    model = /^model name\s*:\s*(.+)$/m.exec(info)?.[1] ?? model;
    flagsLine = /^flags\s*:\s*(.+)$/m.exec(info)?.[1] ?? "";
  } catch {
    // not Linux: os.cpus() has the model
  }
  const simd = ["avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "i8mm"].filter((f) => flagsLine.split(" ").includes(f));
  return { cpu: model, simd, cores: cpus().length, memory_gb: Math.round(totalmem() / 2 ** 30), ...runtimeInfo(), date: new Date().toISOString() };
}

async function decoderFor(engine: EngineName, modelDir: string, file: string, threads: number): Promise<Decoder> {
  const config = JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8"));
  const shape = modelShapeFromConfig(config);
  if (engine === "simd" || engine === "simd128" || engine === "simd-kv8") {
    nodeOrt(1); // the same V8 flags as the Node host (no Liftoff)
    const relaxed = engine === "simd128" ? null : await compileRelaxed(async () => readFileSync(RELAXED_WASM), process.env.RELAXED_SIMD);
    const weights = llamaWeights(readOnnx(readFileSync(join(modelDir, file))), config);
    return SimdDecoder.create(await WebAssembly.compile(readFileSync(KERNELS_WASM)), weights, relaxed, {}, engine === "simd-kv8" ? "int8" : "f32",
      await kernelHelper(threads, engine === "simd128" ? "0" : process.env.RELAXED_SIMD));
  }
  const read = async (path: string) => readFileSync(join(modelDir, path));
  if (engine === "web" || engine === "web-standard") {
    // As the Node host runs it (our contract's .tinylm.onnx beside the file), or the standard graph itself.
    const graph = engine === "web" ? await ortGraph(read, file, await read(file)) : { bytes: await read(file), source: file };
    return createDecoder(nodeOrt(threads), graph.bytes, shape, graph);
  }
  const ortNode = await import("onnxruntime-node");
  const fast = join(modelDir, tinylmGraphFile(file));
  const session = await ortNode.InferenceSession.create(existsSync(fast) ? fast : join(modelDir, file), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: "all" });
  return new OnnxDecoder(session as never, ortNode.Tensor as never, shape);
}

function prompt(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 300 + ((i * 37) % 4000));
}

async function timePrefill(dec: Decoder, n: number): Promise<number> {
  const cache = dec.newCache();
  const t = performance.now();
  const [{ logits }] = await dec.step([{ cache, tokens: prompt(n) }]);
  argmax(logits.subarray(logits.length - dec.shape.vocabSize));
  const ms = performance.now() - t;
  cache.release();
  return ms;
}

async function timeDecode(dec: Decoder, context: number, steps: number, batch = 1): Promise<number> {
  const base = dec.newCache();
  await dec.step([{ cache: base, tokens: prompt(context - steps) }]);
  const rate = await decodeFrom(dec, base, steps, batch);
  base.release();
  return rate;
}

/** GFLOP/s of one 512×512×512 fp32 MatMul in onnxruntime-web (1 thread): the wasm build's arithmetic peak. */
export async function wasmMatMulGflops(runs: number): Promise<number> {
  const ortWeb = nodeOrt(1);
  const n = 512;
  const session = await ortWeb.InferenceSession.create(readFileSync(join(import.meta.dirname, "matmul.onnx")), { executionProviders: ["wasm"] });
  const feeds = {
    a: new ortWeb.Tensor("float32", new Float32Array(n * n).fill(0.5), [n, n]),
    b: new ortWeb.Tensor("float32", new Float32Array(n * n).fill(0.25), [n, n]),
  };
  await session.run(feeds); // warm-up
  const ms = await repeat(runs, async () => {
    const t = performance.now();
    await session.run(feeds);
    return performance.now() - t;
  });
  return (2 * n ** 3) / (median(ms) / 1000) / 1e9;
}

export async function benchEngine(engine: EngineName, modelDir: string, file: string, threads: number, runs: number): Promise<EngineRow> {
  const dec = await decoderFor(engine, modelDir, file, threads);
  const max = dec.shape.maxLength;
  await timePrefill(dec, 16); // warm-up, excluded
  await timeDecode(dec, 64, 16);
  const prefill: Record<string, number> = {};
  for (const n of [16, 128, 512].filter((n) => n <= max)) {
    prefill[n] = median(await repeat(runs, () => timePrefill(dec, n)));
  }
  const decode: Record<string, number> = {};
  for (const ctx of [128, 512].filter((c) => c <= max)) {
    decode[ctx] = median(await repeat(runs, () => timeDecode(dec, ctx, 64)));
  }
  const batch8 = median(await repeat(runs, () => timeDecode(dec, Math.min(128, max), 64, 8)));
  const afterPrompt = max >= 256 ? median(await repeat(runs, () => timeDecode(dec, 256, 128))) : null;
  return { engine, file, threads, dot: dec instanceof SimdDecoder ? dec.dot : null, prefill_ms: prefill, ttft_ms_128: prefill[128], decode_tok_s: decode, decode_batch8_tok_s: batch8, decode_after_prompt_tok_s: afterPrompt };
}

/** Our kernels' second thread for threads = 2 (kernels/threads.c; they take 1 or 2). */
async function kernelHelper(threads: number, relaxedSetting?: string) {
  if (threads !== 1 && threads !== 2) throw new Error(`the WASM SIMD kernels run on 1 or 2 threads, not ${threads}`);
  return threads === 2 ? workerHelperThread(relaxedSetting) : null;
}

/** Our kernels on a GGUF file at the side-by-side's rows (bench/llamacpp.ts), each the median of `runs`. */
export interface GgufRow {
  file: string;
  quantization: string;
  kv_cache: string;
  /** relaxed.wasm's form (src/engine/simd/relaxed.ts): timed, or RELAXED_SIMD's */
  dot: string | null;
  load_ms: number;
  prefill_ms_128: number;
  /** Decode tok/s over the `steps` positions ending at each context (128 and the long one). */
  decode_tok_s: Record<string, number>;
  /** Aggregate tok/s of 8 sequences decoded together over contexts 64 → 128. */
  decode_batch8_tok_s: number;
  wasm_heap_mb: number;
}

/** Decode tok/s of `batch` copies of a prefilled cache, `steps` tokens each (the prefill is done once, outside the timing). */
async function decodeFrom(dec: Decoder, base: SequenceCache, steps: number, batch = 1): Promise<number> {
  const caches = Array.from({ length: batch }, () => base.prefix(base.length));
  let next = caches.map((_, b) => 1000 + b);
  const t = performance.now();
  for (let i = 0; i < steps; i++) {
    const out = await dec.step(caches.map((cache, b) => ({ cache, tokens: [next[b]] })));
    next = out.map(({ logits }) => argmax(logits));
  }
  const rate = ((batch * steps) / (performance.now() - t)) * 1000;
  for (const cache of caches) cache.release();
  return rate;
}

/** `bits` as WEIGHT_BITS: 8 keeps a Q8_0 file's blocks (F16/F32 → 8-bit rows), 7 makes every matrix 7-bit rows (a Q4_0 file's blocks kept), 4 every projection 4-bit (a Q4_0 file's blocks kept). */
export async function benchGguf(file: string, runs: number, longContext: number, bits: WeightBits, threads = 1, steps = 64): Promise<GgufRow> {
  nodeOrt(1); // the same V8 flags as the Node host (no Liftoff, relaxed SIMD)
  const t = performance.now();
  const description = ggufDescription(parseGguf(new Uint8Array(readFileSync(file)), file), file);
  const relaxed = await compileRelaxed(async () => readFileSync(RELAXED_WASM), process.env.RELAXED_SIMD);
  const weights = kernelWeights(description, bits);
  const dec = await SimdDecoder.create(await WebAssembly.compile(readFileSync(KERNELS_WASM)), weights, relaxed, {}, "f32", await kernelHelper(threads, process.env.RELAXED_SIMD));
  const loadMs = performance.now() - t;
  await timePrefill(dec, 16); // warm-up, excluded
  const prefill = median(await repeat(runs, () => timePrefill(dec, 128)));
  const decode: Record<string, number> = {};
  const filled = async (context: number) => {
    const base = dec.newCache();
    await dec.step([{ cache: base, tokens: prompt(context - steps), logits: "none" }]);
    return base;
  };
  let batch8 = NaN;
  for (const context of [128, longContext]) {
    const base = await filled(context);
    await decodeFrom(dec, base, 8); // warm-up at this length, excluded
    decode[context] = median(await repeat(runs, () => decodeFrom(dec, base, steps)));
    if (context === 128) batch8 = median(await repeat(runs, () => decodeFrom(dec, base, steps, 8)));
    base.release();
  }
  return { file, quantization: describeQuantization(description, weights), kv_cache: dec.kvCache, dot: dec.dot, load_ms: loadMs, prefill_ms_128: prefill, decode_tok_s: decode, decode_batch8_tok_s: batch8, wasm_heap_mb: wasmHeapBytes() / 2 ** 20 };
}

/** Stages of kernels/forward.c, in its enum's order. */
const STAGES = ["embed", "rmsnorm", "qkv matmul", "rope + kv store", "attention", "o matmul", "ffn matmuls", "swiglu + residual", "lm head", "sampling softmax"];

/**
 * Where a decode step's time goes in our kernels: a build with per-stage timers (build.sh --profile,
 * needs clang), `steps` decode steps at context `context` with the given KV cache, milliseconds per
 * token per stage.
 */
export async function profileSimd(modelDir: string, file: string, context: number, steps: number, kvCache: "f32" | "int8" = "f32"): Promise<Record<string, number>> {
  const config = JSON.parse(readFileSync(join(modelDir, "config.json"), "utf8"));
  return profileWeights(llamaWeights(readOnnx(readFileSync(join(modelDir, file))), config), context, steps, kvCache);
}

/** The same split for a GGUF file's weights as WEIGHT_BITS=bits loads them (the side-by-side's shapes). */
export async function profileGguf(file: string, bits: WeightBits, context: number, steps: number): Promise<Record<string, number>> {
  return profileWeights(kernelWeights(ggufDescription(parseGguf(new Uint8Array(readFileSync(file)), file), file), bits), context, steps, "f32");
}

async function profileWeights(weights: LlamaWeights, context: number, steps: number, kvCache: "f32" | "int8"): Promise<Record<string, number>> {
  const out = join(mkdtempSync(join(tmpdir(), "kernels-")), "kernels-profile.wasm");
  execFileSync("bash", [join(import.meta.dirname, "../src/engine/simd/kernels/build.sh"), "--profile", out]);
  nodeOrt(1);
  const relaxed = await compileRelaxed(async () => readFileSync(RELAXED_WASM), process.env.RELAXED_SIMD);
  const dec = await SimdDecoder.create(await WebAssembly.compile(readFileSync(out)), weights, relaxed, { now: () => performance.now() }, kvCache);
  await dec.warmUp();
  const profileSlots = dec.instance.exports.profile_slots as () => number;
  const cache = dec.newCache();
  await dec.step([{ cache, tokens: prompt(context) }]);
  const slots = () => new Float64Array(dec.memory.buffer, profileSlots(), STAGES.length);
  slots().fill(0);
  let next = 1000;
  const t = performance.now();
  for (let i = 0; i < steps; i++) next = argmax((await dec.step([{ cache, tokens: [next] }]))[0].logits);
  const total = (performance.now() - t) / steps;
  const perStage = Object.fromEntries(STAGES.map((name, i) => [name, slots()[i] / steps]));
  return { ...perStage, "outside the kernels (JS)": total - Object.values(perStage).reduce((a, b) => a + b, 0), total };
}

async function repeat(n: number, f: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

/** One side of the jump-forward comparison: medians over the replies. */
export interface ReplyCost {
  tok_s: number;
  ms_per_reply: number;
  tokens_per_reply: number;
  steps_per_reply: number;
}

/**
 * The cost of JSON mode per token on our kernels: the same sampled generation (temperature 1, fixed
 * seeds) with and without the constraint, ms per generated token, and the mask's own share. Then
 * replies under a typical 6-property schema with and without jump-forward (the same constraint with
 * its forced() hidden), interleaved, same seeds, at temperatures 0 and 1: tokens/s, wall time per
 * reply (prompt included), decode steps, and how many replies came out the same.
 */
export async function constrainedCost(modelDir: string, runs: number): Promise<{
  free_ms_per_token: number; json_ms_per_token: number; mask_ms_per_token: number; trie_build_ms: number; schema_compile_ms: number;
  schema_reply: { jump_forward: ReplyCost; token_by_token: ReplyCost; same_outputs: string };
}> {
  const dec = await decoderFor("simd", modelDir, "onnx/model_quantized.onnx", 1);
  await dec.warmUp();
  const tok = loadTokenizer(modelDir);
  let t = performance.now();
  const trie = new TokenTrie(tok);
  const trieMs = performance.now() - t;
  const engine = new Engine(dec, { maxBatch: 1, maxQueue: 4, prefixCache: false });
  let maskMs = 0;
  const run = async (json: boolean, seed: number) => {
    const constraint = json ? new JsonConstraint(trie) : undefined;
    const timed = constraint && {
      mask: (left: number) => {
        const start = performance.now();
        const m = constraint.mask(left);
        maskMs += performance.now() - start;
        return m;
      },
      advance: (id: number) => constraint.advance(id),
    };
    const start = performance.now();
    let n = 0;
    for await (const _ of engine.generate({ prompt: tok.encode("A record: "), maxTokens: 128, sampling: { ...DEFAULT_SAMPLING, seed, temperature: 1 }, stopTokens: new Set(), constraint: timed })) n++;
    return { ms: performance.now() - start, n };
  };
  const free: number[] = [], json: number[] = [];
  let jsonTokens = 0;
  for (let r = 0; r < runs; r++) {
    const a = await run(false, r), b = await run(true, r);
    free.push(a.ms / a.n);
    json.push(b.ms / b.n);
    jsonTokens += b.n;
  }
  // A typical schema (what zod turns a small record type into): compile time, median of 20.
  const typical = {
    type: "object", additionalProperties: false, required: ["name", "age", "email", "tags", "address", "status"],
    properties: {
      name: { type: "string" }, age: { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 }, email: { type: ["string", "null"] },
      tags: { type: "array", items: { type: "string" } }, status: { enum: ["active", "inactive", "banned"] },
      address: { type: "object", additionalProperties: false, required: ["city", "zip"], properties: { city: { type: "string" }, zip: { type: "string" } } },
    },
  };
  const compiles: number[] = [];
  for (let i = 0; i < 20; i++) {
    const start = performance.now();
    schemaGrammar(typical);
    compiles.push(performance.now() - start);
  }
  const grammar = schemaGrammar(typical);
  const reply = async (jump: boolean, seed: number, temperature: number) => {
    const c = new GrammarConstraint(grammar, trie, 160);
    const constraint = jump ? c : { mask: (left: number) => c.mask(left), advance: (id: number) => c.advance(id) };
    const steps = engine.stats.steps;
    const out: number[] = [];
    const start = performance.now();
    for await (const g of engine.generate({ prompt: tok.encode("A record: "), maxTokens: 160, sampling: { ...DEFAULT_SAMPLING, seed, temperature, logprobs: null }, stopTokens: new Set([tok.eosId!]), constraint })) out.push(g.token);
    return { ms: performance.now() - start, tokens: out.length, steps: engine.stats.steps - steps, text: tok.decode(out) };
  };
  const sides = { jump: [] as Awaited<ReturnType<typeof reply>>[], plain: [] as Awaited<ReturnType<typeof reply>>[] };
  let same = 0;
  for (let r = 0; r < runs; r++) {
    for (const temperature of [0, 1]) {
      const plain = await reply(false, r, temperature), jump = await reply(true, r, temperature);
      sides.plain.push(plain);
      sides.jump.push(jump);
      if (plain.text === jump.text) same++;
    }
  }
  const cost = (rs: typeof sides.jump): ReplyCost => ({
    tok_s: median(rs.map((x) => (x.tokens / x.ms) * 1000)),
    ms_per_reply: median(rs.map((x) => x.ms)),
    tokens_per_reply: median(rs.map((x) => x.tokens)),
    steps_per_reply: median(rs.map((x) => x.steps)),
  });
  return {
    free_ms_per_token: median(free), json_ms_per_token: median(json), mask_ms_per_token: maskMs / jsonTokens, trie_build_ms: trieMs, schema_compile_ms: median(compiles),
    schema_reply: { jump_forward: cost(sides.jump), token_by_token: cost(sides.plain), same_outputs: `${same}/${sides.jump.length}` },
  };
}
