// The kernels' helper thread (kernels/threads.c), started by the host with the decoder's HelperData
// (decoder.ts): the same kernels instantiated on the decoder's shared memory, with a stack of their
// own, looping in helper_loop() until the decoder's close(). Plain JavaScript: a thread starts it
// without the TypeScript loader.
import { workerData } from "node:worker_threads";

const RELAXED_KERNELS = ["gemm", "gemm_s8", "gemm_q8b", "gemm_q4b", "scores", "values", "scores_i8", "values_i8"]; // decoder.ts's list
const { kernels, relaxed, memory, stackTop } = workerData;
const imports = {};
const relaxedExports = relaxed ? (await WebAssembly.instantiate(relaxed, { env: { memory } })).exports : null;
for (const name of RELAXED_KERNELS) {
  imports[`relaxed_${name}`] = relaxedExports ? relaxedExports[name] : () => {
    throw new Error(`relaxed_${name} called without relaxed.wasm`);
  };
}
const { exports } = await WebAssembly.instantiate(kernels, { env: { ...imports, memory } });
exports.__stack_pointer.value = stackTop;
exports.helper_loop();
