// Shared command-line plumbing for the corpus scripts: flags, one-line fatal errors, progress bars.

/**
 * `--key value`, `--key=value` and bare `--key` flags, and positionals. With a usage text, `--help`
 * (or `-h`) prints it and exits before the script touches anything.
 */
export function parseFlags(argv: string[], usage?: string): { flags: Map<string, string>; positional: string[] } {
  if (usage && (argv.includes("--help") || argv.includes("-h"))) {
    console.log(usage.trim());
    process.exit(0);
  }
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg.startsWith("--")) {
      const [key, inline] = arg.slice(2).split("=", 2);
      const value = inline ?? (argv[i + 1] && !argv[i + 1].startsWith("--") ? argv[++i] : "true");
      flags.set(key, value);
    } else positional.push(arg);
  }
  return { flags, positional };
}

/** Run a script's main; any error becomes one line on stderr and exit code 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: Error) => {
    process.stderr.write(`error: ${err.message}\n`);
    process.exit(1);
  });
}

const MB = 1e6;

/** A one-line progress bar on stderr: done/total, rate and ETA. */
export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = "MB",
  ) {}

  update(done: number, extra = ""): void {
    const now = performance.now();
    if (now - this.lastDraw < (process.stderr.isTTY ? 250 : 5000) && done < this.total) return;
    this.lastDraw = now;
    const seconds = (now - this.start) / 1000;
    const rate = done / Math.max(seconds, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const frac = Math.min(1, done / this.total);
    const bar = "#".repeat(Math.round(frac * 24)).padEnd(24, ".");
    const line = `${this.label} [${bar}] ${(done / MB).toFixed(1)}/${(this.total / MB).toFixed(1)} ${this.unit}` +
      ` ${(rate / MB).toFixed(2)} ${this.unit}/s ETA ${formatSeconds(eta)} ${extra}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}` : `${line}\n`);
  }

  done(extra = ""): void {
    this.lastDraw = 0;
    this.update(this.total, extra);
    if (process.stderr.isTTY) process.stderr.write("\n");
  }
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return "--";
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${Math.round(s % 60).toString().padStart(2, "0")}s` : `${s.toFixed(0)}s`;
}
