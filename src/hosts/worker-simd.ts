// Cloudflare Workers host on our WASM SIMD kernels only (wrangler.simd.toml, ENGINE=simd): nothing
// here imports onnxruntime-web, so its 14 MB .wasm is neither uploaded nor compiled when an isolate
// starts. A model only onnxruntime-web can run is a load error that says so (src/engine/backends.ts).
import { workerHost } from "./worker-host.js";

export default workerHost(null);
