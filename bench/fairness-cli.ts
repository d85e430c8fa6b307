// The victim rows of `npm run bench` against a server that is already running (for A/B runs of two
// builds): tsx bench/fairness-cli.ts URL [rounds]. Prints one JSON line per attack and round.
import { ATTACKS, fairness } from "./load.js";

const [url, rounds = "1"] = process.argv.slice(2);
if (!url || url === "--help") {
  console.log("usage: tsx bench/fairness-cli.ts URL [rounds]   (a tinylm-edge server on loopback; prints JSON lines)");
  process.exit(url ? 0 : 2);
}
const model = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data[0].id;
for (let r = 0; r < Number(rounds); r++) {
  for (const attack of ATTACKS) console.log(JSON.stringify({ round: r + 1, ...(await fairness(url, model, attack)) }));
}
