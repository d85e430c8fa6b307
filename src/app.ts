// The Hono app, built from injected parts: runtime-agnostic (Node, Workers and Deno hosts wrap it).
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { HTTPException } from "hono/http-exception";
import { validator } from "hono/validator";
import type { z } from "zod";
import { ApiError, invalidRequest, modelNotFound } from "./openai/errors.js";
import { chatCompletions } from "./openai/chat.js";
import { completions } from "./openai/completions.js";
import { responses } from "./openai/responses.js";
import { chatRequest, completionRequest, describeIssue, detokenizeRequest, responsesRequest, tokenizeRequest } from "./openai/schemas.js";
import { Metrics } from "./metrics.js";
import { wasmHeapBytes } from "./engine/wasm-memory.js";
import { keepAlive } from "./openai/sse.js";
import { publicReason, type LoadedModel, type ModelHandle } from "./model.js";
import type { ClientScope } from "./openai/generation.js";
import { PLAYGROUND_HTML, playgroundCsp } from "./playground.js";
import { KeyLimiter, KeyRing, type ApiKey } from "./key-limits.js";

export interface AppConfig {
  /** Bearer keys (none: no key asked), each with optional limits (key-limits.ts). */
  apiKeys?: ApiKey[];
  /**
   * A limit shared beyond this process (Cloudflare's rate-limiting binding): called with the key's
   * name for each generation request; false refuses it with a 429 (Retry-After: the period).
   */
  sharedRateLimit?: { limit(name: string): Promise<boolean>; periodSeconds: number };
  corsOrigins: string[] | "*";
  maxBodyBytes: number;
  maxTokensLimit: number;
  /** Serve /metrics without the API key (it shows traffic counters). */
  metricsPublic?: boolean;
  /** One line per request on stdout (method, path, status, tokens in/out, ms); LOG=quiet turns it off. */
  accessLog?: boolean;
}

/** Bodies declared larger than the limit are read and dropped up to this size before the 413. */
const DRAIN_LIMIT_BYTES = 64 * 2 ** 20;

export const DEFAULT_CONFIG: AppConfig = { corsOrigins: "*", maxBodyBytes: 1_000_000, maxTokensLimit: 2048 };

/**
 * Request body → UTF-8 JSON → schema, with every failure as OpenAI's error object. Only
 * application/json: any other type would let a web page start generations with a "simple"
 * cross-origin request that needs no CORS preflight.
 */
function jsonBody<S extends z.ZodType>(schema: S) {
  return validator("json", async (_value, c) => {
    const type = (c.req.header("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json") {
      throw new ApiError(415, `Content-Type must be application/json, got "${type || "none"}"`, "invalid_request_error", null, "unsupported_media_type");
    }
    const bytes = await c.req.arrayBuffer();
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw invalidRequest("The request body is not valid UTF-8");
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw invalidRequest(`We could not parse the JSON body of your request (${(err as Error).message})`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const { message, param } = describeIssue(parsed.error);
      throw invalidRequest(message, param);
    }
    return parsed.data as z.infer<S>;
  });
}

/** The routes that generate: the ones a key's limits apply to. */
const GENERATION_ROUTES = ["/v1/completions", "/v1/chat/completions", "/v1/responses"];

/**
 * Run `done` once the response has ended: at once for a plain body, at a stream's last chunk, or
 * when the client cancels it (a cancelled stream never reaches its end).
 */
function onResponseEnd(c: Context, done: () => void): void {
  const body = c.res.body;
  if (!c.res.headers.get("Content-Type")?.startsWith("text/event-stream") || !body) return done();
  let ended = false;
  const end = () => {
    if (!ended) done();
    ended = true;
  };
  const reader = body.getReader();
  const wrapped = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done: last, value } = await reader.read();
        if (last) {
          end();
          controller.close();
        } else controller.enqueue(value);
      } catch (err) {
        end();
        controller.error(err);
      }
    },
    cancel(reason) {
      end();
      return reader.cancel(reason);
    },
  });
  c.res = new Response(wrapped, c.res);
}

const getVar = <T>(c: Context, name: string) => (c.get as (key: string) => T | undefined)(name);
const setVar = (c: Context, name: string, value: unknown) => (c.set as (key: string, value: unknown) => void)(name, value);

/** A short digest of the Authorization header: prefix caches are keyed by it, never by the key itself. */
async function keyTag(authorization: string | undefined): Promise<string> {
  if (!authorization) return "";
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(authorization)));
  return Array.from(digest.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

export function createApp(handle: ModelHandle, config: AppConfig = DEFAULT_CONFIG): Hono {
  const app = new Hono();
  const metrics = new Metrics();
  const limits = { maxTokensLimit: config.maxTokensLimit };

  const model = async (c: Context, requested?: string): Promise<LoadedModel> => {
    let m: LoadedModel;
    try {
      m = await handle.get();
    } catch (err) {
      console.error("model failed to load:", (err as Error).message);
      throw new ApiError(503, `The model is not available: ${publicReason(err as Error)}`, "service_unavailable", null, "model_not_loaded");
    }
    if (requested !== undefined && requested !== m.id) throw modelNotFound(requested);
    return m;
  };

  app.onError((err, c) => {
    let api: ApiError;
    if (err instanceof ApiError) api = err;
    else if (err instanceof HTTPException) {
      const status = err.status as ApiError["status"];
      const type = status === 401 ? "authentication_error" : "invalid_request_error";
      api = new ApiError(status, err.message || "Request failed", type, null, status === 401 ? "invalid_api_key" : null);
    } else {
      const requestId = crypto.randomUUID();
      console.error(`request ${requestId} failed:`, err);
      api = new ApiError(500, `The server had an error processing your request (request id ${requestId})`, "server_error");
    }
    return c.json(api.toJSON(), api.status, api.headers);
  });
  app.notFound((c) => c.json(new ApiError(404, `Unknown route ${c.req.method} ${c.req.path}`, "not_found_error").toJSON(), 404));

  app.use("*", async (c, next) => {
    const start = performance.now();
    await next();
    const { method, path, routePath } = c.req;
    const status = c.res.status;
    const done = () => {
      const seconds = (performance.now() - start) / 1000;
      metrics.observeRequest(routePath, status, seconds);
      if (!config.accessLog) return;
      const usage = getVar<{ prompt: number; completion: number }>(c, "usage");
      const key = getVar<ApiKey>(c, "apiKey");
      console.log(`${method} ${path} ${status}${key ? ` key ${key.name}` : ""}${usage ? ` tokens ${usage.prompt} in, ${usage.completion} out` : ""} ${(seconds * 1000).toFixed(0)} ms`);
    };
    // A stream ends with its last event (or its cancellation), not when its headers go out.
    onResponseEnd(c, done);
  });
  app.use("*", cors({ origin: config.corsOrigins === "*" ? "*" : config.corsOrigins, allowHeaders: ["Authorization", "Content-Type"] }));
  // A declared length over the limit: read (and drop) the body before answering, up to a bound, so the
  // client finishes sending and reads the 413; answering mid-upload makes Node close the socket under it.
  app.use("*", async (c, next) => {
    const declared = Number(c.req.header("Content-Length") ?? NaN);
    if (!(declared > config.maxBodyBytes)) return next();
    if (declared <= DRAIN_LIMIT_BYTES && c.req.raw.body) {
      const reader = c.req.raw.body.getReader();
      try {
        while (!(await reader.read()).done);
      } catch {
        // the client went away
      }
    }
    throw new ApiError(413, `The request body is larger than ${config.maxBodyBytes} bytes`, "invalid_request_error", null, "request_too_large", { Connection: "close" });
  });
  app.use(
    "*",
    bodyLimit({
      maxSize: config.maxBodyBytes,
      onError: () => {
        throw new ApiError(413, `The request body is larger than ${config.maxBodyBytes} bytes`, "invalid_request_error", null, "request_too_large");
      },
    }),
  );
  const keys = config.apiKeys ?? [];
  const limiters = new Map(keys.map((k) => [k.name, new KeyLimiter(k)]));
  if (keys.length) {
    const ring = new KeyRing(keys);
    for (const k of keys) metrics.registerKey(k.name);
    const requireKey = async (c: Context, next: () => Promise<void>) => {
      const [scheme, token = ""] = (c.req.header("Authorization") ?? "").trim().split(/\s+/, 2);
      const key = scheme?.toLowerCase() === "bearer" ? await ring.find(token) : undefined;
      if (!key) throw new ApiError(401, "Incorrect API key provided. Send it as 'Authorization: Bearer <key>'.", "authentication_error", null, "invalid_api_key");
      setVar(c, "apiKey", key);
      metrics.observeKeyRequest(key.name);
      await next();
    };
    app.use("/v1/*", requireKey);
    app.use("/tokenize", requireKey);
    app.use("/detokenize", requireKey);
    if (!config.metricsPublic) app.use("/metrics", requireKey);
    // A key's limits, on the routes that generate: the shared limit (Workers' binding) first, then
    // this process's concurrency and token bucket; the slot is held until the response has ended.
    const limitKey = async (c: Context, next: () => Promise<void>) => {
      if (c.req.method !== "POST") return next();
      const key = getVar<ApiKey>(c, "apiKey")!;
      const refuse = (message: string, seconds: number) => {
        metrics.observeKeyRateLimited(key.name);
        return new ApiError(429, message, "rate_limit_error", null, "rate_limit_exceeded", { "Retry-After": String(seconds) });
      };
      const shared = config.sharedRateLimit;
      if (shared && !(await shared.limit(key.name))) {
        throw refuse(`Rate limit reached for key ${key.name} on requests (the deployment's rate-limiting binding). Please try again in ${shared.periodSeconds}s.`, shared.periodSeconds);
      }
      const admitted = limiters.get(key.name)!.admit();
      if (!("release" in admitted)) throw refuse(admitted.message, admitted.retryAfterSeconds);
      try {
        await next();
      } finally {
        // An error was answered by onError, a body by us: either way the slot is released at the end.
        onResponseEnd(c, admitted.release);
      }
    };
    for (const route of GENERATION_ROUTES) app.use(route, limitKey);
  }
  // Prefix caches are shared only within one address and key, and not at all without a key while
  // any web page may call us (CORS "*"): a page could time its way through the local user's prompts.
  const prefixReuse = keys.length > 0 || config.corsOrigins !== "*";
  const scopeOf = async (c: Context, user: string | null | undefined, promptCacheKey?: string | null): Promise<ClientScope> => {
    // Latency per choice: from the request's arrival to its first token, then between its tokens.
    const arrived = performance.now();
    const address = clientAddress(c);
    const usage = { prompt: 0, completion: 0 };
    setVar(c, "usage", usage);
    const key = getVar<ApiKey>(c, "apiKey");
    const limiter = key && limiters.get(key.name);
    const last = new Map<number, number>();
    const onToken = (choice: number) => {
      if (key) {
        metrics.observeKeyTokens(key.name, 1);
        limiter?.charge(1);
      }
      const now = performance.now();
      const before = last.get(choice);
      if (before === undefined) metrics.observeTimeToFirstToken((now - arrived) / 1000);
      else metrics.observeInterTokenLatency((now - before) / 1000);
      last.set(choice, now);
    };
    return {
      client: user || address,
      // Within one address and key, and within one prompt_cache_key when the request gives one.
      cacheScope: prefixReuse ? JSON.stringify([address ?? "?", await keyTag(c.req.header("Authorization")), key?.name ?? null, promptCacheKey ?? null]) : undefined,
      signal: c.req.raw.signal,
      onToken,
      usage,
    };
  };

  app.get("/", async (c) => c.html(PLAYGROUND_HTML, 200, { "Content-Security-Policy": await playgroundCsp }));

  app.get("/health", (c) => {
    if (handle.model) return c.json({ status: "ok", model: handle.model.id });
    // Start loading (Workers load lazily); keep the loading request alive until the load is done.
    keepAlive(c, handle.get());
    const error = handle.error ? publicReason(handle.error) : null;
    return c.json({ status: error ? "failed" : "loading", error }, 503);
  });

  app.get("/metrics", (c) => c.text(metrics.render(wasmHeapBytes(), handle.model?.backend, handle.model?.engine.stats), 200, { "Content-Type": "text/plain; version=0.0.4" }));

  app.get("/v1/models", async (c) => {
    const m = await model(c);
    return c.json({ object: "list", data: [modelObject(m)] });
  });
  app.get("/v1/models/:id", async (c) => {
    const m = await model(c, c.req.param("id"));
    return c.json(modelObject(m));
  });

  app.post("/v1/completions", jsonBody(completionRequest), async (c) => {
    const req = c.req.valid("json");
    return completions(c, await model(c, req.model), req, limits, await scopeOf(c, req.user, req.prompt_cache_key));
  });

  app.post("/v1/chat/completions", jsonBody(chatRequest), async (c) => {
    const req = c.req.valid("json");
    return chatCompletions(c, await model(c, req.model), req, limits, await scopeOf(c, req.user, req.prompt_cache_key));
  });

  app.post("/v1/responses", jsonBody(responsesRequest), async (c) => {
    const req = c.req.valid("json");
    return responses(c, await model(c, req.model), req, limits, await scopeOf(c, req.user, req.prompt_cache_key));
  });

  app.post("/tokenize", jsonBody(tokenizeRequest), async (c) => {
    const { tokenizer, engine } = await model(c);
    const { content, add_special } = c.req.valid("json");
    // Bounded work: at most a few contexts' worth of text, encoded a slice at a time.
    const limit = 4 * engine.maxLength;
    const least = tokenizer.minTokens(content);
    if (least > limit) throw invalidRequest(`content holds at least ${least} tokens; /tokenize takes at most ${limit}`, "content");
    // add_special: what the tokenizer's post-processor adds around a text (Llama 2's <s>), as a raw prompt gets it.
    return c.json({ tokens: await tokenizer.encodeAsync(content, { addSpecial: add_special ?? false }) });
  });

  app.post("/detokenize", jsonBody(detokenizeRequest), async (c) => {
    const { tokenizer } = await model(c);
    const { tokens } = c.req.valid("json");
    if (tokens.some((t) => t >= tokenizer.vocabSize)) throw invalidRequest(`token ids must be below ${tokenizer.vocabSize}`, "tokens");
    return c.json({ content: tokenizer.decodeText(tokens) });
  });

  return app;
}

/** The client's address as the host reports it: Node's socket, Deno's remoteAddr (env), Cloudflare's header. */
function clientAddress(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } }; remoteAddr?: string } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? env?.remoteAddr ?? c.req.header("CF-Connecting-IP") ?? undefined;
}

/** V8's version where the runtime tells it (Deno.version, Node's process.versions); null on workerd, which does not. */
function v8Version(): string | null {
  const g = globalThis as { Deno?: { version?: { v8?: string } }; process?: { versions?: { v8?: string } } };
  return g.Deno?.version?.v8 ?? g.process?.versions?.v8 ?? null;
}

function modelObject(m: LoadedModel) {
  return {
    id: m.id,
    object: "model",
    created: m.created,
    owned_by: "tinylm-edge",
    // Card facts for the playground and curious clients (extension fields).
    meta: {
      parameters: m.manifest.parameters ?? null,
      vocabulary: m.tokenizer.vocabSize,
      context_length: m.engine.maxLength,
      onnx_file: m.onnxFile,
      engine: m.backend.name,
      kernels: m.backend.kernels,
      // relaxed SIMD's dot-product form (src/engine/simd/relaxed.ts): fused or split, timed at load or set by RELAXED_SIMD.
      kernel_dot: m.backend.dot,
      // Our kernels' threads (THREADS=2 on Node and Deno shares their products and attention with a second one).
      kernel_threads: m.backend.threads,
      v8: v8Version(),
      engine_fallback_reason: m.backend.reason,
      // onnxruntime-web's graph and its contract: ours (.tinylm.onnx) or the standard one (Optimum / transformers.js).
      ort_graph: m.backend.graph,
      quantization: m.weights.quantization ?? (m.onnxFile ? m.manifest.quantization?.[m.onnxFile] : null) ?? null,
      // The checkpoint served: onnx, safetensors or gguf, its weight files and architecture.
      format: m.weights.format,
      weight_files: m.weights.files,
      architecture: m.weights.architecture,
    },
  };
}
