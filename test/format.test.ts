// Formatting that every editor agrees on, checked rather than hoped for: source files end with a
// newline, have no trailing whitespace, no tab indentation and no CRLF line endings.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const SOURCE = /\.(ts|mjs|c|h|py|wat|sh|toml|md)$/;

describe("formatting", () => {
  it("source files: final newline, no trailing whitespace, no tabs, LF line endings", () => {
    const files = execFileSync("git", ["ls-files"], { cwd: ROOT, encoding: "utf8" }).split("\n")
      .filter((f) => SOURCE.test(f) && !f.startsWith("test/fixtures/") && !f.startsWith("docs/ablations/"));
    const problems: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(ROOT, f), "utf8");
      if (text.length && !text.endsWith("\n")) problems.push(`${f}: no final newline`);
      if (text.includes("\r\n")) problems.push(`${f}: CRLF line endings`);
      text.split("\n").forEach((line, i) => {
        if (/[ \t]+$/.test(line) && !f.endsWith(".md")) problems.push(`${f}:${i + 1}: trailing whitespace`);
        if (/^\t/.test(line) && !f.endsWith(".md")) problems.push(`${f}:${i + 1}: tab indentation`);
      });
    }
    expect(problems).toEqual([]);
  });
});
