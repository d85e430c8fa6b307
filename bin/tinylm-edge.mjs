#!/usr/bin/env node
// The server's command line: `npx tinylm-edge --model DIR --port N ...` (flags override the same
// settings given as environment variables; README lists them all).
import { parseArgs } from "node:util";

const FLAGS = {
  model: ["MODEL_DIR", "the model folder (default: model)"],
  "onnx-file": ["ONNX_FILE", "graph in the folder (default: onnx/model_quantized.onnx)"],
  host: ["HOST", "address to listen on (default: 127.0.0.1)"],
  port: ["PORT", "port (default: 8787)"],
  engine: ["ENGINE", "auto | simd | ort (default: auto)"],
  "api-key": ["API_KEY", "require Authorization: Bearer <key>"],
  "max-batch": ["MAX_BATCH", "sequences decoded together (default: 8)"],
  "max-queue": ["MAX_QUEUE", "requests waiting before 429 (default: 32)"],
  "max-tokens-limit": ["MAX_TOKENS_LIMIT", "largest max_tokens (default: 2048)"],
  "max-body-bytes": ["MAX_BODY_BYTES", "request body limit (default: 1000000)"],
  "cors-origins": ["CORS_ORIGINS", "comma-separated allowed origins (default: *)"],
  "prefix-cache": ["PREFIX_CACHE", "1 or 0 (default: 1)"],
  "low-memory": ["LOW_MEMORY", "1: onnxruntime-web's low-memory session options"],
  threads: ["THREADS", "WASM threads: 2 shares our kernels' work with a second thread; onnxruntime-web's pool (default: 1)"],
  "metrics-public": ["METRICS_PUBLIC", "1: /metrics without the API key"],
  "shutdown-grace-ms": ["SHUTDOWN_GRACE_MS", "running requests' time after SIGTERM (default: 10000)"],
};

let parsed;
try {
  parsed = parseArgs({
    options: { ...Object.fromEntries(Object.keys(FLAGS).map((f) => [f, { type: "string" }])), help: { type: "boolean", short: "h" } },
    allowPositionals: false,
  });
} catch (err) {
  console.error(`tinylm-edge: ${err.message} (see --help)`);
  process.exit(2);
}
if (parsed.values.help) {
  console.log("usage: tinylm-edge [options]\n\nServes an OpenAI-compatible API for a model folder (Node host).\n\noptions (each also read from the environment variable shown):");
  for (const [flag, [env, what]] of Object.entries(FLAGS)) console.log(`  --${flag.padEnd(18)} ${env.padEnd(18)} ${what}`);
  console.log("  -h, --help");
  process.exit(0);
}
const env = { ...process.env };
for (const [flag, [name]] of Object.entries(FLAGS)) if (parsed.values[flag] !== undefined) env[name] = parsed.values[flag];
const { register } = await import("tsx/esm/api");
register();
const { main } = await import("../src/hosts/node.ts");
main(env);
