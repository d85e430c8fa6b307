// Our kernels' second thread where the runtime has node:worker_threads (Node; Deno, whose Node
// compatibility passes WebAssembly modules and shared memories to a Worker as Node does): their
// threads builds (kernels/build.sh --threads) and a Worker running helper-thread.mjs. Not for
// Workers (no threads).
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";
import type { HelperThread } from "./decoder.js";
import { compileRelaxed } from "./relaxed.js";

/** THREADS ≥ 2. RELAXED_SIMD=0 turns relaxed SIMD off here as for the single-thread build. */
export async function workerHelperThread(relaxedSetting?: string): Promise<HelperThread> {
  const here = (file: string) => new URL(file, import.meta.url);
  const kernels = await WebAssembly.compile(readFileSync(here("kernels-threads.wasm")));
  const relaxed = await compileRelaxed(async () => new Uint8Array(readFileSync(here("relaxed-threads.wasm"))), relaxedSetting);
  return {
    kernels,
    relaxed,
    start(data, exited) {
      const worker = new Worker(here("helper-thread.mjs"), { workerData: data });
      worker.unref(); // never keeps the process alive
      worker.on("error", (err) => console.error(`tinylm-edge: the kernels' helper thread failed: ${err.message}`));
      worker.on("exit", exited);
    },
  };
}
