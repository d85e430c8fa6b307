// Loading a model folder (Hugging Face layout, see model/README.md) into a ready engine. Hosts
// supply the bytes (file system, static assets, R2) and the onnxruntime-web module they set up.
import { modelShapeFromConfig, TokenizerVocabulary, type Decoder, type ModelShape } from "./engine/decoder.js";
import { Engine, type EngineOptions } from "./engine/engine.js";
import { createBackend, createKernelBackend, kernelDecoder, type BackendOptions, type OrtGraphInfo, type ReadModelFile } from "./engine/backends.js";
import { SimdDecoder, type KernelVariant } from "./engine/simd/decoder.js";
import type { DotForm } from "./engine/simd/relaxed.js";
import { locateCheckpoint, readCheckpoint, type CheckpointFormat, type LocateOptions } from "./formats/checkpoint.js";
import { checkDigest, type ManifestFiles } from "./digest.js";
import { ChatTemplate } from "./tokenizer/chat-template.js";
import { tokenizerJsonFromGguf, type GgufVocab } from "./tokenizer/gguf-vocab.js";
import { PACK_FILE, usablePack } from "./packed.js";
import { Tokenizer, type TokenizerConfig } from "./tokenizer/tokenizer.js";

export type { BackendChoice, ReadModelFile } from "./engine/backends.js";

export interface Manifest {
  name?: string;
  parameters?: { total?: number; embedding_share?: number };
  vocabulary?: { size?: number };
  quantization?: Record<string, string>;
  files?: ManifestFiles;
  [key: string]: unknown;
}

/** Sampling defaults from generation_config.json, used where a request leaves a field out (as vLLM's --generation-config auto). */
export interface GenerationDefaults {
  temperature?: number;
  top_p?: number;
  top_k?: number;
  min_p?: number;
  repetition_penalty?: number;
}

export function generationDefaults(config: Record<string, unknown> | undefined): GenerationDefaults {
  if (!config) return {};
  const num = (key: string, ok: (v: number) => boolean) => {
    const v = config[key];
    return typeof v === "number" && Number.isFinite(v) && ok(v) ? v : undefined;
  };
  const defaults: GenerationDefaults = {
    temperature: config.do_sample === false ? 0 : num("temperature", (v) => v >= 0 && v <= 2),
    top_p: num("top_p", (v) => v > 0 && v <= 1),
    top_k: num("top_k", (v) => Number.isInteger(v) && v >= 0),
    min_p: num("min_p", (v) => v >= 0 && v <= 1),
    repetition_penalty: num("repetition_penalty", (v) => v > 0 && v <= 10),
  };
  return Object.fromEntries(Object.entries(defaults).filter(([, v]) => v !== undefined));
}

export interface LoadedModel {
  id: string;
  /** Sampling defaults from generation_config.json. */
  defaults: GenerationDefaults;
  tokenizer: Tokenizer;
  engine: Engine;
  /** null when the folder has none: /v1/chat/completions then answers 400 (a base model without one cannot chat). */
  chatTemplate: ChatTemplate | null;
  manifest: Manifest;
  /** The ONNX graph served (null for a safetensors or GGUF checkpoint). */
  onnxFile: string | null;
  /** The checkpoint: its format, the weight files read, the architecture and the kernels' quantization of it (null: as manifest.json says). */
  weights: { format: CheckpointFormat; files: string[]; architecture: string; quantization: string | null };
  /** Which backend runs the model, which kernels (ours) on how many threads, and why ours were not used ("auto" fell back). */
  backend: { name: "simd" | "ort"; kernels: KernelVariant | null; dot: DotForm | null; threads: number | null; reason: string | null; graph: OrtGraphInfo | null };
  created: number;
}

export interface LoadOptions extends BackendOptions, Pick<LocateOptions, "weightsFile" | "files"> {
  engine: EngineOptions;
  /** Run the graph once before serving (see OnnxDecoder.warmUp). */
  warmUp?: boolean;
  /** Serve at most this many positions (prompt + generated) per sequence, below the model's own context (MAX_CONTEXT): bounds the KV cache. */
  maxContext?: number | null;
}

async function readJson<T>(read: ReadModelFile, path: string, optional = false): Promise<T | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await read(path);
  } catch (err) {
    if (optional) return undefined;
    throw err;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

export async function loadModel(read: ReadModelFile, opts: LoadOptions): Promise<LoadedModel> {
  const manifest = (await readJson<Manifest>(read, "manifest.json", true)) ?? {};
  // A host that cannot list the folder (Workers' static assets) takes manifest.json's files as
  // present: a checkpoint deployed only as its pack is found without being read.
  const checkpoint = await locateCheckpoint(read, { ...opts, listed: manifest.files }, opts.backend === "ort");
  const onnx = checkpoint.format === "onnx";
  // A GGUF carries its hyper-parameters and vocabulary; a hub folder and our exporter's need config.json and tokenizer.json.
  const config = await readJson<Record<string, unknown>>(read, "config.json", checkpoint.format === "gguf");
  const tokenizerConfig = (await readJson<TokenizerConfig>(read, "tokenizer_config.json", true)) ?? {};
  const generationConfig = await readJson<Record<string, unknown>>(read, "generation_config.json", true);
  const tokenizerJson = await readJson(read, "tokenizer.json", checkpoint.format === "gguf");
  const log = opts.log ?? console.warn;
  let decoder: Decoder, reason: string | null = null, graph: OrtGraphInfo | null = null, quantization: string | null = null, tokenizer: Tokenizer, templateFallback: string | undefined;
  let shape: ModelShape, weights: LoadedModel["weights"];
  const context = (modelMax: number) => Math.min(modelMax, opts.maxContext ?? Infinity);
  // The folder's pack of the kernels' weights, when it stands for this checkpoint (src/packed.ts).
  const packed = opts.backend === "ort" ? null : await usablePack(read, manifest, {
    file: checkpoint.file, config: config !== undefined && checkpoint.format !== "gguf", weightBits: opts.weightBits ?? 8,
  }, log);
  if (packed) {
    const c = packed.weights.config, { vocab, ...checkpointInfo } = packed.checkpoint;
    ({ tokenizer, templateFallback } = tokenizerOf(tokenizerJson, tokenizerConfig, vocab, checkpoint.file));
    checkVocabulary(tokenizer, tokenizerJson !== undefined ? "tokenizer.json" : checkpoint.file, c.vocab, "the embedding's rows");
    decoder = await kernelDecoder({ ...packed.weights, config: { ...c, maxLength: context(c.maxLength) } }, opts);
    await packed.fill(); // the weights' bytes, part by part, into the places the decoder reserved
    shape = decoder.shape;
    weights = checkpointInfo;
    log(`tinylm-edge: ${checkpointInfo.files.join(", ")} (${checkpointInfo.format}, ${checkpointInfo.architecture}) runs on our WASM kernels from ${PACK_FILE}`);
  } else if (onnx) {
    tokenizer = Tokenizer.fromJSON(tokenizerJson, tokenizerConfig, "tokenizer.json");
    const modelMax = modelShapeFromConfig(config!).maxLength;
    const served = modelMax > context(modelMax) ? { ...config!, max_position_embeddings: context(modelMax) } : config!;
    shape = modelShapeFromConfig(served);
    checkVocabulary(tokenizer, "tokenizer.json", shape.vocabSize, "config.json's vocab_size");
    const onnxBytes = await read(opts.onnxFile);
    await checkDigest(opts.onnxFile, onnxBytes, manifest);
    ({ decoder, reason, graph, quantization } = await createBackend(read, onnxBytes, served, shape, opts, (path, bytes) => checkDigest(path, bytes, manifest)));
    weights = { format: "onnx", files: [graph?.file ?? opts.onnxFile], architecture: String(config!.model_type), quantization };
  } else {
    const { description, vocab } = await readCheckpoint(read, checkpoint, config);
    const a = (description.arch = { ...description.arch, maxLength: context(description.arch.maxLength) });
    ({ tokenizer, templateFallback } = tokenizerOf(tokenizerJson, tokenizerConfig, vocab, checkpoint.file));
    checkVocabulary(tokenizer, tokenizerJson !== undefined ? "tokenizer.json" : checkpoint.file, a.vocab, "the embedding's rows");
    const kernel = await createKernelBackend(description, opts);
    decoder = kernel.decoder;
    shape = decoder.shape;
    weights = { format: description.format, files: description.files, architecture: a.modelType, quantization: kernel.quantization };
    log(`tinylm-edge: ${description.files.join(", ")} (${description.format}, ${a.modelType}) runs on our WASM kernels: ${weights.quantization}`);
  }
  const chatTemplate = (await chatTemplateSource(read, tokenizer.config)) ?? templateFallback ?? null;
  if (opts.warmUp) await decoder.warmUp();
  return {
    id: manifest.name ?? (typeof config?._name_or_path === "string" && config._name_or_path ? config._name_or_path : "tinylm-edge"),
    defaults: generationDefaults(generationConfig),
    tokenizer,
    // A vocab_size padded past the tokenizer (a multiple of 64 or 128): the padded ids are cut off.
    engine: new Engine(tokenizer.vocabSize < shape.vocabSize ? new TokenizerVocabulary(decoder, tokenizer.vocabSize) : decoder, opts.engine),
    chatTemplate: chatTemplate === null ? null : new ChatTemplate(chatTemplate, {
      bos_token: tokenizer.config.bos_token ?? undefined,
      eos_token: tokenizer.config.eos_token ?? undefined,
    }),
    manifest,
    onnxFile: onnx ? opts.onnxFile : null,
    weights,
    backend: {
      name: decoder.backend, kernels: decoder instanceof SimdDecoder ? decoder.variant : null, dot: decoder instanceof SimdDecoder ? decoder.dot : null,
      threads: decoder instanceof SimdDecoder ? decoder.threads : null, reason, graph,
    },
    created: Math.floor(Date.now() / 1000),
  };
}

/** The folder's tokenizer.json, else a GGUF's own vocabulary (with its chat template, used when the folder gives none). */
function tokenizerOf(tokenizerJson: unknown, tokenizerConfig: TokenizerConfig, vocab: GgufVocab | null, file: string): { tokenizer: Tokenizer; templateFallback?: string } {
  if (tokenizerJson !== undefined) return { tokenizer: Tokenizer.fromJSON(tokenizerJson, tokenizerConfig, "tokenizer.json") };
  if (!vocab) throw new Error(`${file}: no tokenizer.json beside it and no tokenizer.ggml.* vocabulary in it`);
  const built = tokenizerJsonFromGguf(vocab, file);
  return { tokenizer: Tokenizer.fromJSON(built.json, { ...built.config, ...tokenizerConfig }, `${file} (tokenizer.ggml.*)`), templateFallback: vocab.chatTemplate };
}

/** A tokenizer with ids the model has no logits for cannot be served (fewer is a padded vocabulary: fine). */
function checkVocabulary(tokenizer: Tokenizer, source: string, rows: number, what: string): void {
  if (tokenizer.vocabSize > rows) {
    throw new Error(`${source} has ${tokenizer.vocabSize} tokens, more than ${what} ${rows}: ids the model has no logits for`);
  }
}

/**
 * The chat template, where Hugging Face keeps it: chat_template.jinja (newer exports), or
 * tokenizer_config.json's chat_template (a string, or a list of named templates: "default" is used).
 */
async function chatTemplateSource(read: ReadModelFile, tokenizerConfig: TokenizerConfig): Promise<string | null> {
  const file = await read("chat_template.jinja").catch(() => null);
  if (file) return new TextDecoder().decode(file);
  const t = tokenizerConfig.chat_template as unknown;
  if (t === undefined || t === null) return null;
  if (typeof t === "string") return t;
  const named = Array.isArray(t) ? (t as { name?: unknown; template?: unknown }[]).find((e) => e?.name === "default") : undefined;
  if (typeof named?.template === "string") return named.template;
  throw new Error(`tokenizer_config.json: "chat_template" must be a string or a list with a {"name": "default", "template"} entry`);
}

/** Loads once, on first use; concurrent callers share the one load. A failed load is a state: retried with backoff. */
export class ModelHandle {
  private loading: Promise<LoadedModel> | null = null;
  model: LoadedModel | null = null;
  error: Error | null = null;
  private failures = 0;
  private retryAt = 0;

  constructor(private readonly load: () => Promise<LoadedModel>, private readonly backoffMs = 1000) {}

  /** The model; a load that failed is tried again only after 1 s, 2 s, 4 s, … (at most a minute). */
  get(): Promise<LoadedModel> {
    if (this.loading) return this.loading;
    if (this.error && Date.now() < this.retryAt) return Promise.reject(this.error);
    this.loading = this.load().then(
      (m) => {
        this.error = null;
        return (this.model = m);
      },
      (err: Error) => {
        this.error = err;
        this.failures++;
        this.retryAt = Date.now() + Math.min(60_000, this.backoffMs * 2 ** (this.failures - 1));
        this.loading = null;
        throw err;
      },
    );
    return this.loading;
  }
}

/** An error message fit for an unauthenticated client: no file-system paths, one line. */
export function publicReason(err: Error): string {
  // Hosts name files relative to the model folder; anything deeper (3+ directories) loses its directories.
  return err.message.split("\n")[0].replace(/(^|[\s("'])(?:[A-Za-z]:)?(?:[\\/][^\s:"')\\/]+){2,}[\\/](?=[^\s\\/])/g, "$1");
}
