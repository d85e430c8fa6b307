// Node host: read the model folder and ORT's .wasm from disk, build the app, listen.
//   MODEL_DIR=model PORT=8787 HOST=127.0.0.1 npm start
import { readFileSync, statSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { serve } from "@hono/node-server";
import { trackWasmMemories } from "../engine/wasm-memory.js";
import { settingsFrom } from "./config.js";
import { nodeOrt } from "../node-runtime.js";
import { workerHelperThread } from "../engine/simd/worker-threads.js";
import { drain } from "./shutdown.js";
import { compileRelaxed } from "../engine/simd/relaxed.js";
import { missingFile, readyLine, wireHost } from "./wiring.js";

trackWasmMemories();

export async function startNodeServer(env: Record<string, string | undefined> = process.env) {
  const settings = settingsFrom(env, { cores: availableParallelism(), readText: (path) => readFileSync(path, "utf8") });
  // MODEL_DIR is a model folder, or a .gguf file (then its folder is the model folder).
  const modelPath = resolve(env.MODEL_DIR || "model");
  const isFile = statSync(modelPath, { throwIfNoEntry: false })?.isFile() ?? false;
  const modelDir = isFile ? dirname(modelPath) : modelPath;
  const weightsFile = isFile ? basename(modelPath) : undefined;
  const files = await readdir(modelDir).catch(() => undefined);
  const ort = nodeOrt(settings.ortThreads);
  const read = async (path: string) => {
    try {
      return new Uint8Array(await readFile(join(modelDir, path)));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw missingFile(path, code === "ENOENT", code ?? "unreadable");
    }
  };
  const kernels = async () => WebAssembly.compile(new Uint8Array(await readFile(new URL("../engine/simd/kernels.wasm", import.meta.url))));
  const relaxed = () => compileRelaxed(async () => new Uint8Array(await readFile(new URL("../engine/simd/relaxed.wasm", import.meta.url))), env.RELAXED_SIMD);
  const helper = settings.kernelThreads > 1 ? () => workerHelperThread(env.RELAXED_SIMD) : undefined;
  const { handle, app } = wireHost(settings, { ort, read, kernels, relaxed, helper, warmUp: true, weightsFile, files });
  const port = Number(env.PORT || 8787);
  const hostname = env.HOST || "127.0.0.1";
  const server = serve({ fetch: app.fetch, port, hostname });
  await new Promise<void>((r) => server.once("listening", () => r()));
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const loaded = handle.get().then(
    (m) => console.log(`tinylm-edge: ${readyLine(m)} ready on http://${hostname}:${actualPort}/`),
    (err: Error) => console.error(`tinylm-edge: cannot load model from ${modelDir}: ${err.message}`),
  );
  const close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  });
  return { server, app, handle, loaded, port: actualPort, shutdown: () => drain({ close }, handle, settings.shutdownGraceMs) };
}

/** Serve until SIGTERM/SIGINT, then drain and exit 0 (the `npm start` and `tinylm-edge` entry point). */
export function main(env: Record<string, string | undefined> = process.env): void {
  startNodeServer(env).then(
    ({ shutdown }) => {
      for (const signal of ["SIGTERM", "SIGINT"] as const) {
        process.once(signal, () => void shutdown().then(() => process.exit(0)));
      }
    },
    (err: Error) => {
      console.error(`tinylm-edge: ${err.message}`);
      process.exit(1);
    },
  );
}

if (import.meta.url === `file://${process.argv[1]}`) main();
