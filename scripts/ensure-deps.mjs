#!/usr/bin/env node
// Install the npm dependencies when they are missing or older than package-lock.json, else do
// nothing (so `npm start` and `npm test` can run it first, every time). Node's built-ins only: it
// runs before anything is installed. A stamp in node_modules records the lock file it installed.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "node_modules", ".tinylm-edge-lock.sha256");
const lock = createHash("sha256").update(readFileSync(join(root, "package-lock.json"))).digest("hex");

if (process.argv.includes("--help")) {
  console.log("usage: node scripts/ensure-deps.mjs   (npm ci when node_modules is missing or stale; no options)");
} else if (existsSync(stamp) && readFileSync(stamp, "utf8").trim() === lock) {
  // up to date
} else {
  console.error("tinylm-edge: installing npm dependencies (npm ci)…");
  // onnxruntime-node ships its CPU binaries in the package; its install step would download CUDA ones.
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit", env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" } });
  writeFileSync(stamp, lock + "\n");
}
