// workerd itself (no wrangler in between) serving our Worker as `wrangler deploy` would upload it,
// for the benches that read the process from /proc: cold start (bench/cold-start.ts) and the memory
// a model takes in an isolate (bench/workerd-fit.ts).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const WRANGLER_ENV = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true", NO_UPDATE_NOTIFIER: "1" };

/** workerd's binary itself (npm's bin/workerd is a Node launcher: its process would not be workerd's). */
export const WORKERD = createRequire(import.meta.url).resolve(`@cloudflare/workerd-linux-${process.arch === "arm64" ? "arm64" : "64"}/bin/workerd`);

/**
 * The Worker as wrangler would upload it (`wrangler deploy --dry-run --outdir`), and a workerd
 * config serving it on `port` with the model folder as ASSETS (a disk service: what the worker
 * reads through the binding) and the config's [vars], `vars` overriding them. Returns the config file.
 */
export function workerdConfig(config: string, model: string, vars: Record<string, string> = {}): (port: number) => string {
  const out = mkdtempSync(join(tmpdir(), "workerd-"));
  execFileSync(join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "-c", config, "--dry-run", "--outdir", out],
    { cwd: ROOT, env: { ...process.env, ...WRANGLER_ENV }, stdio: "ignore" });
  const toml = readFileSync(join(ROOT, config), "utf8");
  const fromToml = [...(toml.split(/^\[vars\]$/m)[1] ?? "").split(/^\[/m)[0].matchAll(/^(\w+) = "(.*)"$/gm)].map(([, k, v]) => [k, v]);
  const date = /^compatibility_date = "(.*)"$/m.exec(toml)![1];
  const files = readdirSync(out);
  const main = files.find((f) => f.endsWith(".js"))!;
  const modules = [`(name = "${main}", esModule = embed "${main}")`, ...files.filter((f) => f.endsWith(".wasm")).map((f) => `(name = "${f}", wasm = embed "${f}")`)];
  const bindings = [`(name = "ASSETS", service = "assets")`,
    ...Object.entries({ ...Object.fromEntries(fromToml), ...vars }).map(([k, v]) => `(name = "${k}", text = ${JSON.stringify(v)})`)];
  return (port) => {
    writeFileSync(join(out, "config.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker), (name = "assets", disk = (path = ${JSON.stringify(resolve(model))}, writable = false))],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${modules.join(", ")}],
  compatibilityDate = "${date}",
  compatibilityFlags = ["nodejs_compat"],
  bindings = [${bindings.join(", ")}],
);
`);
    return join(out, "config.capnp");
  };
}
