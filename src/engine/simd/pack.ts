// The kernels' weights (LlamaWeights, exactly as the loader hands them to SimdDecoder) as one file,
// so a cold start copies them instead of converting a checkpoint again. Generic over the weights'
// structure: every typed array is a tensor, named by its path (layers.3.qkv.data), stored raw and
// aligned; everything else (sizes, a matrix's kind, config numbers) stays in the header's JSON tree.
//   bytes 0..7   "TLMKPACK"
//   bytes 8..11  header length, u32 little-endian
//   header       UTF-8 JSON: { version, weights: tree with {"$tensor": i} leaves, tensors: [{ name, type, offset, bytes }], ...meta }
//   tensors      raw little-endian arrays, each at an offset that is a multiple of 64 from the file's start
// Which folder files a pack stands for, and when it may be used, is src/packed.ts's concern.

const MAGIC = "TLMKPACK";
const ALIGN = 64;
/** The container's own version (this file's layout); what the weights mean is KERNEL_WEIGHTS_VERSION's. */
export const PACK_VERSION = 1;

const TYPES = { f32: Float32Array, i32: Int32Array, u32: Uint32Array, i16: Int16Array, u16: Uint16Array, i8: Int8Array, u8: Uint8Array } as const;
type TypeName = keyof typeof TYPES;
type Typed = InstanceType<(typeof TYPES)[TypeName]>;

/** A file that is not a pack this code wrote (its hash matched, so a bug or a hand-made file): never half-read. */
export class PackError extends Error {}

export interface TensorEntry {
  name: string;
  type: TypeName;
  offset: number;
  bytes: number;
}

function typeOf(value: unknown): TypeName | null {
  for (const [name, ctor] of Object.entries(TYPES)) if (value instanceof ctor) return name as TypeName;
  return null;
}

/** The weights (a tree of plain objects, arrays, numbers, strings, booleans, nulls and typed arrays) and `meta` as one file. */
export function writePack(weights: unknown, meta: Record<string, unknown>): Uint8Array {
  const arrays: Typed[] = [];
  const tensors: TensorEntry[] = [];
  const encode = (node: unknown, path: string): unknown => {
    if (ArrayBuffer.isView(node)) {
      const type = typeOf(node);
      if (!type) throw new PackError(`${path}: ${node.constructor.name} is not a type packs store`);
      arrays.push(node as Typed);
      tensors.push({ name: path, type, offset: 0, bytes: node.byteLength });
      return { $tensor: tensors.length - 1 };
    }
    if (Array.isArray(node)) return node.map((v, i) => encode(v, path ? `${path}.${i}` : String(i)));
    if (node !== null && typeof node === "object") {
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, encode(v, path ? `${path}.${k}` : k)]));
    }
    if (typeof node === "number" && !Number.isFinite(node)) throw new PackError(`${path}: ${node} has no JSON form`);
    if (node !== null && !["number", "string", "boolean"].includes(typeof node)) throw new PackError(`${path}: a ${typeof node} cannot be packed`);
    return node;
  };
  const tree = encode(weights, "");
  // The offsets depend on the header's length, which depends on the offsets' digits: lay out until it settles.
  let headerBytes = new Uint8Array(0), start = 0;
  for (let settled = false; !settled;) {
    let at = Math.ceil((12 + headerBytes.length) / ALIGN) * ALIGN;
    start = at;
    for (const t of tensors) {
      t.offset = at;
      at = Math.ceil((at + t.bytes) / ALIGN) * ALIGN;
    }
    const next = new TextEncoder().encode(JSON.stringify({ ...meta, version: PACK_VERSION, weights: tree, tensors }));
    settled = Math.ceil((12 + next.length) / ALIGN) * ALIGN === start;
    headerBytes = next;
  }
  const end = tensors.length ? tensors[tensors.length - 1].offset + tensors[tensors.length - 1].bytes : start;
  const out = new Uint8Array(end);
  out.set(new TextEncoder().encode(MAGIC));
  new DataView(out.buffer).setUint32(8, headerBytes.length, true);
  out.set(headerBytes, 12);
  tensors.forEach((t, i) => out.set(new Uint8Array(arrays[i].buffer, arrays[i].byteOffset, arrays[i].byteLength), t.offset));
  return out;
}

/** A pack's header, validated: its tensor list and the file's length the tensors imply. */
export interface PackHeader {
  header: Record<string, unknown>;
  tensors: TensorEntry[];
  /** Where the last tensor ends: the whole file's length (a pack may arrive in parts, src/packed.ts). */
  end: number;
}

const failure = (file: string) => (why: string): never => {
  throw new PackError(`${file}: ${why} (not a pack this server wrote: run npm run pack again)`);
};

/**
 * The header of a pack from its first bytes (at least the header: the tensors may lie beyond
 * `first`). Every tensor's type, offset and length is checked before any is read; a header of
 * another container version comes back with no tensors (the caller says it is stale).
 */
export function readPackHeader(first: Uint8Array, file: string): PackHeader {
  const fail = failure(file);
  if (first.byteLength < 12 || new TextDecoder().decode(first.subarray(0, 8)) !== MAGIC) fail("no pack header");
  const length = new DataView(first.buffer, first.byteOffset, 12).getUint32(8, true);
  if (12 + length > first.byteLength) fail(`a header of ${length} bytes in a file of ${first.byteLength}`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(first.subarray(12, 12 + length))) as Record<string, unknown>;
  } catch (err) {
    return fail(`its header is not JSON (${(err as Error).message})`);
  }
  if (header.version !== PACK_VERSION) return { header, tensors: [], end: 12 + length };
  const entries = header.tensors;
  if (!Array.isArray(entries)) return fail("no tensor list");
  let end = 12 + length;
  for (const [i, t] of (entries as TensorEntry[]).entries()) {
    const ctor = TYPES[t?.type];
    if (!ctor) fail(`tensor ${i} has type ${JSON.stringify(t?.type)}`);
    const { offset, bytes: n } = t;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(n) || offset < end || n < 0 || offset % ALIGN || n % ctor.BYTES_PER_ELEMENT) {
      fail(`tensor ${t.name}: ${n} bytes at ${offset} (tensors are aligned, in order, after the header, whole elements of their type)`);
    }
    end = offset + n;
  }
  return { header, tensors: entries as TensorEntry[], end };
}

/** The weights tree of a pack's header, each tensor reference replaced by `leaf(tensor, index)`. */
export function packTree<T>({ header, tensors }: PackHeader, file: string, leaf: (t: TensorEntry, i: number) => T): unknown {
  const fail = failure(file);
  const used = new Set<number>();
  const decode = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(decode);
    if (node !== null && typeof node === "object") {
      const ref = (node as { $tensor?: unknown }).$tensor;
      if (ref !== undefined) {
        if (typeof ref !== "number" || !tensors[ref] || used.has(ref)) fail(`a tensor reference ${JSON.stringify(ref)}`);
        used.add(ref as number);
        return leaf(tensors[ref as number], ref as number);
      }
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, decode(v)]));
    }
    return node;
  };
  const weights = decode(header.weights);
  if (used.size !== tensors.length) fail(`${tensors.length - used.size} tensors no weight refers to`);
  return weights;
}

/**
 * A whole pack's header (its meta fields and version) and weights; the tensors are views into
 * `bytes` where aligned (no copy), else copies.
 */
export function readPack(bytes: Uint8Array, file: string): { header: Record<string, unknown>; weights: unknown } {
  const layout = readPackHeader(bytes, file);
  if (layout.header.version !== PACK_VERSION) return { header: layout.header, weights: null }; // another container: the caller says it is stale
  if (layout.end > bytes.byteLength) failure(file)(`its tensors end at byte ${layout.end} of a file of ${bytes.byteLength}`);
  const weights = packTree(layout, file, ({ type, offset, bytes: n }): Typed => {
    const ctor = TYPES[type], at = bytes.byteOffset + offset;
    if (at % ctor.BYTES_PER_ELEMENT === 0) return new ctor(bytes.buffer as ArrayBuffer, at, n / ctor.BYTES_PER_ELEMENT);
    return new ctor(bytes.slice(offset, offset + n).buffer);
  });
  return { header: layout.header, weights };
}
