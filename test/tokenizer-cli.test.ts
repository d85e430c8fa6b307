// The corpus scripts' bad input: one clear error line naming the file, non-zero exit, nothing written.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { isValidationBook, normalizeText, readBooks } from "../scripts/tokenizer/corpus.js";

const tsx = join(import.meta.dirname, "../node_modules/.bin/tsx");
const run = (script: string, ...args: string[]) =>
  spawnSync(tsx, [join(import.meta.dirname, "../scripts/tokenizer", script), ...args], { encoding: "utf8" });

describe("corpus scripts: bad input", () => {
  const dir = mkdtempSync(join(tmpdir(), "tinylm-"));

  it("a missing corpus folder", () => {
    const r = run("encode-corpus.ts", "--corpus", join(dir, "nope"), "--out", join(dir, "out"));
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`error: ${join(dir, "nope")}: cannot read corpus folder (ENOENT)`);
    expect(existsSync(join(dir, "out"))).toBe(false);
  });

  it("an unreadable (not gzip) shard", () => {
    const corpus = join(dir, "corpus");
    mkdirSync(corpus);
    writeFileSync(join(corpus, "stories-000.jsonl.gz"), "this is not gzip");
    const r = run("encode-corpus.ts", "--corpus", corpus, "--tokenizer", "test/fixtures/tiny-model", "--out", join(dir, "out2"));
    expect(r.status).toBe(1);
    const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("error:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${join(corpus, "stories-000.jsonl.gz")}: unreadable corpus shard`);
    expect(existsSync(join(dir, "out2"))).toBe(false);
    expect(existsSync(join(dir, "out2.tmp"))).toBe(false);
  });

  it("a malformed tokenizer.json", () => {
    const tok = join(dir, "badtok");
    mkdirSync(tok);
    writeFileSync(join(tok, "tokenizer.json"), '{"model": {"type": "BPE"');
    const r = run("codec.ts", "encode", tok);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(new RegExp(`^error: ${join(tok, "tokenizer.json")}: not valid JSON`));
  });
});

describe("corpus reading and normalisation", () => {
  it("un-wraps prose, keeps paragraph breaks and verse, normalises CRLF", () => {
    const prose = "It was the best of times, it was the worst of times, it was the age of\r\nwisdom, it was the age of foolishness.";
    const verse = "  Twinkle, twinkle, little star,\n  How I wonder what you are!";
    const text = `${prose}\r\n\r\n\r\n${verse}\n\nThe end.`;
    expect(normalizeText(text)).toBe(
      "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness.\n\n" +
        `${verse}\n\nThe end.\n`,
    );
  });

  it("streams books from a shard and splits by whole book with a fixed seed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tinylm-"));
    const books = Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: `book${i}`, title: "T", author: "A", text: `Text ${i}` }));
    writeFileSync(join(dir, "general-000.jsonl.gz"), gzipSync(books.join("\n")));
    const read = [];
    for await (const b of readBooks(join(dir, "general-000.jsonl.gz"))) read.push(b);
    expect(read.map((b) => b.id)).toEqual(books.map((_, i) => `book${i}`));
    expect(read[0].source).toBe("general");
    const val = read.filter((b) => isValidationBook(b.id)).length;
    expect(val).toBeGreaterThan(2);
    expect(val).toBeLessThan(20);
    expect(read.map((b) => isValidationBook(b.id))).toEqual(read.map((b) => isValidationBook(b.id)));
  });
});
