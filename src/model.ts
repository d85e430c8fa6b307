// Loading a model folder (Hugging Face layout, see model/README.md) into a ready engine. Hosts
// supply the bytes (file system, static assets, R2) and the onnxruntime-web module they set up.
import { Engine, type EngineOptions } from "./engine/engine.js";
import { modelShapeFromConfig } from "./engine/onnx-model.js";
import { createDecoder, type OrtModule } from "./engine/session.js";
import { ChatTemplate } from "./openai/chat-template.js";
import { Tokenizer, type TokenizerConfig } from "./tokenizer/tokenizer.js";

/** Reads a file of the model folder by relative path; throws an Error naming it when missing. */
export type ReadModelFile = (path: string) => Promise<Uint8Array>;

export interface Manifest {
  name?: string;
  parameters?: { total?: number; embedding_share?: number };
  vocabulary?: { size?: number };
  quantization?: Record<string, string>;
  [key: string]: unknown;
}

export interface LoadedModel {
  id: string;
  tokenizer: Tokenizer;
  engine: Engine;
  chatTemplate: ChatTemplate;
  manifest: Manifest;
  onnxFile: string;
  created: number;
}

export interface LoadOptions {
  ort: OrtModule;
  onnxFile: string; // e.g. "onnx/model_quantized.onnx"
  engine: EngineOptions;
  lowMemory?: boolean;
  /** Run the graph once before serving (see OnnxDecoder.warmUp). */
  warmUp?: boolean;
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
  const config = (await readJson<Record<string, unknown>>(read, "config.json"))!;
  const tokenizerConfig = (await readJson<TokenizerConfig>(read, "tokenizer_config.json", true)) ?? {};
  const manifest = (await readJson<Manifest>(read, "manifest.json", true)) ?? {};
  const tokenizer = Tokenizer.fromJSON(await readJson(read, "tokenizer.json"), tokenizerConfig, "tokenizer.json");
  const shape = modelShapeFromConfig(config);
  if (shape.vocabSize !== tokenizer.vocabSize) {
    throw new Error(`config.json vocab_size ${shape.vocabSize} ≠ tokenizer.json's ${tokenizer.vocabSize}`);
  }
  const decoder = await createDecoder(opts.ort, await read(opts.onnxFile), shape, { lowMemory: opts.lowMemory });
  if (opts.warmUp) await decoder.warmUp();
  return {
    id: manifest.name ?? "tinylm-edge",
    tokenizer,
    engine: new Engine(decoder, opts.engine),
    chatTemplate: new ChatTemplate(tokenizerConfig.chat_template, {
      bos_token: tokenizerConfig.bos_token ?? undefined,
      eos_token: tokenizerConfig.eos_token ?? undefined,
    }),
    manifest,
    onnxFile: opts.onnxFile,
    created: Math.floor(Date.now() / 1000),
  };
}

/** Loads once, on first use; concurrent callers share the one load. A failed load is retried on the next call. */
export class ModelHandle {
  private loading: Promise<LoadedModel> | null = null;
  model: LoadedModel | null = null;
  error: Error | null = null;

  constructor(private readonly load: () => Promise<LoadedModel>) {}

  get(): Promise<LoadedModel> {
    this.loading ??= this.load().then(
      (m) => (this.model = m),
      (err: Error) => {
        this.error = err;
        this.loading = null;
        throw err;
      },
    );
    return this.loading;
  }
}
