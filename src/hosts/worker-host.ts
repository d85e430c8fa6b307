// Cloudflare Workers host, shared by both builds: worker.ts (with onnxruntime-web, the fallback
// backend) and worker-simd.ts (our kernels only: no onnxruntime-web in the bundle). The model comes
// from static assets (default, each file ≤ 25 MiB) or from an R2 bucket (binding MODEL_BUCKET, for
// larger models). It is loaded lazily, once per isolate, and shared by concurrent requests. Workers
// cannot compile WebAssembly from bytes, so our kernels' .wasm files are imported as modules
// (wrangler precompiles them).
import kernelsWasm from "../engine/simd/kernels.wasm";
// workerd has relaxed SIMD (V8 ≥ 11.4 ships it); RELAXED_SIMD=0 turns it off.
import relaxedWasm from "../engine/simd/relaxed.wasm";
import { withDotForm } from "../engine/simd/relaxed.js";
import type { createApp } from "../app.js";
import { trackWasmMemories } from "../engine/wasm-memory.js";
import type { ReadModelFile } from "../model.js";
import { settingsFrom } from "./config.js";
import { wireHost, type RuntimeParts } from "./wiring.js";

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

/** What a build brings of onnxruntime-web: the module and the wrapper its load needs, or null (none in the bundle). */
export type WorkerOrt = Pick<RuntimeParts, "ort" | "around"> | null;

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

/** The Worker's fetch handler; the app is built on the first request (it needs env) and kept for the isolate. */
export function workerHost(ortParts: WorkerOrt): { fetch(request: Request, env: WorkerEnv, ctx: unknown): Response | Promise<Response> } {
  trackWasmMemories();
  let app: ReturnType<typeof createApp> | null = null;

  function appFor(env: WorkerEnv) {
    if (app) return app;
    const vars = Object.fromEntries(Object.entries(env).filter(([, v]) => typeof v === "string")) as Record<string, string>;
    // A Worker request has a CPU-time budget and an isolate 128 MB: cap generations and the context
    // (the KV cache a sequence may hold) lower than on a server by default.
    const settings = settingsFrom(vars, { maxTokensLimit: 512, lowMemory: true, maxContext: 2048 });
    // Concurrency and tokens-per-minute limits are counted in this isolate; the binding, where one is
    // configured, counts each key's generation requests across isolates (per Cloudflare location).
    const binding = env.KEY_RATE_LIMITER;
    const sharedRateLimit = typeof binding?.limit === "function"
      ? { limit: async (name: string) => (await binding.limit({ key: name })).success, periodSeconds: Number(vars.KEY_RATE_LIMIT_PERIOD) || 60 }
      : undefined;
    app = wireHost({ ...settings, app: { ...settings.app, sharedRateLimit } }, {
      ort: ortParts?.ort ?? null,
      around: ortParts?.around,
      read: (path) => modelReader(env)(path), // a missing binding fails the load (503 with its reason), not the isolate
      kernels: async () => kernelsWasm as WebAssembly.Module,
      relaxed: async () => (vars.RELAXED_SIMD === "0" ? null : withDotForm(relaxedWasm as WebAssembly.Module, vars.RELAXED_SIMD)),
      warmUp: false,
    }).app;
    return app;
  }

  return {
    fetch(request, env, ctx) {
      try {
        return appFor(env).fetch(request, env, ctx as never);
      } catch (err) {
        console.error("worker configuration error:", err);
        const error = { message: `Server misconfigured: ${(err as Error).message}`, type: "service_unavailable", param: null, code: "misconfigured" };
        return Response.json({ error }, { status: 503 });
      }
    },
  };
}
