// relaxed.wat → relaxed.wasm with wabt (npm), which knows relaxed SIMD (Debian's clang 14 does not).
//   node src/engine/simd/kernels/build-relaxed.mjs [OUT]             → ../relaxed.wasm
//   node src/engine/simd/kernels/build-relaxed.mjs --threads [OUT]   → ../relaxed-threads.wasm: the same
//     code on a shared memory, for kernels-threads.wasm (build.sh --threads)
// Both hold each function in two forms (relaxed.wat's header): as written ("fused"), and, for every
// function that uses the fused dot product or calls one that does, a copy named <name>_split.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import wabtInit from "wabt";

const here = dirname(fileURLToPath(import.meta.url));
const threads = process.argv[2] === "--threads";
const out = process.argv[threads ? 3 : 2] ?? join(here, threads ? "../relaxed-threads.wasm" : "../relaxed.wasm");
const source = bothForms(readFileSync(join(here, "relaxed.wat"), "utf8"));
const wabt = await wabtInit();
const features = { simd: true, relaxed_simd: true };
wabt.parseWat("relaxed.wat", source, features).validate();
let module = wabt.parseWat("relaxed.wat", source, features);
if (threads) {
  // The same code on a shared memory of build.sh --threads's maximum (4 GiB). wabt's validator
  // rejects any shared memory import, so the text above is what it validates.
  const memory = '(import "env" "memory" (memory 1))';
  if (!source.includes(memory)) throw new Error(`relaxed.wat no longer imports ${memory}`);
  module = wabt.parseWat("relaxed.wat", source.replace(memory, '(import "env" "memory" (memory 1 65536 shared))'), { ...features, threads: true });
}
writeFileSync(out, module.toBinary({}).buffer);

/**
 * relaxed.wat's text with `(block_sum X)` written out for the fused form (X itself), and after it
 * the split form of each function that uses DOT: DOT(a, b, c) becomes c + pmaddwd(pmaddubsw(a, b),
 * ones) in WebAssembly's terms, or, in a function that takes block_sum (its sums fit int16),
 * c + pmaddubsw(a, b) in 16-bit lanes with block_sum(X) = pmaddwd(X, ones); ones is a local set from
 * a mutable global, so that V8 keeps it in a register instead of rebuilding a constant at each use.
 */
function bothForms(text) {
  const DOT = "i32x4.relaxed_dot_i8x16_i7x16_add_s";
  const funcs = [...topLevel(text, "(module")].filter((f) => text.startsWith("(func", f.start));
  const nameOf = (f) => /^\(func (\$\w+)/.exec(text.slice(f.start, f.end))?.[1];
  // the functions that use DOT, and those that call one of them (their copies call the split ones)
  const split = funcs.filter((f) => text.slice(f.start, f.end).includes(`(${DOT}`));
  for (let more = true; more; ) {
    const names = split.map(nameOf).filter(Boolean);
    const callers = funcs.filter((f) => !split.includes(f) && names.some((name) => text.slice(f.start, f.end).includes(`(call ${name} `)));
    split.push(...callers);
    more = callers.length > 0;
  }
  split.sort((a, b) => a.start - b.start);
  const names = split.map(nameOf).filter(Boolean);
  const copies = split.map((f) => {
    let fn = text.slice(f.start, f.end);
    const int16 = fn.includes("(block_sum ");
    fn = rewrite(fn, DOT, ([a, b, c]) => int16
      ? `(i16x8.add ${c} (i16x8.relaxed_dot_i8x16_i7x16_s ${a} ${b}))`
      : `(i32x4.add ${c} (i32x4.dot_i16x8_s (i16x8.relaxed_dot_i8x16_i7x16_s ${a} ${b}) (local.get $ones)))`);
    fn = rewrite(fn, "block_sum", ([x]) => `(i32x4.dot_i16x8_s ${x} (local.get $ones))`);
    fn = fn.replace(/\(export "(\w+)"\)/, '(export "$1_split")');
    for (const name of names) fn = fn.replaceAll(`(func ${name} `, `(func ${name}_split `).replaceAll(`(call ${name} `, `(call ${name}_split `);
    // the local and its value go after the function's params, results and locals
    const body = [...topLevel(fn, "(func")].find((e) => !/^\((export|param|result|local) /.test(fn.slice(e.start)));
    return `${fn.slice(0, body.start)}(local $ones v128)\n    (local.set $ones (i16x8.splat (global.get $one)))\n    ${fn.slice(body.start)}`;
  });
  const fused = rewrite(text, "block_sum", ([x]) => x);
  const end = fused.lastIndexOf(")");
  return `${fused.slice(0, end)}\n  ;; The split form (build-relaxed.mjs)\n  (global $one (mut i32) (i32.const 1))\n  ${copies.join("\n\n  ")}\n${fused.slice(end)}`;
}

/** Index just past the s-expression opening at text[i] ("("); `;;` comments run to the line's end. */
function close(text, i) {
  for (let depth = 0; i < text.length; i++) {
    if (text.startsWith(";;", i)) i = text.indexOf("\n", i);
    else if (text[i] === "(") depth++;
    else if (text[i] === ")" && --depth === 0) return i + 1;
  }
  throw new Error("relaxed.wat: unbalanced parentheses");
}

/** The s-expressions directly inside the first one that opens with `head`, as {start, end}. */
function* topLevel(text, head) {
  const open = text.indexOf(head);
  const end = close(text, open) - 1;
  for (let i = open + 1; i < end; i++) {
    if (text.startsWith(";;", i)) i = text.indexOf("\n", i);
    else if (text[i] === "(") {
      const e = close(text, i);
      yield { start: i, end: e };
      i = e - 1;
    }
  }
}

/** text with every `(op a b …)` replaced by make([a, b, …]) (operands rewritten first). */
function rewrite(text, op, make) {
  let result = "", from = 0;
  for (let at = text.indexOf(`(${op} `); at >= 0; at = text.indexOf(`(${op} `, from)) {
    const end = close(text, at);
    const inner = `(${text.slice(at + op.length + 2, end)}`;
    const args = [...topLevel(inner, "(")].map((e) => rewrite(inner.slice(e.start, e.end), op, make));
    result += text.slice(from, at) + make(args);
    from = end;
  }
  return result + text.slice(from);
}
