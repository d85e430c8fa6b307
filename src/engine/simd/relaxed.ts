// Relaxed SIMD is detected, not assumed: relaxed.wasm is compiled only where the runtime validates it
// (V8 ≥ 11.4 does: Node ≥ 22, Deno, workerd; Node 20's V8 11.3 only behind a flag, so it runs the plain ones).

/** The compiled relaxed.wasm, or null where this runtime has no relaxed SIMD (or RELAXED_SIMD=0). */
export async function compileRelaxed(bytes: () => Promise<Uint8Array>, setting?: string): Promise<WebAssembly.Module | null> {
  if (setting === "0") return null;
  const code = (await bytes()) as Uint8Array<ArrayBuffer>;
  return WebAssembly.validate(code) ? WebAssembly.compile(code) : null;
}
