// A standard ONNX decoder, as Optimum and transformers.js ship one (torch.onnx.export of a Hugging
// Face <Arch>ForCausalLM, fp32, or rewritten by onnxruntime's quantize_dynamic), lifted into the
// weight description every checkpoint reader produces (weights.ts), so our kernels can run it.
//
// What is taken on trust and what is checked. The architecture is config.json's, as for safetensors
// (architectureFromConfig). torch.onnx.export names each node by its module path
// (/model/layers.0/self_attn/q_proj/MatMul), so a weight is found through the node of its module
// that reads it, whatever the initializer is called (often onnx::MatMul_N). Then the graph must be
// wholly accounted for: every op is one a Llama-family decoder is made of, every weight-sized constant
// is one of the tensors lifted (or the rotary frequencies, which must be config.json's), each RMSNorm
// uses config.json's epsilon, and every tensor the architecture needs is there with its shape
// (validateDescription). Anything else is a FormatError naming the op, node or tensor, and the
// caller runs the graph on onnxruntime-web instead.
//
// Weights: a MatMul's float weight is [in, out] and becomes Hugging Face's [out, in]. A MatMulInteger
// weight (int8 or uint8; a scale and zero point per tensor or per output column, the scale on the Mul
// after its Cast) is dequantized to F32 [out, in], as is a uint8/int8 embedding read through
// DequantizeLinear; the kernels quantize them again at load (kernelWeights), as they do safetensors.
import { DataType, type OnnxGraph, type OnnxNode, type OnnxTensor } from "../engine/simd/onnx-reader.js";
import { architectureFromConfig, FormatError, rotaryFrequencies, validateDescription, type Architecture, type DType, type TensorData, type WeightDescription } from "./weights.js";

// The ops of a Llama-family decoder as torch.onnx.export traces it (shape arithmetic, the causal mask,
// rotary, attention, RMSNorm decomposed or fused, SiLU) and as quantize_dynamic rewrites it. Any other
// op computes something the kernels do not (another activation, norm, or attention).
const KNOWN_OPS = new Set([
  "Add", "And", "Cast", "Concat", "Constant", "ConstantOfShape", "Cos", "CumSum", "DequantizeLinear", "Div",
  "DynamicQuantizeLinear", "Equal", "Expand", "Gather", "Greater", "GreaterOrEqual", "Identity", "Less", "LessOrEqual",
  "MatMul", "MatMulInteger", "Max", "Min", "Mul", "Neg", "Not", "Or", "Pow", "Range", "Reciprocal", "ReduceMean",
  "Reshape", "ScatterND", "Shape", "Sigmoid", "SimplifiedLayerNormalization", "Sin", "Slice", "Softmax", "Split", "Sqrt",
  "Squeeze", "Sub", "Tile", "Transpose", "Trilu", "Unsqueeze", "Where",
]);
const DOMAINS = new Set(["", "ai.onnx", "com.microsoft"]);

const FLOATS: Record<number, { dtype: DType; bytes: number }> = {
  [DataType.FLOAT]: { dtype: "F32", bytes: 4 }, [DataType.FLOAT16]: { dtype: "F16", bytes: 2 }, [DataType.BFLOAT16]: { dtype: "BF16", bytes: 2 },
};
const BYTES = (t: OnnxTensor) => FLOATS[t.dataType]?.bytes ?? (t.dataType === DataType.INT8 || t.dataType === DataType.UINT8 ? 1 : 0);
const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** The graph with its wiring indexed, and the constants lifted so far (by initializer or Constant node). */
class Graph {
  readonly producer = new Map<string, OnnxNode>();
  readonly consumers = new Map<string, OnnxNode[]>();
  readonly scopes = new Map<string, OnnxNode[]>();
  readonly lifted = new Set<OnnxTensor>();
  /** How the lifted matrices were stored (WeightDescription.stored). */
  readonly kinds = new Set<string>();

  constructor(readonly graph: OnnxGraph, readonly file: string) {
    const add = (map: Map<string, OnnxNode[]>, key: string, n: OnnxNode) => (map.get(key) ?? map.set(key, []).get(key)!).push(n);
    for (const n of graph.nodes) {
      for (const o of n.outputs) this.producer.set(o, n);
      for (const i of n.inputs) add(this.consumers, i, n);
      add(this.scopes, n.name.includes("/") ? n.name.slice(0, n.name.lastIndexOf("/")) : "", n);
    }
  }

  fail(what: string): never {
    throw new FormatError(`${this.file}: ${what}`);
  }

  /** The constant a value is: an initializer, a Constant node's value, or either through Identity nodes (torch shares equal weights so). */
  constant(value: string): OnnxTensor | null {
    for (let hops = 0; hops < 16; hops++) {
      const t = this.graph.initializers.get(value);
      if (t) return t;
      const p = this.producer.get(value);
      if (p?.opType === "Constant") return p.attributes.get("value")?.t ?? null;
      if (p?.opType !== "Identity") return null;
      value = p.inputs[0];
    }
    return null;
  }

  /** The constant's values as numbers (scales, zero points, epsilons, frequencies). */
  numbers(t: OnnxTensor): number[] {
    if (!t.raw) {
      if (t.int32.length && BYTES(t) === 1) return t.int32;
      this.fail(`initializer "${t.name}" is stored as external data or typed fields, which the lifter does not read`);
    }
    const raw = this.bytes(t), v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength), n = count(t.dims);
    const at = (i: number) => {
      switch (t.dataType) {
        case DataType.FLOAT: return v.getFloat32(4 * i, true);
        case DataType.UINT8: return v.getUint8(i);
        case DataType.INT8: return v.getInt8(i);
        default: return this.fail(`"${t.name}" has data type ${t.dataType} where a float32 or 8-bit value is read`);
      }
    };
    return Array.from({ length: n }, (_, i) => at(i));
  }

  /** The raw bytes, checked against the dims. */
  bytes(t: OnnxTensor): Uint8Array {
    if (t.external || !t.raw) this.fail(`initializer "${t.name}" is stored as external data or typed fields, which the lifter does not read`);
    const expected = count(t.dims) * BYTES(t);
    if (t.raw.byteLength !== expected) this.fail(`initializer "${t.name}" holds ${t.raw.byteLength} bytes, [${t.dims}] of data type ${t.dataType} is ${expected}`);
    return t.raw;
  }

  /** The nodes of a module (Hugging Face's path, model.layers.0.self_attn.q_proj) as torch.onnx.export names them. */
  module(path: string): { scope: string; nodes: OnnxNode[] } {
    const scope = "/" + path.replace(/\./g, "/").replace(/\/layers\/(\d+)/, "/layers.$1");
    return { scope, nodes: this.scopes.get(scope) ?? [] };
  }
}

/** A float [in, out] MatMul weight as Hugging Face's [out, in], in its own dtype. */
function transposed(g: Graph, w: OnnxTensor): TensorData {
  const [inputs, outputs] = w.dims, { dtype, bytes: size } = FLOATS[w.dataType];
  const src = new Uint8Array(g.bytes(w)), out = new Uint8Array(src.byteLength); // copies: aligned, whatever the tensor's offset in the file
  if (size === 4) {
    const a = new Uint32Array(src.buffer), b = new Uint32Array(out.buffer);
    for (let k = 0; k < inputs; k++) for (let o = 0; o < outputs; o++) b[o * inputs + k] = a[k * outputs + o];
  } else {
    const a = new Uint16Array(src.buffer), b = new Uint16Array(out.buffer);
    for (let k = 0; k < inputs; k++) for (let o = 0; o < outputs; o++) b[o * inputs + k] = a[k * outputs + o];
  }
  return { dtype, shape: [outputs, inputs], bytes: out, file: g.file };
}

/** (q − zero) · scale as F32, scale and zero per tensor or per output; `transpose`: q is a MatMul's [in, out], the result [out, in] (else a table's rows). */
function dequantized(g: Graph, q: OnnxTensor, scale: number[], zero: number[], transpose: boolean): TensorData {
  const [rows, cols] = q.dims, raw = g.bytes(q), signed = q.dataType === DataType.INT8;
  const per = transpose ? cols : rows; // scales per output: the columns of [in, out], the rows of a table
  for (const [what, v] of [["scale", scale], ["zero point", zero]] as const) {
    if (v.length !== 1 && v.length !== per) g.fail(`"${q.name}": ${v.length} ${what}s for ${per} outputs (one, or one per output, are what quantize_dynamic writes)`);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const o = transpose ? c : r, s = scale[scale.length === 1 ? 0 : o], z = zero[zero.length === 1 ? 0 : o];
      const v = signed ? (raw[r * cols + c] << 24) >> 24 : raw[r * cols + c];
      out[transpose ? c * rows + r : r * cols + c] = (v - z) * s;
    }
  }
  return { dtype: "F32", shape: transpose ? [cols, rows] : [rows, cols], bytes: new Uint8Array(out.buffer), file: g.file };
}

/** The only consumer of a value, or null. */
function only(g: Graph, value: string, opType: string): OnnxNode | null {
  const c = g.consumers.get(value) ?? [];
  return c.length === 1 && c[0].opType === opType ? c[0] : null;
}

/**
 * MatMulInteger(DynamicQuantizeLinear(x), W) → Cast → Mul by (x's scale · W's scale): W dequantized,
 * and the value the float product is (what a bias is added to).
 */
function integerMatMul(g: Graph, n: OnnxNode, w: OnnxTensor): { weight: TensorData; output: string } {
  const [a, , aZero, bZero] = n.inputs;
  const dql = g.producer.get(a);
  if (dql?.opType !== "DynamicQuantizeLinear" || dql.outputs[0] !== a || aZero !== dql.outputs[2]) {
    g.fail(`node ${n.name}: MatMulInteger's activations and their zero point do not come from one DynamicQuantizeLinear`);
  }
  const cast = only(g, n.outputs[0], "Cast");
  const mul = cast && only(g, cast.outputs[0], "Mul");
  const product = mul && g.producer.get(mul.inputs.find((i) => i !== cast.outputs[0]) ?? "");
  const wScale = product?.opType === "Mul" && product.inputs.includes(dql.outputs[1]) ? product.inputs.find((i) => i !== dql.outputs[1]) : undefined;
  const scale = wScale === undefined ? null : g.constant(wScale);
  if (!mul || !scale) g.fail(`node ${n.name}: MatMulInteger is not followed by Cast and Mul by the activation's scale times a constant weight scale`);
  const zero = bZero ? g.constant(bZero) : null;
  if (bZero && (!zero || zero.dataType !== w.dataType)) g.fail(`node ${n.name}: the weight's zero point is not a constant of the weight's type`);
  for (const t of [w, scale, ...(zero ? [zero] : [])]) g.lifted.add(t);
  const scales = g.numbers(scale);
  g.kinds.add(`${w.dataType === DataType.INT8 ? "int8" : "uint8"} MatMulInteger, a scale per ${scales.length === 1 ? "tensor" : "column"}`);
  return { weight: dequantized(g, w, scales, zero ? g.numbers(zero) : [0], true), output: mul.outputs[0] };
}

/** The projection of a module (one MatMul or MatMulInteger reading a constant weight there), as [out, in], and its float output. */
function projection(g: Graph, path: string): { weight: TensorData; output: string } | null {
  const { scope, nodes } = g.module(path);
  const found = nodes.filter((n) => (n.opType === "MatMul" || n.opType === "MatMulInteger") && g.constant(n.inputs[1]));
  if (found.length > 1) g.fail(`${found.length} MatMuls read constant weights in ${scope} (${found.map((n) => n.name).join(", ")})`);
  if (!found.length) return null;
  const n = found[0], w = g.constant(n.inputs[1])!;
  if (w.dims.length !== 2) g.fail(`node ${n.name}: weight "${w.name}" has shape [${w.dims}], not a matrix`);
  if (n.opType === "MatMulInteger") {
    if (BYTES(w) !== 1 || FLOATS[w.dataType]) g.fail(`node ${n.name}: MatMulInteger weight "${w.name}" is not int8 or uint8`);
    return integerMatMul(g, n, w);
  }
  if (!FLOATS[w.dataType]) g.fail(`node ${n.name}: MatMul weight "${w.name}" has data type ${w.dataType}, not a float`);
  g.lifted.add(w);
  const weight = transposed(g, w);
  g.kinds.add(`${weight.dtype} MatMul`);
  return { weight, output: n.outputs[0] };
}

/** A 1-D float constant of a module read by a node of `opTypes`, viewed in place. */
function vector(g: Graph, path: string, opTypes: string[], reads?: string): TensorData | null {
  const { scope, nodes } = g.module(path);
  const found = nodes.flatMap((n) => (opTypes.includes(n.opType) && (!reads || n.inputs.includes(reads)) ? n.inputs : [])
    .map((i) => g.constant(i)).filter((t): t is OnnxTensor => !!t && t.dims.length === 1 && count(t.dims) > 1 && !!FLOATS[t.dataType]));
  if (found.length > 1) g.fail(`${found.length} vectors in ${scope} where one ${opTypes.join(" or ")} weight is expected (${found.map((t) => t.name).join(", ")})`);
  if (!found.length) return null;
  g.lifted.add(found[0]);
  return { dtype: FLOATS[found[0].dataType].dtype, shape: found[0].dims, bytes: g.bytes(found[0]), file: g.file };
}

/** An RMSNorm's weight, fused (SimplifiedLayerNormalization) or as torch traces it (… Add ε … Mul by the weight), its ε config.json's. */
function rmsNorm(g: Graph, path: string, arch: Architecture): TensorData {
  const { scope, nodes } = g.module(path);
  const weight = vector(g, path, ["Mul", "SimplifiedLayerNormalization"]);
  if (!weight) g.fail(`no RMSNorm weight in ${scope} (${path}.weight)`);
  const fused = nodes.find((n) => n.opType === "SimplifiedLayerNormalization");
  let eps: number | undefined;
  if (fused) {
    const axis = fused.attributes.get("axis")?.i ?? -1;
    if (axis !== -1) g.fail(`node ${fused.name} normalizes along axis ${axis}, where the kernels take the last (-1)`);
    eps = fused.attributes.get("epsilon")?.f ?? 1e-5; // SimplifiedLayerNormalization's default
  } else {
    const add = nodes.find((n) => n.opType === "Add" && n.inputs.some((i) => g.producer.get(i)?.opType === "ReduceMean"));
    const c = add?.inputs.map((i) => g.constant(i)).find((t) => t && count(t.dims) === 1);
    if (c) eps = g.numbers(c)[0];
  }
  if (eps === undefined) g.fail(`no RMSNorm epsilon found in ${scope}`);
  if (Math.abs(eps - arch.eps) > 1e-3 * arch.eps) g.fail(`${scope} adds epsilon ${eps}, config.json's rms_norm_eps is ${arch.eps}`);
  return weight;
}

/** The embedding table: Gather on a float table, or on an 8-bit one followed by DequantizeLinear (a scale and zero point per tensor). */
function embedding(g: Graph): TensorData {
  const { scope, nodes } = g.module("model.embed_tokens");
  const gather = nodes.find((n) => n.opType === "Gather" && g.constant(n.inputs[0]));
  if (!gather) g.fail(`no Gather on a constant table in ${scope} (model.embed_tokens.weight)`);
  if ((gather.attributes.get("axis")?.i ?? 0) !== 0) g.fail(`node ${gather.name} gathers along axis ${gather.attributes.get("axis")?.i}, not the rows`);
  const table = g.constant(gather.inputs[0])!;
  g.lifted.add(table);
  if (FLOATS[table.dataType]) return { dtype: FLOATS[table.dataType].dtype, shape: table.dims, bytes: g.bytes(table), file: g.file };
  const dq = only(g, gather.outputs[0], "DequantizeLinear");
  const scale = dq && g.constant(dq.inputs[1]), zero = dq?.inputs[2] ? g.constant(dq.inputs[2]) : null;
  if (BYTES(table) !== 1 || !scale || count(scale.dims) !== 1 || (dq.inputs[2] && (!zero || count(zero.dims) !== 1))) {
    g.fail(`node ${gather.name}: an 8-bit table "${table.name}" not followed by DequantizeLinear with one constant scale and zero point`);
  }
  for (const t of [scale, ...(zero ? [zero] : [])]) g.lifted.add(t);
  g.kinds.add(`${table.dataType === DataType.INT8 ? "int8" : "uint8"} embedding + DequantizeLinear`);
  return dequantized(g, table, g.numbers(scale), zero ? g.numbers(zero) : [0], false);
}

/**
 * The constants left over once the weights are lifted: scalars, shapes and indices are glue; a float
 * vector of headDim / 2 is the rotary frequencies and must be config.json's; anything else weight-sized
 * is something the kernels would not compute.
 */
function checkAccounted(g: Graph, arch: Architecture): void {
  const expected = rotaryFrequencies(arch);
  for (const n of g.graph.nodes) {
    for (const input of n.inputs) {
      const t = g.constant(input);
      if (!t || g.lifted.has(t) || BYTES(t) === 0 || count(t.dims) <= 1) continue;
      if (count(t.dims) === expected.length && t.dataType === DataType.FLOAT) {
        const found = g.numbers(t);
        const i = found.findIndex((v, j) => Math.abs(v - expected[j]) > 1e-4 * expected[j]);
        if (i >= 0) g.fail(`rotary frequency ${i} is ${found[i]} in "${input}" (read by node ${n.name}), config.json's rope_theta / rope_scaling give ${expected[i]}`);
        continue;
      }
      g.fail(`constant "${input}" [${t.dims}] (read by node ${n.name}) is not a weight the kernels take`);
    }
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A standard decoder graph's weights (see the top of the file), or FormatError naming what the lifter cannot account for. */
export function liftOnnx(graph: OnnxGraph, config: Record<string, unknown>, file: string): WeightDescription {
  const arch = architectureFromConfig(config);
  const g: Graph = new Graph(graph, file); // annotated, so g.fail(...) narrows (it returns never)
  const unknown = graph.nodes.find((n) => !KNOWN_OPS.has(n.opType) || !DOMAINS.has(n.domain));
  if (unknown) g.fail(`op ${unknown.domain ? `${unknown.domain}.` : ""}${unknown.opType} (node ${unknown.name}) is not one the kernels compute`);
  const tensors = new Map<string, TensorData>();
  const project = (path: string, bias: boolean) => {
    const p = projection(g, path);
    if (!p) g.fail(`no MatMul reads a weight in ${g.module(path).scope} (${path}.weight)`);
    tensors.set(`${path}.weight`, p.weight);
    const b = bias ? vector(g, path, ["Add"], p.output) : null;
    if (b) tensors.set(`${path}.bias`, b);
  };
  tensors.set("model.embed_tokens.weight", embedding(g));
  for (let i = 0; i < arch.layers; i++) {
    const p = `model.layers.${i}.`;
    for (const norm of ["input_layernorm", "post_attention_layernorm", ...(arch.qkNorm ? ["self_attn.q_norm", "self_attn.k_norm"] : [])]) {
      tensors.set(`${p}${norm}.weight`, rmsNorm(g, p + norm, arch));
    }
    for (const m of ["q", "k", "v"]) project(`${p}self_attn.${m}_proj`, arch.qkvBias);
    for (const m of ["self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]) project(p + m, false);
  }
  tensors.set("model.norm.weight", rmsNorm(g, "model.norm", arch));
  // Optimum puts the head beside the decoder (/lm_head); some exports nest it (/model/lm_head).
  const head = projection(g, "lm_head") ?? projection(g, "model.lm_head");
  if (!head) g.fail("no MatMul reads the LM head's weight in /lm_head (lm_head.weight)");
  // A tied head the graph holds as the embedding's exact transpose is kept as one table; otherwise the graph's own head runs.
  const embed = tensors.get("model.embed_tokens.weight")!;
  const tied = arch.tiedHead && head.weight.dtype === embed.dtype && bytesEqual(head.weight.bytes, embed.bytes);
  if (!tied) tensors.set("lm_head.weight", head.weight);
  checkAccounted(g, arch);
  return validateDescription({ format: "onnx", files: [file], arch: { ...arch, tiedHead: tied }, tensors, stored: `the graph's ${[...g.kinds].join(", ")}` });
}
