// Deno host: Deno.serve + the same app. Run with the least privileges that still let ORT read its .wasm:
//   npm run start:deno   (reads only the project folder and the settings variables; listens on 127.0.0.1)
// The task passes --v8-flags=--no-liftoff for the reason given in src/node-runtime.ts (config.ts's DENO_RUN_ARGS).
import * as ort from "onnxruntime-web/wasm";
import { trackWasmMemories } from "../engine/wasm-memory.js";
import { SETTING_NAMES, settingsFrom } from "./config.js";
import { drain } from "./shutdown.js";
import { compileRelaxed } from "../engine/simd/relaxed.js";
import { workerHelperThread } from "../engine/simd/worker-threads.js";
import { missingFile, readyLine, wireHost } from "./wiring.js";

declare const Deno: {
  env: { get(name: string): string | undefined };
  readFile(path: string | URL): Promise<Uint8Array>;
  readTextFileSync(path: string): string;
  serve(
    options: { port: number; hostname: string; onListen?: (addr: { port: number }) => void },
    handler: (req: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): { finished: Promise<void>; shutdown(): Promise<void> };
  addSignalListener(signal: "SIGTERM" | "SIGINT", handler: () => void): void;
  exit(code: number): never;
};

trackWasmMemories();

const env = Object.fromEntries(SETTING_NAMES.map((name) => [name, Deno.env.get(name)]));
const settings = settingsFrom(env, { cores: navigator.hardwareConcurrency, readText: (path) => Deno.readTextFileSync(path) }); // API_KEYS as a file: under the project folder (--allow-read=.)
const modelDir = (env.MODEL_DIR || "model").replace(/\/$/, "");
ort.env.wasm.wasmBinary = await Deno.readFile(new URL(import.meta.resolve("onnxruntime-web/ort-wasm-simd-threaded.wasm")));
ort.env.wasm.numThreads = 1;
ort.env.logLevel = "error";

const read = async (path: string) => {
  try {
    return await Deno.readFile(`${modelDir}/${path}`);
  } catch (err) {
    throw missingFile(path, (err as Error).name === "NotFound", (err as Error).name);
  }
};
const kernels = async () => WebAssembly.compile((await Deno.readFile(new URL("../engine/simd/kernels.wasm", import.meta.url))) as Uint8Array<ArrayBuffer>);
const relaxed = () => compileRelaxed(() => Deno.readFile(new URL("../engine/simd/relaxed.wasm", import.meta.url)), env.RELAXED_SIMD);
// THREADS=2: our kernels' second thread (onnxruntime-web stays on one here: its Node build is not loaded).
const helper = settings.kernelThreads > 1 ? () => workerHelperThread(env.RELAXED_SIMD) : undefined;
const { handle, app } = wireHost(settings, { ort, read, kernels, relaxed, helper, warmUp: true });
const hostname = env.HOST || "127.0.0.1";
const server = Deno.serve(
  { port: Number(env.PORT || 8787), hostname, onListen: ({ port }) => console.log(`tinylm-edge (deno) listening on http://${hostname}:${port}/`) },
  (req, info) => app.fetch(req, { remoteAddr: info.remoteAddr.hostname }),
);
let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.addSignalListener(signal, () => {
    if (stopping) return;
    stopping = true;
    void drain({ close: () => server.shutdown() }, handle, settings.shutdownGraceMs).then(() => Deno.exit(0));
  });
}
handle.get().then(
  (m) => console.log(`tinylm-edge (deno): ${readyLine(m)} ready`),
  (err: Error) => console.error(`tinylm-edge (deno): cannot load model from ${modelDir}: ${err.message}`),
);
