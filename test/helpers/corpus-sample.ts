// Small, fixed samples of the shared corpus for tests (read-only, never copied into the repo).
import { existsSync } from "node:fs";
import { join } from "node:path";
import { listShards, normalizeText, readBooks } from "../../scripts/tokenizer/corpus.js";

export const CORPUS_DIR = join(import.meta.dirname, "../../../shared/data/corpus");
export const HAVE_CORPUS = existsSync(CORPUS_DIR);

/** The first `perShard` books of the first `shards` shards, normalised, cut to `maxChars` each. */
export async function sampleTexts(shards = 2, perShard = 1, maxChars = 200_000): Promise<string[]> {
  const texts: string[] = [];
  for (const shard of listShards(CORPUS_DIR).filter((_, i) => i % 7 === 0).slice(0, shards)) {
    let n = 0;
    for await (const book of readBooks(shard)) {
      texts.push(normalizeText(book.text).slice(0, maxChars));
      if (++n >= perShard) break;
    }
  }
  return texts;
}
