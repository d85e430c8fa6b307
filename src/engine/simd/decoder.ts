// The decoder on our own WebAssembly SIMD kernels (kernels/*.c → kernels.wasm): the whole forward
// pass is one call into WASM per chunk of rows, weights and KV cache live in WASM memory, and only
// token ids go in and the wanted logits come out. Same interface as the onnxruntime-web backend.
import { runEachPathOnce, type Decoder, type ModelShape, type SequenceCache, type StepInput, type StepOutput } from "../decoder.js";
import { Heap, PagePool, PendingTensor, type Placeable } from "./heap.js";
import { checkLayout, LAYER_FIELDS, MODEL_FIELDS, QMATRIX_FIELDS, ROW_FIELDS as ROW_FIELD_NAMES, writeStruct } from "./layout.js";
import type { LlamaWeights } from "./llama-weights.js";
import { KIND_CODE, type QuantMatrix } from "./quantize.js";
import { dotForm, dotFormExport, type DotForm } from "./relaxed.js";

const ROW_FIELDS = ROW_FIELD_NAMES.length;

/**
 * Positions per KV page. A page holds every layer, so one (layer, head)'s keys in a page are one
 * contiguous run of PAGE × head_dim floats (32 KB for the shipped model): runs that long let the
 * hardware prefetcher stream them. Measured at context 448: attention 1.64 ms per token with
 * 16-position pages (4 KB runs), 0.96 with 64, 0.81 with 128.
 */
const PAGE = 128;
/** Rows (tokens) per forward call: longer prompts are fed in chunks; bounds the scratch memory. */
const MAX_ROWS = 64;
/**
 * Rows whose logits one forward call returns: their logits and probabilities take 2 × vocabulary
 * floats each in WASM memory (25 MB for 64 rows of a 49k vocabulary; 16 rows: 6 MB). A step with
 * more (a batch beyond 16 sequences, echo + logprobs) runs in more calls.
 */
const HEAD_ROWS = 16;

/**
 * The KV cache's element type. f32: keys and values as computed. int8: each position's key and value
 * of each KV head quantized with an f32 scale per 32 dimensions (76 instead of 256 bytes per 64-wide
 * head, the keys' block sums included); scores and weighted values are integer dot products
 * (kernels/attention.c).
 */
export type KvCacheKind = "f32" | "int8";
export const DEFAULT_KV_CACHE: KvCacheKind = "f32";

/** Which matrix kernels run: relaxed SIMD's int8 dot product, or plain SIMD128's int16 one. */
export type KernelVariant = "relaxed-simd" | "simd128";

interface Kernels {
  forward(model: number, rows: number, nRows: number, headRows: number, nHead: number, invTemp: number, logits: number, probs: number): void;
  struct_bytes(which: number): number;
}

/**
 * A second thread for the kernels' matrix products and attention, where the host has threads (Node,
 * Deno: worker-threads.ts; not Workers): kernels-threads.wasm and relaxed-threads.wasm (or null), the
 * builds on a shared memory (kernels/threads.c), and a function that runs helper-thread.mjs with
 * `data` in a new thread, calling `exited` when that thread ends or fails.
 */
export interface HelperThread {
  kernels: WebAssembly.Module;
  relaxed: WebAssembly.Module | null;
  start(data: HelperData, exited: () => void): void;
}

/** What helper-thread.mjs instantiates: the same modules on the same memory, its stack below stackTop. */
export interface HelperData {
  kernels: WebAssembly.Module;
  relaxed: WebAssembly.Module | null;
  /** For each of the kernels' relaxed_<name> imports, the relaxed.wasm export the calling thread took (its form, relaxed.ts), so that both threads run the same code. */
  relaxedExports: Record<string, string>;
  memory: WebAssembly.Memory;
  stackTop: number;
}

/** threads.c's state: SLOTS slots of STRIDE i32s (a cache line each); JS uses RUNNING (1 while the helper is in its loop) and MODEL (the helper's Model for attention). */
const STRIDE = 16, HELPER_RUNNING = 0 * STRIDE, HELPER_MODEL = 2 * STRIDE, HELPER_STATE_LENGTH = 6 * STRIDE;
/** The helper's stack (build.sh links the kernels with a 64 KiB one). */
const HELPER_STACK = 65536;
/** kernels-threads.wasm's maximum memory (build.sh --threads): a shared memory declares one. */
const SHARED_MAX_PAGES = 65536;

const RELAXED_KERNELS = ["gemm", "gemm_s8", "gemm_q8b", "gemm_q4b", "scores", "values", "scores_i8", "values_i8"];

/**
 * kernels.wasm with its own memory (shared for the threads build), and relaxed.wasm's matrix and
 * attention kernels imported when given.
 */
async function instantiate(module: WebAssembly.Module, relaxed: WebAssembly.Module | null, env: Record<string, unknown> = {}, shared = false) {
  const memory = shared ? new WebAssembly.Memory({ initial: 2, maximum: SHARED_MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial: 2 });
  const imports: Record<string, unknown> = {};
  const dot = relaxed ? dotForm(relaxed) : null;
  const relaxedExports: Record<string, string> = {};
  if (relaxed) {
    const { exports } = await WebAssembly.instantiate(relaxed, { env: { memory } });
    for (const name of RELAXED_KERNELS) {
      relaxedExports[`relaxed_${name}`] = dotFormExport(name, dot!, exports);
      imports[`relaxed_${name}`] = exports[relaxedExports[`relaxed_${name}`]];
    }
  } else {
    for (const name of RELAXED_KERNELS) imports[`relaxed_${name}`] = () => {
      throw new Error(`relaxed_${name} called without relaxed.wasm`);
    };
  }
  const instance = await WebAssembly.instantiate(module, { env: { ...env, ...imports, memory } });
  return { instance, memory, dot, relaxedExports };
}

/**
 * Starts the helper thread on an instance of a threads build and waits until it is in its loop;
 * returns threads.c's helper_state() as a view. With helperModel (a decoder's), attention is shared
 * too. Until the loop starts, and after the thread ends, all work runs on the calling thread
 * (threads.c checks the state before every job).
 */
async function startHelper(instance: WebAssembly.Instance, heap: Heap, helper: HelperThread, relaxedExports: Record<string, string>, helperModel = 0): Promise<Int32Array> {
  const exports = instance.exports as unknown as { helper_state(): number };
  const state = new Int32Array(heap.memory.buffer, exports.helper_state(), HELPER_STATE_LENGTH);
  state[HELPER_MODEL] = helperModel;
  const stack = heap.alloc(HELPER_STACK);
  await new Promise<void>((resolve, reject) => {
    helper.start({ kernels: helper.kernels, relaxed: helper.relaxed, relaxedExports, memory: heap.memory, stackTop: stack + HELPER_STACK }, () => {
      Atomics.store(state, HELPER_RUNNING, 0); // a helper that died mid-job: threads.c does its unfinished chunks itself
      reject(new Error("the kernels' helper thread ended before its loop started"));
    });
    const poll = () => (Atomics.load(state, HELPER_RUNNING) === 1 ? resolve() : setTimeout(poll, 1));
    poll();
  });
  return state;
}

const threadsOf = (state: Int32Array | null) => (state && Atomics.load(state, HELPER_RUNNING) === 1 ? 2 : 1);

function stopHelper(instance: WebAssembly.Instance, state: Int32Array | null): void {
  if (state) (instance.exports as unknown as { helper_stop(): void }).helper_stop();
}

/**
 * Matrix products on the kernels outside a model, for parity tests and the bench's kernel rows:
 * y[rows][m.rows] = x[rows][m.cols] · Wᵀ, through the same code as a forward pass (kernels/matmul.c).
 * load() copies a matrix into the kernels' memory once; run() reuses the memory above the loaded ones.
 */
export class KernelMatmul {
  private readonly heap: Heap;
  private helperState: Int32Array | null = null;

  private constructor(private readonly instance: WebAssembly.Instance, private readonly memory: WebAssembly.Memory, readonly variant: KernelVariant,
    readonly dot: DotForm | null) {
    this.heap = new Heap(memory, (instance.exports.__heap_base as WebAssembly.Global).value as number);
  }

  /** With `helper`, its threads build runs instead of `module` and `relaxed`, products shared with a second thread. */
  static async create(module: WebAssembly.Module, relaxed: WebAssembly.Module | null = null, helper: HelperThread | null = null): Promise<KernelMatmul> {
    const kernels = helper ? helper.kernels : module, relaxedKernels = helper ? helper.relaxed : relaxed;
    const { instance, memory, dot, relaxedExports } = await instantiate(kernels, relaxedKernels, {}, helper !== null);
    const mm = new KernelMatmul(instance, memory, relaxedKernels ? "relaxed-simd" : "simd128", dot);
    if (helper) mm.helperState = await startHelper(instance, mm.heap, helper, relaxedExports);
    return mm;
  }

  get threads(): number {
    return threadsOf(this.helperState);
  }

  close(): void {
    stopHelper(this.instance, this.helperState);
  }

  load(m: QuantMatrix): { at: number; rows: number; cols: number } {
    const { heap } = this, at = heap.alloc(QMATRIX_FIELDS * 4);
    const fields = [put(heap, m.data), put(heap, bytesOf(m.scale)), m.rows, m.cols, KIND_CODE[m.kind]]; // before the view: alloc may grow the memory
    heap.i32(at, QMATRIX_FIELDS).set(fields);
    return { at, rows: m.rows, cols: m.cols };
  }

  run(m: { at: number; rows: number; cols: number }, x: Float32Array, rows: number): Float32Array {
    if (x.length !== rows * m.cols) throw new Error(`${x.length} inputs are not ${rows} rows of ${m.cols}`);
    const scratch = new Heap(this.memory, this.heap.top);
    const model = scratch.alloc(MODEL_FIELDS.length * 4), xAt = put(scratch, bytesOf(x)), y = scratch.alloc(rows * m.rows * 4);
    // The matrix kernels read only the Model's scratch fields; the rest stay 0.
    writeStruct(scratch, model, MODEL_FIELDS, {
      ...Object.fromEntries(MODEL_FIELDS.map((name) => [name, 0])),
      xq: scratch.alloc(rows * m.cols * 2), xq_scale: scratch.alloc(rows * 4), relaxed: this.variant === "relaxed-simd" ? 1 : 0,
      xq_sum: scratch.alloc(rows * 4), xq_boffset: scratch.alloc(rows * Math.ceil(m.cols / 32) * 4),
    });
    (this.instance.exports.matmul as (m: number, y: number, x: number, rows: number, w: number) => void)(model, y, xAt, rows, m.at);
    return scratch.f32(y, rows * m.rows).slice();
  }
}

const bytesOf = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

function put(heap: Heap, bytes: Uint8Array): number {
  const at = heap.alloc(bytes.byteLength);
  heap.u8(at, bytes.byteLength).set(bytes);
  return at;
}

export class PagedKvCache implements SequenceCache {
  length = 0;
  pages: number[] = [];

  constructor(private readonly pool: PagePool) {}

  reserve(length: number): void {
    while (this.pages.length * PAGE < length) this.pages.push(this.pool.take());
  }

  prefix(length: number): PagedKvCache {
    const copy = new PagedKvCache(this.pool);
    copy.reserve(length);
    copy.pages.forEach((page, i) => this.pool.copy(page, this.pages[i]));
    copy.length = length;
    return copy;
  }

  release(): void {
    this.pool.give(this.pages);
    this.pages = [];
    this.length = 0;
  }
}

export class SimdDecoder implements Decoder<PagedKvCache> {
  readonly backend = "simd";
  readonly shape: ModelShape;
  private readonly kernels: Kernels;
  private readonly heap: Heap;
  private readonly pool: PagePool;
  private readonly model: number;
  private readonly io: { rows: number; tables: number; headRows: number; invTemp: number; logits: number; probs: number };
  private readonly pagesPerSeq: number;

  private helperState: Int32Array | null = null;
  /** The helper thread's Model for attention (threads build), or 0. */
  private readonly helperModel: number = 0;

  /**
   * Instantiate the kernels (a compiled kernels.wasm: Workers cannot compile bytes) with these
   * weights; with a compiled relaxed.wasm (the runtime has relaxed SIMD), its matrix kernel is used.
   * `env` adds imports (the bench's profiling build imports `now`). Tensors given as PendingTensor
   * get their place in the kernels' memory here; their bytes are written after. With `helper`, its
   * threads build runs instead of `module` and `relaxed`, the work shared with a second thread.
   */
  static async create(module: WebAssembly.Module, weights: Placeable<LlamaWeights>, relaxed: WebAssembly.Module | null = null, env: Record<string, unknown> = {},
    kvCache: KvCacheKind = DEFAULT_KV_CACHE, helper: HelperThread | null = null): Promise<SimdDecoder> {
    const kernels = helper ? helper.kernels : module, relaxedKernels = helper ? helper.relaxed : relaxed;
    const { instance, memory, dot, relaxedExports } = await instantiate(kernels, relaxedKernels, env, helper !== null);
    const decoder = new SimdDecoder(instance, memory, weights, relaxedKernels ? "relaxed-simd" : "simd128", dot, kvCache, helper !== null);
    if (helper) decoder.helperState = await startHelper(instance, decoder.heap, helper, relaxedExports, decoder.helperModel);
    return decoder;
  }

  /** Threads the kernels run on: 2 while the helper thread is in its loop, else 1. */
  get threads(): number {
    return threadsOf(this.helperState);
  }

  /** Ends the helper thread, if any (the decoder still runs, on one thread). */
  close(): void {
    stopHelper(this.instance, this.helperState);
  }

  private constructor(readonly instance: WebAssembly.Instance, memory: WebAssembly.Memory, weights: Placeable<LlamaWeights>, readonly variant: KernelVariant,
    /** relaxed.wasm's form in use (relaxed.ts), or null on the plain SIMD128 kernels. */
    readonly dot: DotForm | null, readonly kvCache: KvCacheKind, threaded: boolean) {
    const c = weights.config;
    this.shape = { layers: c.layers, kvHeads: c.kvHeads, headDim: c.headDim, vocabSize: c.vocab, maxLength: c.maxLength };
    this.kernels = instance.exports as unknown as Kernels;
    const heapBase = (instance.exports.__heap_base as WebAssembly.Global).value as number;
    const heap = (this.heap = new Heap(memory, heapBase));

    checkLayout((which) => this.kernels.struct_bytes(which));

    // The model struct and its weights. Matrices are one row per output.
    const model = (this.model = heap.alloc(MODEL_FIELDS.length * 4));
    const layers = heap.alloc(c.layers * LAYER_FIELDS.length * 4);
    const place = (data: ArrayBufferView | PendingTensor | null) => {
      if (!data) return 0; // a NULL pointer: the feature is off (simd.h)
      const at = heap.alloc(data.byteLength);
      if (data instanceof PendingTensor) data.place(memory, at);
      else heap.u8(at, data.byteLength).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      return at;
    };
    const matrix = (name: string, m: Placeable<QuantMatrix>): Record<string, number> => {
      const w = place(m.data);
      return { [`${name}.w`]: w, [`${name}.scale`]: place(m.scale), [`${name}.n_out`]: m.rows, [`${name}.n_in`]: m.cols, [`${name}.kind`]: KIND_CODE[m.kind] };
    };
    weights.layers.forEach((l, i) => {
      writeStruct(heap, layers + i * LAYER_FIELDS.length * 4, LAYER_FIELDS, {
        attn_norm: place(l.attnNorm), ...matrix("qkv", l.qkv), qkv_bias: place(l.qkvBias), q_norm: place(l.qNorm), k_norm: place(l.kNorm),
        ...matrix("o", l.o), ffn_norm: place(l.ffnNorm), ...matrix("gate_up", l.gateUp), ...matrix("down", l.down),
      });
    });
    const width = (c.heads + 2 * c.kvHeads) * c.headDim;
    const widest = Math.max(c.dim, c.ffn, c.heads * c.headDim);
    const blocks = c.headDim % 32 ? 1 : c.headDim / 32;  // the int8 KV cache's scales per head (kernels/attention.c)
    const scratch = (floatsPerRow: number) => heap.alloc(MAX_ROWS * floatsPerRow * 4);
    const embedding = matrix("embedding", weights.embedding);
    const lmHead = weights.lmHead
      ? matrix("lm_head", weights.lmHead)
      : Object.fromEntries(Object.entries(embedding).map(([k, v]) => [k.replace("embedding.", "lm_head."), v])); // tied: the same table
    // a group's scores (f32, a row of positions + 4 per query head), then the int8 cache's value weights:
    // two heads' int16 (plain) or each block's two 7-bit bytes (relaxed), positions + 4 each
    const scoresBytes = (c.heads / c.kvHeads) * (c.maxLength + 4) * 4 + Math.max(4, 2 * blocks) * (c.maxLength + 4);
    const xqBytes = MAX_ROWS * widest * 2;
    const fields: Record<string, number> = {
      dim: c.dim, n_layers: c.layers, n_heads: c.heads, n_kv_heads: c.kvHeads, head_dim: c.headDim, ffn: c.ffn, vocab: c.vocab,
      max_rows: MAX_ROWS, page_size: PAGE, eps: c.eps, ...embedding, ...lmHead,
      final_norm: place(weights.finalNorm), rope_cos: place(weights.ropeCos), rope_sin: place(weights.ropeSin), layers,
      x: scratch(c.dim), h: scratch(c.dim), qkv: scratch(width), att: scratch(widest), gu: scratch(2 * c.ffn),
      scores: heap.alloc(scoresBytes), xq: heap.alloc(xqBytes), xq_scale: scratch(1),
      relaxed: variant === "relaxed-simd" ? 1 : 0, xq_sum: scratch(1), sliding_window: c.slidingWindow,
      xq_boffset: heap.alloc(MAX_ROWS * Math.ceil(widest / 32) * 4), kv_int8: kvCache === "int8" ? 1 : 0,
    };
    writeStruct(heap, model, MODEL_FIELDS, fields);
    // The threads build's helper attends with a Model of its own: the same fields, its own scratch
    // for the scores (and the int8 cache's queries in xq; kernels/threads.c).
    if (threaded) {
      this.helperModel = heap.alloc(MODEL_FIELDS.length * 4);
      writeStruct(heap, this.helperModel, MODEL_FIELDS, { ...fields, scores: heap.alloc(scoresBytes), xq: heap.alloc(xqBytes) });
    }

    // Per-call inputs and outputs.
    this.pagesPerSeq = Math.ceil(c.maxLength / PAGE);
    this.io = {
      rows: heap.alloc(MAX_ROWS * ROW_FIELDS * 4),
      tables: heap.alloc(MAX_ROWS * this.pagesPerSeq * 4),
      headRows: heap.alloc(MAX_ROWS * 4),
      invTemp: heap.alloc(MAX_ROWS * 4),
      logits: heap.alloc(HEAD_ROWS * c.vocab * 4),
      probs: heap.alloc(HEAD_ROWS * c.vocab * 4),
    };
    // A page: [layer][key | value][kv_head][PAGE][head_dim] f32, or int8 followed by the scales
    // [layer][key | value][kv_head][head_dim / 32 blocks, or 1][PAGE] f32 and the keys' sums
    // [layer][kv_head][blocks][PAGE] f32 (kernels/attention.c): per (layer, key | value, KV head)
    // and position, head_dim + 4 · blocks + 2 · blocks bytes.
    const perPosition = kvCache === "int8" ? c.headDim + 6 * blocks : c.headDim * 4;
    this.pool = new PagePool(heap, c.layers * 2 * c.kvHeads * PAGE * perPosition);
  }

  get memory(): WebAssembly.Memory {
    return this.heap.memory;
  }

  /** Bytes of the kernels' WebAssembly memory (weights, scratch, KV pages). */
  get heapBytes(): number {
    return this.heap.bytes;
  }

  newCache(): PagedKvCache {
    return new PagedKvCache(this.pool);
  }

  warmUp(): Promise<void> {
    return runEachPathOnce(this);
  }

  async step(inputs: StepInput<PagedKvCache>[]): Promise<StepOutput[]> {
    const V = this.shape.vocabSize;
    // Every fed token is a row: (sequence b, its j-th new token), decode rows and prompt chunks in
    // one batch. Rows run in chunks (MAX_ROWS, HEAD_ROWS); a sequence's rows stay in order, so later chunks see
    // the keys and values earlier ones stored. Only the rows whose logits are wanted go through the head.
    const rows: { b: number; j: number }[] = [];
    for (const [b, { cache, tokens }] of inputs.entries()) {
      if (!tokens.length) throw new Error("a step needs at least one new token per sequence");
      if (cache.length + tokens.length > this.shape.maxLength) {
        throw new Error(`context of ${cache.length + tokens.length} tokens exceeds the model's ${this.shape.maxLength}`);
      }
      cache.reserve(cache.length + tokens.length);
      for (let j = 0; j < tokens.length; j++) rows.push({ b, j });
    }
    const outputs = inputs.map(({ tokens, logits = "last" }) => {
      const n = logits === "all" ? tokens.length : logits === "last" ? 1 : 0;
      return { logits: new Float32Array(n * V), probs: new Float32Array(n * V) };
    });
    // Chunks of at most MAX_ROWS rows, HEAD_ROWS of them wanting logits.
    let chunk: { b: number; j: number }[] = [], heads = 0;
    for (const row of rows) {
      const { tokens, logits = "last" } = inputs[row.b];
      const head = logits === "all" || (logits === "last" && row.j === tokens.length - 1) ? 1 : 0;
      if (chunk.length === MAX_ROWS || heads + head > HEAD_ROWS) {
        this.forward(inputs, chunk, outputs);
        (chunk = []), (heads = 0);
      }
      chunk.push(row);
      heads += head;
    }
    if (chunk.length) this.forward(inputs, chunk, outputs);
    for (const { cache, tokens } of inputs) cache.length += tokens.length;
    return outputs;
  }

  private forward(inputs: StepInput<PagedKvCache>[], chunk: { b: number; j: number }[], outputs: StepOutput[]): void {
    const { heap, io } = this;
    const V = this.shape.vocabSize;
    // Each sequence's page table once per chunk.
    const tableOf = new Map<number, number>();
    const rowFields = heap.i32(io.rows, chunk.length * ROW_FIELDS);
    const head: { row: number; b: number; j: number }[] = [];
    chunk.forEach(({ b, j }, r) => {
      const { cache, tokens, logits = "last" } = inputs[b];
      let table = tableOf.get(b);
      if (table === undefined) {
        table = io.tables + tableOf.size * this.pagesPerSeq * 4;
        heap.i32(table, cache.pages.length).set(cache.pages);
        tableOf.set(b, table);
      }
      rowFields.set([tokens[j], cache.length + j, table], r * ROW_FIELDS);
      if (logits === "all" || (logits === "last" && j === tokens.length - 1)) head.push({ row: r, b, j });
    });
    heap.i32(io.headRows, head.length).set(head.map((h) => h.row));
    heap.f32(io.invTemp, head.length).set(head.map(({ b }) => 1 / (inputs[b].temperature ?? 1)));
    this.kernels.forward(this.model, io.rows, chunk.length, io.headRows, head.length, io.invTemp, io.logits, io.probs);
    const logits = heap.f32(io.logits, head.length * V), probs = heap.f32(io.probs, head.length * V);
    head.forEach(({ b, j }, i) => {
      const at = (inputs[b].logits === "all" ? j : 0) * V;
      outputs[b].logits.set(logits.subarray(i * V, (i + 1) * V), at);
      outputs[b].probs.set(probs.subarray(i * V, (i + 1) * V), at);
    });
  }
}
