// The shipped model's loss curve for its model card: training and held-out loss against tokens, from
// the GPU run's logs (docs/ablations/run2/inherit-taylor: the shipped student; run1/scratch: the same
// shape, data and schedule from scratch), into model/loss-curve.svg.
//   npx tsx scripts/loss-curve.ts [--out FILE]
import { readFileSync, writeFileSync } from "node:fs";
import { lineChart } from "../bench/charts.js";
import { parseFlags } from "./tokenizer/cli.js";

const USAGE = `
usage: npx tsx scripts/loss-curve.ts [--out FILE]
The shipped model's loss curve (model card) from docs/ablations' logs (default out: model/loss-curve.svg).
`;

interface LogLine {
  tokens: number;
  loss?: number;
  val_loss?: number;
}

const read = (file: string): LogLine[] => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
const series = (name: string, lines: LogLine[], key: "loss" | "val_loss") => ({
  name,
  points: lines.filter((l) => typeof l[key] === "number").map((l) => [Math.round(l.tokens / 1e5) / 10, l[key]!] as [number, number]),
});

if (import.meta.url === `file://${process.argv[1]}`) {
  const { flags } = parseFlags(process.argv.slice(2), USAGE);
  const shipped = read("docs/ablations/run2/inherit-taylor/log.jsonl");
  const scratch = read("docs/ablations/run1/scratch/log.jsonl");
  const svg = lineChart("tinylm-edge-14m: loss (nats/token) by training tokens (millions)", "million tokens", "loss", [
    series("inherited: training", shipped, "loss"),
    series("inherited: held-out", shipped, "val_loss"),
    series("from scratch: training", scratch, "loss"),
    series("from scratch: held-out", scratch, "val_loss"),
  ]);
  const out = flags.get("out") ?? "model/loss-curve.svg";
  writeFileSync(out, svg);
  console.log(out);
}
