// Just enough of the ONNX protobuf format to read a decoder's graph: node types and wiring, the
// graph's input and output names, numeric node attributes, and initializers (name, dims, data type,
// raw bytes as a view). Field numbers are those of onnx.proto (ModelProto.graph = 7; GraphProto
// node = 1, initializer = 5, input = 11, output = 12; NodeProto input = 1, output = 2, name = 3,
// op_type = 4, attribute = 5, domain = 7; AttributeProto name = 1, f = 2, i = 3, t = 5, ints = 8;
// TensorProto dims = 1, data_type = 2, float_data = 4, int32_data = 5, int64_data = 7, name = 8,
// raw_data = 9, data_location = 14; ValueInfoProto name = 1).

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: number; // TensorProto.DataType: 1 float, 3 int8, 6 int32, 7 int64, 10 float16
  /** The raw little-endian bytes (a view into the file), or null when stored otherwise (typed fields, external data). */
  raw: Uint8Array | null;
  /** int32_data: small int8/int32 constants written without raw_data. */
  int32: number[];
  external: boolean;
}

/** A node attribute's value: `f` (a float), `i` (an int), `ints`, or `t` (a tensor: a Constant's value); other kinds are not read. */
export interface OnnxAttribute {
  f?: number;
  i?: number;
  ints: number[];
  t?: OnnxTensor;
}

export interface OnnxNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Map<string, OnnxAttribute>;
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  initializers: Map<string, OnnxTensor>;
  inputs: string[];
  outputs: string[];
}

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT64: 7, FLOAT16: 10, BFLOAT16: 16 } as const;

class Reader {
  pos: number;
  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  varint(): number {
    const start = this.pos;
    let result = 0;
    let shift = 1;
    for (;;) {
      if (this.pos >= this.end) throw new Error("truncated varint");
      const b = this.bytes[this.pos++];
      result += (b & 0x7f) * shift; // numbers, not bit operations: values can exceed 2^31
      if (b < 0x80) return result < 2 ** 63 ? result : this.negative(start);
      shift *= 128;
      if (shift > 2 ** 63) throw new Error("varint too long");
    }
  }

  /** A negative int64 (an attribute's axis -1) is ten bytes of two's complement: exact through BigInt. */
  private negative(start: number): number {
    let big = 0n;
    for (let i = start; i < this.pos; i++) big |= BigInt(this.bytes[i] & 0x7f) << BigInt(7 * (i - start));
    return Number(BigInt.asIntN(64, big));
  }

  /** Calls fn(field, wireType, reader) for each field; length-delimited fields get a sub-reader. */
  fields(fn: (field: number, wire: number, sub: Reader | null, value: number) => void): void {
    while (this.pos < this.end) {
      const key = this.varint();
      const field = Math.floor(key / 8), wire = key & 7;
      if (wire === 0) fn(field, wire, null, this.varint());
      else if (wire === 2) {
        const len = this.varint();
        if (this.pos + len > this.end) throw new Error(`field ${field} runs past the end of its message`);
        fn(field, wire, new Reader(this.bytes, this.pos, this.pos + len), len);
        this.pos += len;
      } else if (wire === 1) this.skip(8);
      else if (wire === 5) {
        if (this.pos + 4 > this.end) throw new Error("truncated fixed-width field");
        fn(field, wire, null, new DataView(this.bytes.buffer, this.bytes.byteOffset + this.pos, 4).getFloat32(0, true)); // float is the only 32-bit field read
        this.pos += 4;
      }
      else throw new Error(`unsupported wire type ${wire} (field ${field})`);
    }
  }

  private skip(n: number): void {
    if (this.pos + n > this.end) throw new Error("truncated fixed-width field");
    this.pos += n;
  }

  string(): string {
    return new TextDecoder().decode(this.bytes.subarray(this.pos, this.end));
  }

  view(): Uint8Array {
    return this.bytes.subarray(this.pos, this.end);
  }

  /** A repeated varint field, packed (wire type 2) or not. */
  packedVarints(out: number[]): void {
    while (this.pos < this.end) out.push(this.varint());
  }
}

function readTensor(r: Reader): OnnxTensor {
  const t: OnnxTensor = { name: "", dims: [], dataType: 0, raw: null, int32: [], external: false };
  r.fields((field, wire, sub, value) => {
    if (field === 1) wire === 2 ? sub!.packedVarints(t.dims) : t.dims.push(value);
    else if (field === 2) t.dataType = value;
    else if (field === 5) wire === 2 ? sub!.packedVarints(t.int32) : t.int32.push(value);
    else if (field === 8) t.name = sub!.string();
    else if (field === 9) t.raw = sub!.view();
    else if (field === 14) t.external = value === 1;
  });
  return t;
}

function readAttribute(r: Reader): [string, OnnxAttribute] {
  let name = "";
  const a: OnnxAttribute = { ints: [] };
  r.fields((field, wire, sub, value) => {
    if (field === 1 && sub) name = sub.string();
    else if (field === 2 && wire === 5) a.f = value;
    else if (field === 3 && wire === 0) a.i = value;
    else if (field === 5 && sub) a.t = readTensor(sub);
    else if (field === 8) wire === 2 ? sub!.packedVarints(a.ints) : a.ints.push(value);
  });
  return [name, a];
}

function readNode(r: Reader): OnnxNode {
  const n: OnnxNode = { opType: "", domain: "", name: "", inputs: [], outputs: [], attributes: new Map() };
  r.fields((field, _wire, sub) => {
    if (field === 1) n.inputs.push(sub!.string());
    else if (field === 2) n.outputs.push(sub!.string());
    else if (field === 3) n.name = sub!.string();
    else if (field === 4) n.opType = sub!.string();
    else if (field === 5 && sub) n.attributes.set(...readAttribute(sub));
    else if (field === 7) n.domain = sub!.string();
  });
  return n;
}

function valueInfoName(r: Reader): string {
  let name = "";
  r.fields((field, _wire, sub) => {
    if (field === 1) name = sub!.string();
  });
  return name;
}

/** Parse a .onnx file (ModelProto). Throws on malformed protobuf or a file without a graph. */
export function readOnnx(bytes: Uint8Array): OnnxGraph {
  let graph: OnnxGraph | null = null;
  new Reader(bytes).fields((field, wire, sub) => {
    if (field !== 7 || wire !== 2) return;
    const g: OnnxGraph = { nodes: [], initializers: new Map(), inputs: [], outputs: [] };
    sub!.fields((f, w, s) => {
      if (w !== 2) return;
      if (f === 1) g.nodes.push(readNode(s!));
      else if (f === 5) {
        const t = readTensor(s!);
        g.initializers.set(t.name, t);
      } else if (f === 11) g.inputs.push(valueInfoName(s!));
      else if (f === 12) g.outputs.push(valueInfoName(s!));
    });
    graph = g;
  });
  if (!graph) throw new Error("no graph in the file (not an ONNX model?)");
  return graph;
}
