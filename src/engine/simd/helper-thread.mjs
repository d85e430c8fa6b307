// The kernels' helper thread (kernels/threads.c), started by the host with the decoder's HelperData
// (decoder.ts): the same kernels instantiated on the decoder's shared memory, with a stack of their
// own, looping in helper_loop() until the decoder's close(). Plain JavaScript: a thread starts it
// without the TypeScript loader.
import { workerData } from "node:worker_threads";

const { kernels, relaxed, relaxedExports: exportNames, memory, stackTop } = workerData;
const relaxedExports = relaxed ? (await WebAssembly.instantiate(relaxed, { env: { memory } })).exports : null;
// The kernels import relaxed.wasm's functions as env.relaxed_<name> (matmul.c, attention.c).
const imports = { memory };
for (const { module, name, kind } of WebAssembly.Module.imports(kernels)) {
  if (module !== "env" || kind !== "function" || !name.startsWith("relaxed_")) continue;
  imports[name] = relaxedExports ? relaxedExports[exportNames[name]] : () => { // the export (its form) the calling thread took
    throw new Error(`${name} called without relaxed.wasm`);
  };
}
const { exports } = await WebAssembly.instantiate(kernels, { env: imports });
exports.__stack_pointer.value = stackTop;
exports.helper_loop();
