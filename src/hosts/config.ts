// Settings from environment variables (Node, Deno) or Worker vars: one parser for every host.
import { DEFAULT_CONFIG, type AppConfig } from "../app.js";
import type { EngineOptions } from "../engine/engine.js";
import type { BackendChoice } from "../model.js";

/** Every variable the hosts read (Deno is granted exactly these). */
export const SETTING_NAMES = [
  "MODEL_DIR", "ONNX_FILE", "HOST", "PORT", "API_KEY", "MAX_BATCH", "MAX_QUEUE", "MAX_TOKENS_LIMIT",
  "MAX_BODY_BYTES", "CORS_ORIGINS", "PREFIX_CACHE", "LOW_MEMORY", "THREADS", "ENGINE", "METRICS_PUBLIC",
  "SHUTDOWN_GRACE_MS", "LOG", "RELAXED_SIMD",
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
  /** How long running streams may go on after SIGTERM/SIGINT before they are ended (Node, Deno). */
  shutdownGraceMs: number;
}

export function settingsFrom(env: Record<string, string | undefined>, defaults: { maxTokensLimit?: number; lowMemory?: boolean } = {}): HostSettings {
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
  return {
    app: {
      apiKey: env.API_KEY || undefined,
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
    shutdownGraceMs: int("SHUTDOWN_GRACE_MS", 10_000),
  };
}
