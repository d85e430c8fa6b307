// Relaxed SIMD is detected, not assumed: relaxed.wasm is compiled only where the runtime validates it
// (V8 ≥ 11.4 does: Node ≥ 22, Deno, workerd; Node 20's V8 11.3 only behind a flag, so it runs the plain ones).

/**
 * Which form of relaxed.wasm's dot-product functions the kernels import (relaxed.wat's header):
 * "fused", one instruction per 16 multiply-adds where V8 has one (x64 with AVX-VNNI), or "split",
 * the same integers in the two or three instructions V8 would expand it into, without the two more
 * it adds each time where the CPU lacks AVX-VNNI. Results are the same bits.
 */
export type DotForm = "fused" | "split";

/** The form RELAXED_SIMD named for a compiled relaxed module (withDotForm). */
const forms = new WeakMap<WebAssembly.Module, DotForm>();
/** The faster form on this CPU, timed on the first module that needed it (a property of the CPU, so once per process). */
let timed: DotForm | null = null;

/**
 * The compiled relaxed.wasm, or null where this runtime has no relaxed SIMD (or RELAXED_SIMD=0).
 * RELAXED_SIMD=fused or split names the form; unset or auto leaves it to dotForm's timing.
 */
export async function compileRelaxed(bytes: () => Promise<Uint8Array>, setting?: string): Promise<WebAssembly.Module | null> {
  if (setting === "0") return null;
  const code = (await bytes()) as Uint8Array<ArrayBuffer>;
  return WebAssembly.validate(code) ? withDotForm(await WebAssembly.compile(code), setting) : null;
}

/** The module, its dot-product form fixed when `setting` names one ("fused" or "split"). */
export function withDotForm(module: WebAssembly.Module, setting?: string): WebAssembly.Module {
  if (setting === "fused" || setting === "split") forms.set(module, setting);
  return module;
}

/**
 * The module's form: the one RELAXED_SIMD named, or the faster of the two on this CPU, timed once per
 * process on 8 rows of gemm (7-bit rows) and gemm_q4b (4-bit blocks) over a zeroed memory of its own
 * (the timings do not depend on the values; the same choice for every module keeps a process's loads
 * alike). Where the clock does not move during a call (Workers stop it), the two tie and "split" is
 * taken: the faster one wherever the CPU lacks AVX-VNNI (BENCHMARKS.md).
 */
export function dotForm(module: WebAssembly.Module): DotForm {
  return forms.get(module) ?? (timed ??= timedForm(module));
}

type Gemm = (y: number, ldy: number, a: number, as: number, sums: number, rows: number, w: number, ws: number, nout: number, n: number) => void;

function timedForm(module: WebAssembly.Module): DotForm {
  // relaxed-threads.wasm imports a shared memory (build-relaxed.mjs --threads), relaxed.wasm a plain one
  const instance = (shared: boolean) => new WebAssembly.Instance(module, { env: { memory: new WebAssembly.Memory({ initial: 2, maximum: 65536, shared }) } });
  let exports: Record<string, Gemm>;
  try {
    exports = instance(false).exports as Record<string, Gemm>;
  } catch {
    exports = instance(true).exports as Record<string, Gemm>;
  }
  // 8 rows × 512 int8 activations at 0, their scales and sums at 4 KiB, 64 × 512 weights at 8 KiB
  // (at most 32 KiB), scales at 40 KiB, outputs at 56 KiB.
  const run = (suffix: string) => () => {
    for (let i = 0; i < 4; i++) {
      exports[`gemm${suffix}`](57344, 64, 0, 4096, 4352, 8, 8192, 40960, 64, 512);
      exports[`gemm_q4b${suffix}`](57344, 64, 0, 4096, 4352, 8, 8192, 40960, 64, 512);
    }
  };
  const fused = run(""), split = run("_split");
  const time = (f: () => void) => {
    const start = performance.now();
    f();
    return performance.now() - start;
  };
  for (let round = 0; round < 3; round++) {
    // compiled at the first call; where the runtime starts in its baseline tier (tests without the
    // hosts' --no-liftoff), a few more calls give the optimizing tier its chance
    fused();
    split();
  }
  let fusedBest = Infinity, splitBest = Infinity;
  for (let round = 0; round < 7; round++) {
    fusedBest = Math.min(fusedBest, time(fused));
    splitBest = Math.min(splitBest, time(split));
  }
  return fusedBest < splitBest ? "fused" : "split";
}

/** The name of relaxed.wasm's export for kernel `name` in `form` (kernels without a dot product have one form). */
export const dotFormExport = (name: string, form: DotForm, exports: WebAssembly.Exports) =>
  (form === "split" && `${name}_split` in exports ? `${name}_split` : name);
