// No dead exports: every exported function or constant in src/, scripts/ and bench/ is used by some
// other file (types may be exported for the signatures they describe). A textual check: a name that
// appears in no other tracked file is unused.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");

describe("exports", () => {
  it("every exported function and constant is used outside its file", () => {
    const files = execFileSync("git", ["ls-files", "src", "scripts", "bench", "test", "bin"], { cwd: ROOT, encoding: "utf8" })
      .split("\n").filter((f) => /\.(ts|mjs)$/.test(f));
    const text = new Map(files.map((f) => [f, readFileSync(join(ROOT, f), "utf8")]));
    const unused: string[] = [];
    for (const [file, src] of text) {
      if (file.startsWith("test/")) continue;
      for (const [, name] of src.matchAll(/^export (?:async )?(?:function\*?|const|let) (\w+)/gm)) {
        const word = new RegExp(`\\b${name}\\b`);
        if (![...text].some(([other, s]) => other !== file && word.test(s))) unused.push(`${file}: ${name}`);
      }
    }
    expect(unused).toEqual([]);
  });
});
