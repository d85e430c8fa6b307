// Settings from environment variables (Node, Deno) or Worker vars: one parser for every host.
import { DEFAULT_CONFIG, type AppConfig } from "../app.js";
import type { EngineOptions } from "../engine/engine.js";
import type { BackendChoice } from "../model.js";
import { parseApiKeys, type ApiKey } from "../key-limits.js";
import { DEFAULT_KV_CACHE, type KvCacheKind } from "../engine/simd/decoder.js";
import type { WeightBits } from "../engine/simd/llama-weights.js";

/** Every variable the hosts read (Deno is granted exactly these). */
export const SETTING_NAMES = [
  "MODEL_DIR", "ONNX_FILE", "HOST", "PORT", "API_KEY", "API_KEYS", "MAX_BATCH", "MAX_QUEUE", "MAX_TOKENS_LIMIT",
  "MAX_BODY_BYTES", "CORS_ORIGINS", "PREFIX_CACHE", "LOW_MEMORY", "THREADS", "ENGINE", "METRICS_PUBLIC",
  "SHUTDOWN_GRACE_MS", "LOG", "RELAXED_SIMD", "KV_CACHE", "WEIGHT_BITS", "MAX_CONTEXT",
] as const;

/**
 * How the Deno host runs: least privilege (reads the project folder, the settings variables, listens
 * on loopback), V8's optimizing compiler up front, and request.signal aborting only when a client
 * goes away (Deno's legacy behaviour also aborts it once a response is returned, which would cancel
 * every stream). deno.json's "start" task is this command; a test keeps the two equal.
 */
export const DENO_RUN_ARGS = [
  "run", "--v8-flags=--no-liftoff", "--unstable-no-legacy-abort", "--allow-read=.", `--allow-env=${SETTING_NAMES.join(",")}`,
  "--allow-net=127.0.0.1", "src/hosts/deno.ts",
];

export interface HostSettings {
  app: AppConfig;
  engine: EngineOptions;
  onnxFile: string;
  lowMemory: boolean;
  backend: BackendChoice;
  /** The WASM SIMD kernels' KV cache: f32 or int8 (KV_CACHE). */
  kvCache: KvCacheKind;
  /** Bits per weight of a safetensors / GGUF checkpoint's matrices on our kernels: 8, 7 or 4 (WEIGHT_BITS). */
  weightBits: WeightBits;
  /** Positions per sequence the server admits, below the model's context (MAX_CONTEXT), or null: the model's. */
  maxContext: number | null;
  /** How long running streams may go on after SIGTERM/SIGINT before they are ended (Node, Deno). */
  shutdownGraceMs: number;
  /** Our kernels' threads: 2 (a helper thread, kernels/threads.c) when THREADS ≥ 2 on a host with 2 cores or more; else 1. */
  kernelThreads: number;
  /** onnxruntime-web's pool (Node): THREADS, else 1 (its single stream decodes slower on 2). */
  ortThreads: number;
}

/**
 * The keys: `API_KEY` (one key, named "default" in /metrics) and `API_KEYS` (named keys with optional
 * limits, key-limits.ts; unlimited by default). `API_KEYS` without a ":" names a file of entries,
 * one per line, read with `readText` (hosts with files: Node, Deno).
 */
export function apiKeysFrom(env: Record<string, string | undefined>, readText?: (path: string) => string): ApiKey[] {
  const keys: ApiKey[] = env.API_KEY ? [{ name: "default", key: env.API_KEY }] : [];
  const list = env.API_KEYS?.trim();
  if (!list) return keys;
  let named: ApiKey[];
  if (list.includes(":")) named = parseApiKeys(list);
  else {
    if (!readText) throw new Error("API_KEYS names a file, but this host reads no files: give the entries themselves (name:key, comma-separated)");
    let text: string;
    try {
      text = readText(list);
    } catch (err) {
      // Neither the value nor the runtime's message (which repeats it): a bare key given by mistake
      // would be read as a path and must not end up in a log.
      throw new Error(`API_KEYS holds no ":", so it names a file of name:key lines, which cannot be read (${(err as { code?: string }).code ?? (err as Error).name})`);
    }
    named = parseApiKeys(text, list);
  }
  for (const k of named) {
    if (keys.some((d) => d.name === k.name || d.key === k.key)) throw new Error(`API_KEYS entry ${k.name}: its name or key is API_KEY's (named "default")`);
  }
  return [...keys, ...named];
}

export function settingsFrom(env: Record<string, string | undefined>, defaults: { maxTokensLimit?: number; lowMemory?: boolean; maxContext?: number; cores?: number; readText?: (path: string) => string } = {}): HostSettings {
  const int = (name: string, fallback: number, least = 0): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < least) throw new Error(`${name} must be ${least ? `an integer of at least ${least}` : "a non-negative integer"}, got "${raw}"`);
    return n;
  };
  const origins = env.CORS_ORIGINS?.trim();
  const backend = (env.ENGINE || "auto") as BackendChoice;
  if (!["auto", "simd", "ort"].includes(backend)) throw new Error(`ENGINE must be auto, simd or ort, got "${env.ENGINE}"`);
  const kvCache = (env.KV_CACHE || DEFAULT_KV_CACHE) as KvCacheKind;
  if (!["f32", "int8"].includes(kvCache)) throw new Error(`KV_CACHE must be f32 or int8, got "${env.KV_CACHE}"`);
  const weightBits = Number(env.WEIGHT_BITS || 8) as WeightBits;
  if (weightBits !== 8 && weightBits !== 7 && weightBits !== 4) throw new Error(`WEIGHT_BITS must be 8, 7 or 4, got "${env.WEIGHT_BITS}"`);
  // read by the hosts where they compile relaxed.wasm (src/engine/simd/relaxed.ts)
  if (![undefined, "", "1", "auto", "fused", "split", "0"].includes(env.RELAXED_SIMD)) throw new Error(`RELAXED_SIMD must be auto (or 1), fused, split or 0, got "${env.RELAXED_SIMD}"`);
  return {
    app: {
      apiKeys: apiKeysFrom(env, defaults.readText),
      corsOrigins: !origins || origins === "*" ? "*" : origins.split(",").map((o) => o.trim()),
      maxBodyBytes: int("MAX_BODY_BYTES", DEFAULT_CONFIG.maxBodyBytes),
      maxTokensLimit: int("MAX_TOKENS_LIMIT", defaults.maxTokensLimit ?? DEFAULT_CONFIG.maxTokensLimit),
      metricsPublic: env.METRICS_PUBLIC === "1",
      accessLog: env.LOG !== "quiet",
    },
    engine: {
      // 0 would hold every request forever (no batch) or refuse every one (no queue).
      maxBatch: int("MAX_BATCH", 8, 1),
      maxQueue: int("MAX_QUEUE", 32, 1),
      prefixCache: env.PREFIX_CACHE !== "0",
    },
    onnxFile: env.ONNX_FILE || "onnx/model_quantized.onnx",
    lowMemory: env.LOW_MEMORY ? env.LOW_MEMORY === "1" : (defaults.lowMemory ?? false),
    backend,
    kvCache,
    weightBits,
    maxContext: env.MAX_CONTEXT ? int("MAX_CONTEXT", 0, 16) : (defaults.maxContext ?? null),
    shutdownGraceMs: int("SHUTDOWN_GRACE_MS", 10_000),
    // 1 unless THREADS says more: 2 threads measured faster on a 2-vCPU machine of its own, slower
    // when another busy process shares it (BENCHMARKS.md). `cores` caps it (hosts with threads give theirs).
    kernelThreads: Math.min(2, defaults.cores ?? 2, int("THREADS", 1, 1)),
    ortThreads: int("THREADS", 1, 1),
  };
}
