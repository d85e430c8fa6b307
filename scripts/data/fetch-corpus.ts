// npm run data:fetch: the training corpus from Project Gutenberg into build/corpus/, in the corpus
// format (JSONL.gz shards of {id, author, title, text}), the same books in the same shards as the
// project's reference copy. The book list (scripts/data/books.json: shard, author, title, sha256 of
// the text) is committed; ebook numbers are resolved at fetch time from Gutenberg's catalog
// (pg_catalog.csv) by author and title; the licence header and footer are cut at the
// "*** START OF" / "*** END OF" lines. Gutenberg revises texts: a book whose text differs from the
// reference hash is used and listed; a book that cannot be found or fetched is an error naming it.
// Parallel, resumable (downloads are kept in build/corpus/.cache), polite (a delay per request and a
// User-Agent), with a progress bar.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { listShards, readBooks } from "../tokenizer/corpus.js";
import { parseFlags, Progress, runMain } from "../tokenizer/cli.js";

const USAGE = `
usage: npm run data:fetch -- [--out DIR] [--mirror URL] [--books FILE] [--jobs N] [--delay-ms N]
       npm run data:fetch -- --evals [--out DIR] [--evals-source URL]
       npm run data:fetch -- --make-list CORPUS_DIR [--books FILE]
Download the training corpus from Project Gutenberg (about 210 MB of text, 748 books).
  --out DIR       where the shards go (default: build/corpus)
  --mirror URL    a Gutenberg mirror: catalog at URL/cache/epub/feeds/pg_catalog.csv, books at
                  URL/cache/epub/N/pgN.txt (default: https://www.gutenberg.org)
  --books FILE    the book list (default: scripts/data/books.json)
  --jobs N        downloads at once (default: 4)
  --delay-ms N    pause before each request, per job (default: 500)
  --make-list DIR write the book list from a corpus folder in this format (maintainers)
  --evals         the zero-shot eval sets instead (default out: build/eval-data), from llm-foundry's
                  local eval data (--evals-source: a folder URL holding its scripts/eval/local_data tree;
                  default https://raw.githubusercontent.com/mosaicml/llm-foundry/main/scripts/eval/local_data)
`;

export interface EvalSet {
  file: string;
  path: string;
  lines: number;
  sha256: string;
}

/**
 * The zero-shot eval sets into `out`, each checked against the reference hash: a set that differs
 * (upstream changed it) is written and listed; one that cannot be fetched is an error naming it.
 */
export async function fetchEvals(out: string, source: string, sets: EvalSet[], log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<string[]> {
  mkdirSync(out, { recursive: true });
  const differing: string[] = [];
  for (const set of sets) {
    const text = await get(`${source}/${set.path}`).catch((err: Error) => {
      throw new Error(`${set.file}: ${err.message}`);
    });
    writeFileSync(join(out, set.file), text);
    if (sha("sha256", text) !== set.sha256) differing.push(set.file);
  }
  log(`${sets.length - differing.length} of ${sets.length} eval sets match the reference; written to ${out}`);
  for (const f of differing) log(`  differs from the reference (upstream changed it; used as fetched): ${f}`);
  return differing;
}

export interface BookEntry {
  shard: string;
  author: string;
  title: string;
  sha256: string;
}

export interface FetchOptions {
  out: string;
  mirror: string;
  books: BookEntry[];
  jobs: number;
  delayMs: number;
  log?: (line: string) => void;
}

export interface FetchReport {
  matched: number;
  differing: { author: string; title: string; ebook: number }[];
  shards: string[];
}

const USER_AGENT = "tinylm-edge data:fetch (a research pipeline; polite, resumable)";

/** RFC 4180 CSV (quoted fields may hold commas, quotes and newlines) → rows of fields. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") row.push(field), (field = "");
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field), rows.push(row), (row = []), (field = "");
    } else field += c;
  }
  if (field || row.length) row.push(field), rows.push(row);
  return rows;
}

const normalize = (s: string) => s.toLowerCase().replace(/[\s\u00a0]+/g, " ").replace(/[^\p{L}\p{N} ]/gu, "").trim();
/** "Twain, Mark, 1835-1910" → "twain mark": authors without their dates. */
const authorKey = (s: string) => normalize(s.replace(/,?\s*(\d{3,4}\??|BCE?)?\s*-\s*(\d{3,4}\??)?\s*$/, "").replace(/\[.*?\]|\(.*?\)/g, ""));

/** Ebook numbers by "author|title" from pg_catalog.csv (English texts only). */
function catalogIndex(csv: string): Map<string, number> {
  const [header, ...rows] = parseCsv(csv);
  const col = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`pg_catalog.csv: no column "${name}" (columns: ${header.join(", ")})`);
    return i;
  };
  const [num, type, title, language, authors] = ["Text#", "Type", "Title", "Language", "Authors"].map(col);
  const index = new Map<string, number>();
  for (const r of rows) {
    if (r[type] !== "Text" || !(r[language] ?? "").split(/;\s*/).includes("en")) continue;
    for (const author of (r[authors] ?? "").split(/;\s*/)) {
      const key = `${authorKey(author)}|${normalize(r[title] ?? "")}`;
      if (!index.has(key)) index.set(key, Number(r[num]));
    }
  }
  return index;
}

/** The text between Gutenberg's START and END lines, with \n line endings. */
export function stripLicence(raw: string): string {
  const text = raw.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  const start = /^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$/im.exec(text);
  const end = /^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$/im.exec(text);
  if (!start || !end || end.index < start.index) throw new Error("no *** START / *** END OF THE PROJECT GUTENBERG EBOOK lines");
  return text.slice(start.index + start[0].length, end.index).trim();
}

const sha = (alg: string, text: string) => createHash(alg).update(text).digest("hex");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function get(url: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, { headers: { "User-Agent": USER_AGENT } }).catch((err: Error) => err);
    if (!(res instanceof Error) && res.ok) return res.text();
    const why = res instanceof Error ? res.message : `HTTP ${res.status}`;
    if (attempt >= 3 || (!(res instanceof Error) && res.status === 404)) throw new Error(`${url}: ${why}`);
    await sleep(1000 * attempt);
  }
}

export async function fetchCorpus(opts: FetchOptions): Promise<FetchReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const cache = join(opts.out, ".cache");
  mkdirSync(cache, { recursive: true });
  const catalogFile = join(cache, "pg_catalog.csv");
  if (!existsSync(catalogFile)) writeFileSync(catalogFile, await get(`${opts.mirror}/cache/epub/feeds/pg_catalog.csv`));
  const index = catalogIndex(readFileSync(catalogFile, "utf8"));
  const ebooks = opts.books.map((b) => index.get(`${authorKey(b.author)}|${normalize(b.title)}`));
  const unknown = opts.books.filter((_, i) => ebooks[i] === undefined);
  if (unknown.length) {
    throw new Error(`not in Gutenberg's catalog by author and title (${unknown.length}): ${unknown.slice(0, 10).map((b) => `${b.author}, "${b.title}"`).join("; ")}${unknown.length > 10 ? "; …" : ""}`);
  }
  const texts: string[] = new Array(opts.books.length);
  const failures: string[] = [];
  const progress = new Progress("fetch", opts.books.length * 1e6, "books"); // Progress counts in millions
  let next = 0, done = 0;
  await Promise.all(Array.from({ length: Math.max(1, opts.jobs) }, async () => {
    while (next < opts.books.length) {
      const i = next++;
      const n = ebooks[i]!;
      const file = join(cache, `pg${n}.txt`);
      try {
        if (!existsSync(file)) {
          await sleep(opts.delayMs);
          writeFileSync(file, await get(`${opts.mirror}/cache/epub/${n}/pg${n}.txt`));
        }
        texts[i] = stripLicence(readFileSync(file, "utf8"));
      } catch (err) {
        failures.push(`${opts.books[i].author}, "${opts.books[i].title}" (ebook ${n}): ${(err as Error).message}`);
      }
      progress.update(++done * 1e6);
    }
  }));
  progress.done();
  if (failures.length) throw new Error(`could not fetch ${failures.length} book(s): ${failures.join("; ")}`);
  const differing = opts.books.flatMap((b, i) => (sha("sha256", texts[i]) === b.sha256 ? [] : [{ author: b.author, title: b.title, ebook: ebooks[i]! }]));
  const shards = [...new Set(opts.books.map((b) => b.shard))];
  for (const shard of shards) {
    const lines = opts.books.flatMap((b, i) => (b.shard === shard ? [JSON.stringify({ id: sha("sha1", texts[i]).slice(0, 12), author: b.author, title: b.title, text: texts[i] })] : []));
    writeFileSync(join(opts.out, `${shard}.jsonl.gz`), gzipSync(lines.join("\n") + "\n"));
  }
  log(`${opts.books.length - differing.length} of ${opts.books.length} books match the reference text; ${shards.length} shards in ${opts.out}`);
  for (const d of differing) log(`  differs from the reference (Gutenberg revised it; used as fetched): ${d.author}, "${d.title}" (ebook ${d.ebook})`);
  return { matched: opts.books.length - differing.length, differing, shards };
}

/** The book list from a corpus folder (maintainers: run on the reference copy). */
async function makeList(corpusDir: string): Promise<BookEntry[]> {
  const books: BookEntry[] = [];
  for (const file of listShards(corpusDir)) {
    const shard = file.split("/").pop()!.replace(/\.jsonl\.gz$/, "");
    for await (const b of readBooks(file)) books.push({ shard, author: b.author, title: b.title, sha256: sha("sha256", b.text) });
  }
  return books;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runMain(async () => {
    const { flags } = parseFlags(process.argv.slice(2), USAGE);
    if (flags.has("evals")) {
      const sets = JSON.parse(readFileSync(join(import.meta.dirname, "evals.json"), "utf8")).sets as EvalSet[];
      await fetchEvals(flags.get("out") ?? "build/eval-data",
        (flags.get("evals-source") ?? "https://raw.githubusercontent.com/mosaicml/llm-foundry/main/scripts/eval/local_data").replace(/\/$/, ""), sets);
      return;
    }
    const listFile = flags.get("books") ?? join(import.meta.dirname, "books.json");
    if (flags.has("make-list")) {
      const books = await makeList(flags.get("make-list")!);
      const lines = books.map((b) => `  ${JSON.stringify(b)}`).join(",\n");
      writeFileSync(listFile, `{"source": "Project Gutenberg (public domain in the USA)", "books": [\n${lines}\n]}\n`);
      console.log(`${listFile}: ${books.length} books`);
      return;
    }
    const report = await fetchCorpus({
      out: flags.get("out") ?? "build/corpus",
      mirror: (flags.get("mirror") ?? "https://www.gutenberg.org").replace(/\/$/, ""),
      books: JSON.parse(readFileSync(listFile, "utf8")).books,
      jobs: Number(flags.get("jobs") ?? 4),
      delayMs: Number(flags.get("delay-ms") ?? 500),
    });
    if (report.differing.length) console.log(`${report.differing.length} book(s) differ from the reference text (listed above)`);
  });
}
