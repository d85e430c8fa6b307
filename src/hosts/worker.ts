// Cloudflare Workers host. The model comes from static assets (default, each file ≤ 25 MiB) or from
// an R2 bucket (binding MODEL_BUCKET, for larger models). The session is created lazily, once per
// isolate, and shared by concurrent requests. Workers cannot compile WebAssembly from bytes, so both
// .wasm files (ours and ORT's) are imported as modules (wrangler precompiles them); ORT has no hook
// for a precompiled module, so it gets one through a WebAssembly.instantiate shim (below).
import * as ort from "onnxruntime-web/wasm";
// wrangler turns a .wasm import into a precompiled WebAssembly.Module (Workers forbid compiling bytes).
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm";
import kernelsWasm from "../engine/simd/kernels.wasm";
// workerd has relaxed SIMD (V8 ≥ 11.4 ships it); RELAXED_SIMD=0 turns it off.
import relaxedWasm from "../engine/simd/relaxed.wasm";
import type { createApp } from "../app.js";
import { trackWasmMemories } from "../engine/wasm-memory.js";
import type { ReadModelFile } from "../model.js";
import { settingsFrom } from "./config.js";
import { wireHost } from "./wiring.js";

interface R2Object {
  arrayBuffer(): Promise<ArrayBuffer>;
}
/** Cloudflare's rate-limiting binding ([[ratelimits]] in wrangler.toml): a counter per key, per location. */
interface RateLimitBinding {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}
export interface WorkerEnv {
  ASSETS?: { fetch(request: Request): Promise<Response> };
  KEY_RATE_LIMITER?: RateLimitBinding;
  MODEL_BUCKET?: { get(key: string): Promise<R2Object | null> };
  MODEL_PREFIX?: string;
  [setting: string]: unknown;
}

trackWasmMemories();

// Workers have no threads: one WASM thread, no proxy worker.
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;
ort.env.logLevel = "error";

/** ORT has no instantiateWasm hook: give it a placeholder binary and swap in the imported module. */
async function withPrecompiledWasm<T>(create: () => Promise<T>): Promise<T> {
  const placeholder = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]);
  ort.env.wasm.wasmBinary = placeholder;
  const original = WebAssembly.instantiate;
  WebAssembly.instantiate = (async (source: unknown, imports?: WebAssembly.Imports) => {
    if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
      const instance = await original(ortWasm as WebAssembly.Module, imports);
      return { instance, module: ortWasm };
    }
    return original(source as WebAssembly.Module, imports);
  }) as typeof WebAssembly.instantiate;
  try {
    return await create();
  } finally {
    WebAssembly.instantiate = original;
  }
}

function modelReader(env: WorkerEnv): ReadModelFile {
  if (env.MODEL_BUCKET) {
    const bucket = env.MODEL_BUCKET;
    const prefix = env.MODEL_PREFIX ?? "model/";
    return async (path) => {
      const object = await bucket.get(prefix + path);
      if (!object) throw new Error(`R2 object ${prefix}${path} not found in MODEL_BUCKET`);
      return new Uint8Array(await object.arrayBuffer());
    };
  }
  if (!env.ASSETS) throw new Error("no model source: bind static assets as ASSETS or an R2 bucket as MODEL_BUCKET");
  const assets = env.ASSETS;
  return async (path) => {
    const res = await assets.fetch(new Request(`https://assets.local/${path}`));
    if (!res.ok) throw new Error(`model asset /${path} not found (HTTP ${res.status})`);
    return new Uint8Array(await res.arrayBuffer());
  };
}

let app: ReturnType<typeof createApp> | null = null;

function appFor(env: WorkerEnv) {
  if (app) return app;
  const vars = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === "string")) as Record<string, string>;
  // A Worker request has a CPU-time budget: cap generations lower than on a server by default.
  const settings = settingsFrom(vars, { maxTokensLimit: 512, lowMemory: true });
  // Concurrency and tokens-per-minute limits are counted in this isolate; the binding, where one is
  // configured, counts each key's generation requests across isolates (per Cloudflare location).
  const binding = env.KEY_RATE_LIMITER;
  const sharedRateLimit = typeof binding?.limit === "function"
    ? { limit: async (name: string) => (await binding.limit({ key: name })).success, periodSeconds: Number(vars.KEY_RATE_LIMIT_PERIOD) || 60 }
    : undefined;
  app = wireHost({ ...settings, app: { ...settings.app, sharedRateLimit } }, {
    ort,
    read: (path) => modelReader(env)(path), // a missing binding fails the load (503 with its reason), not the isolate
    kernels: async () => kernelsWasm as WebAssembly.Module,
    relaxed: async () => (vars.RELAXED_SIMD === "0" ? null : (relaxedWasm as WebAssembly.Module)),
    warmUp: false,
    around: withPrecompiledWasm,
  }).app;
  return app;
}

export default {
  fetch(request: Request, env: WorkerEnv, ctx: unknown): Response | Promise<Response> {
    try {
      return appFor(env).fetch(request, env, ctx as never);
    } catch (err) {
      console.error("worker configuration error:", err);
      const error = { message: `Server misconfigured: ${(err as Error).message}`, type: "service_unavailable", param: null, code: "misconfigured" };
      return Response.json({ error }, { status: 503 });
    }
  },
};
