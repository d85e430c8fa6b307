// One engine benchmark row per process (onnxruntime-web fixes its thread count at initialisation).
import { benchEngine, wasmHeapBytes } from "./engine.js";

const [engine, modelDir, file, threads, runs] = process.argv.slice(2);
let peakRss = process.memoryUsage().rss;
const timer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
const row = await benchEngine(engine as "web" | "native", modelDir, file, Number(threads), Number(runs));
clearInterval(timer);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
console.log(JSON.stringify({ ...row, peak_rss_mb: peakRss / 2 ** 20, wasm_heap_mb: engine === "web" ? wasmHeapBytes() / 2 ** 20 : null }));
