// Small, fixed samples of public-domain books for tests: excerpts of four Project Gutenberg books in
// the corpus format (JSONL.gz, licence header and footer removed), kept in the repository so the
// tests need nothing outside it.
import { join } from "node:path";
import { listShards, normalizeText, readBooks } from "../../scripts/tokenizer/corpus.js";

export const CORPUS_DIR = join(import.meta.dirname, "../fixtures/corpus");

/** The first `perShard` books of the first `shards` shards, normalised, cut to `maxChars` each. */
export async function sampleTexts(shards = 2, perShard = 1, maxChars = 200_000): Promise<string[]> {
  const texts: string[] = [];
  for (const shard of listShards(CORPUS_DIR).slice(0, shards)) {
    let n = 0;
    for await (const book of readBooks(shard)) {
      texts.push(normalizeText(book.text).slice(0, maxChars));
      if (++n >= perShard) break;
    }
  }
  return texts;
}
