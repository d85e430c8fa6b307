// npm run data:fetch against a local stand-in for Project Gutenberg (a catalog and two books on
// 127.0.0.1): resolution by author and title, licence cut, reference hashes, resume, clear errors.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fetchCorpus, fetchEvals, parseCsv, stripLicence, type BookEntry } from "../scripts/data/fetch-corpus.js";

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const TWAIN = "THE PRINCE AND THE PAUPER\n\nby Mark Twain\n\nI will set down a tale as it was told to me.";
const AUSTEN = "MANSFIELD PARK\n\nCHAPTER I\n\nAbout thirty years ago Miss Maria Ward, of Huntingdon, had the good luck.";
const gutenberg = (title: string, text: string) =>
  `\uFEFFThe Project Gutenberg eBook of ${title}\r\n\r\nThis ebook is for the use of anyone anywhere.\r\n\r\n` +
  `*** START OF THE PROJECT GUTENBERG EBOOK ${title.toUpperCase()} ***\r\n\r\n\r\n${text.replace(/\n/g, "\r\n")}\r\n\r\n\r\n` +
  `*** END OF THE PROJECT GUTENBERG EBOOK ${title.toUpperCase()} ***\r\n\r\nUpdated editions will replace the previous one.\r\n`;
const CATALOG = [
  "Text#,Type,Issued,Title,Language,Authors,Subjects,LoCC,Bookshelves",
  '1837,Text,2004-07-01,The Prince and the Pauper,en,"Twain, Mark, 1835-1910",Fiction,PS,"Best Books Ever Listings"',
  '141,Text,1994-06-01,Mansfield Park,en,"Austen, Jane, 1775-1817","England -- Fiction; ""Quoted"" subject",PR,',
  '999,Sound,2004-01-01,Mansfield Park,en,"Austen, Jane, 1775-1817",,,',
  '998,Text,2004-01-01,Mansfield Park,fr,"Austen, Jane, 1775-1817",,,',
].join("\n");

describe("npm run data:fetch (offline, against 127.0.0.1)", () => {
  let server: Server;
  let mirror: string;
  const hits = new Map<string, number>();
  beforeAll(async () => {
    server = createServer((req, res) => {
      hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1);
      const body = ({
        "/cache/epub/feeds/pg_catalog.csv": CATALOG,
        "/cache/epub/1837/pg1837.txt": gutenberg("The Prince and the Pauper", TWAIN),
        "/cache/epub/141/pg141.txt": gutenberg("Mansfield Park", AUSTEN + " (revised)"),
      } as Record<string, string>)[req.url!];
      expect(req.headers["user-agent"]).toMatch(/tinylm-edge/);
      res.writeHead(body === undefined ? 404 : 200, { "Content-Type": "text/plain; charset=utf-8" }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    mirror = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const books: BookEntry[] = [
    { shard: "general-000", author: "Twain, Mark", title: "The Prince and the Pauper", sha256: sha256(TWAIN) },
    { shard: "general-001", author: "Austen, Jane", title: "Mansfield Park", sha256: sha256(AUSTEN) },
  ];
  const quiet = { jobs: 2, delayMs: 1, log: () => {} };

  it("writes the shards in the corpus format, cut at the licence lines, and lists the book that differs", async () => {
    const out = mkdtempSync(join(tmpdir(), "corpus-"));
    const report = await fetchCorpus({ ...quiet, out, mirror, books });
    expect(report.matched).toBe(1);
    expect(report.differing).toEqual([{ author: "Austen, Jane", title: "Mansfield Park", ebook: 141 }]);
    const shard = gunzipSync(readFileSync(join(out, "general-000.jsonl.gz"))).toString("utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(shard).toEqual([{ id: createHash("sha1").update(TWAIN).digest("hex").slice(0, 12), author: "Twain, Mark", title: "The Prince and the Pauper", text: TWAIN }]);
    // Resumable: a second run reads its cache and asks the server for nothing.
    const before = [...hits.values()].reduce((a, b) => a + b);
    await fetchCorpus({ ...quiet, out, mirror, books });
    expect([...hits.values()].reduce((a, b) => a + b)).toBe(before);
  });

  it("a book missing from the catalog, or from the mirror, is an error naming it", async () => {
    const missing = [...books, { shard: "general-001", author: "Nobody, A.", title: "No Such Book", sha256: "0" }];
    await expect(fetchCorpus({ ...quiet, out: mkdtempSync(join(tmpdir(), "corpus-")), mirror, books: missing })).rejects.toThrow(/not in Gutenberg's catalog.*Nobody, A\., "No Such Book"/);
    const gone = `${CATALOG}\n7,Text,2000-01-01,Lost,en,"Gone, Al",,,`;
    const server2 = createServer((req, res) => res.writeHead(req.url!.endsWith(".csv") ? 200 : 404).end(req.url!.endsWith(".csv") ? gone : ""));
    await new Promise<void>((r) => server2.listen(0, "127.0.0.1", r));
    try {
      const mirror2 = `http://127.0.0.1:${(server2.address() as { port: number }).port}`;
      await expect(fetchCorpus({ ...quiet, out: mkdtempSync(join(tmpdir(), "corpus-")), mirror: mirror2, books: [{ shard: "x", author: "Gone, Al", title: "Lost", sha256: "0" }] }))
        .rejects.toThrow(/Gone, Al, "Lost" \(ebook 7\): .*HTTP 404/);
    } finally {
      await new Promise<void>((r) => server2.close(() => r()));
    }
  });

  it("parses quoted CSV fields and cuts only between the licence lines", () => {
    expect(parseCsv('a,"b, ""c""\nd",e\n1,2,3')).toEqual([["a", 'b, "c"\nd', "e"], ["1", "2", "3"]]);
    expect(stripLicence(gutenberg("X", "body\nlines"))).toBe("body\nlines");
    expect(() => stripLicence("no markers here")).toThrow(/START/);
  });

  it("the committed list names every book of the corpus with its reference hash", () => {
    const list = JSON.parse(readFileSync(join(import.meta.dirname, "../scripts/data/books.json"), "utf8")).books as BookEntry[];
    expect(list).toHaveLength(748);
    expect(list.every((b) => /^(stories|general)-\d{3}$/.test(b.shard) && b.author && b.title && /^[0-9a-f]{64}$/.test(b.sha256))).toBe(true);
  });

  it("fetches the eval sets, checks each against its reference hash, and names one that is missing", async () => {
    const piqa = '{"query": "q", "choices": ["a", "b"], "gold": 1}\n';
    const server2 = createServer((req, res) => {
      const body = ({ "/data/commonsense_reasoning/piqa.jsonl": piqa, "/data/world_knowledge/arc_easy.jsonl": "changed\n" } as Record<string, string>)[req.url!];
      res.writeHead(body === undefined ? 404 : 200).end(body);
    });
    await new Promise<void>((r) => server2.listen(0, "127.0.0.1", r));
    try {
      const source = `http://127.0.0.1:${(server2.address() as { port: number }).port}/data`;
      const out = mkdtempSync(join(tmpdir(), "evals-"));
      const sets = [
        { file: "piqa.jsonl", path: "commonsense_reasoning/piqa.jsonl", lines: 1, sha256: sha256(piqa) },
        { file: "arc_easy.jsonl", path: "world_knowledge/arc_easy.jsonl", lines: 1, sha256: sha256("original\n") },
      ];
      expect(await fetchEvals(out, source, sets, () => {})).toEqual(["arc_easy.jsonl"]);
      expect(readFileSync(join(out, "piqa.jsonl"), "utf8")).toBe(piqa);
      await expect(fetchEvals(out, source, [{ file: "lambada_openai.jsonl", path: "language_understanding/lambada_openai.jsonl", lines: 1, sha256: "0" }], () => {}))
        .rejects.toThrow(/lambada_openai\.jsonl: .*HTTP 404/);
    } finally {
      await new Promise<void>((r) => server2.close(() => r()));
    }
  });
});
