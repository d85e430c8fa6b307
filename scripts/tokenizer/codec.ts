// Encode or decode through the runtime tokenizer for the Python scripts (one tokenizer for all).
//   echo "Once upon a time" | tsx scripts/tokenizer/codec.ts encode build/tokenizer-8k   → JSON ids
//   echo "[1, 2, 3]"        | tsx scripts/tokenizer/codec.ts decode build/tokenizer-8k   → text
import { loadTokenizer } from "./files.js";
import { runMain } from "./cli.js";

runMain(async () => {
  const [mode, dir] = process.argv.slice(2);
  if ((mode !== "encode" && mode !== "decode") || !dir) throw new Error("usage: codec.ts encode|decode TOKENIZER_DIR < input");
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const input = Buffer.concat(chunks).toString("utf8");
  const tok = loadTokenizer(dir);
  process.stdout.write(mode === "encode" ? JSON.stringify(tok.encode(input)) : tok.decode(JSON.parse(input)));
});
