// npm run export -- <checkpoint> <out-dir> [--tokenizer build/tokenizer-8k] [--name NAME] [--eval results.json] [--drop-fp32]
// The Python export (ONNX fp32 + int8, reference logits), then the TypeScript parity check, whose
// numbers are recorded in the folder's manifest.json. --drop-fp32 then removes the fp32 graph (the
// shipped model/ carries int8 only: fp32 is 4× the size and the server never loads it).
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkFolder } from "./parity.js";
import { parseFlags, runMain } from "./tokenizer/cli.js";

const USAGE = `
usage: npm run export -- CHECKPOINT OUT_DIR [--tokenizer DIR] [--name NAME] [--eval FILE] [--val-data DIR] [--drop-fp32]
Export a checkpoint to a model folder (ONNX fp32 + int8, tokenizer, manifest) and check its parity.
  --tokenizer DIR   (default: build/tokenizer-8k)
  --name NAME       the model's id (default: tinylm-edge)
  --eval FILE       evaluation results to put in the manifest
  --val-data DIR    pre-tokenized validation data for the parity check (default: build/data/compact-8k)
  --drop-fp32       keep only the int8 graph in the folder
`;

runMain(async () => {
  const { flags, positional } = parseFlags(process.argv.slice(2), USAGE);
  const [checkpoint, out] = positional;
  if (!checkpoint || !out) throw new Error("usage: npm run export -- <checkpoint> <out-dir> [--tokenizer DIR] [--name NAME] [--eval FILE]");
  const args = ["-m", "scripts.tinylm.export", checkpoint, flags.get("tokenizer") ?? "build/tokenizer-8k", out, "--name", flags.get("name") ?? "tinylm-edge"];
  if (flags.has("eval")) args.push("--eval", flags.get("eval")!);
  const py = spawnSync("/usr/bin/python3", args, { stdio: "inherit" });
  if (py.status !== 0) throw new Error(`export.py failed (exit ${py.status})`);
  const report = await checkFolder(out, flags.get("val-data") ?? "build/data/compact-8k");
  console.log(JSON.stringify(report, null, 2));
  const manifestPath = join(out, "manifest.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  manifest.parity = report;
  if (flags.has("drop-fp32")) {
    const { bytes } = manifest.files["onnx/model.onnx"];
    for (const file of ["onnx/model.onnx", "onnx/model.tinylm.onnx"]) { // the fp32 graph in both contracts
      rmSync(join(out, file));
      delete manifest.files[file];
      delete manifest.quantization[file];
    }
    manifest.quantization["onnx/model.onnx"] =
      `fp32, not kept in this folder (${(bytes / 2 ** 20).toFixed(1)} MiB); npm run export writes it from the checkpoint`;
  }
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  const ok = report.fp32_max_abs_logit_diff <= 1e-3 && report.fp32_greedy_matches;
  if (!ok) throw new Error(`${out}: fp32 graph does not match PyTorch (max |Δlogit| ${report.fp32_max_abs_logit_diff})`);
  if (report.int8_top1_agreement < 0.95 || Math.abs(report.int8_perplexity_ratio - 1) > 0.03) {
    console.warn(`warning: int8 top-1 agreement ${report.int8_top1_agreement}, perplexity ratio ${report.int8_perplexity_ratio}`);
  }
});
