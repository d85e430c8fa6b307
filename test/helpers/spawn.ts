// Start a host (workerd through wrangler dev, or Deno) as a child process on a free loopback port and
// wait until /health says the model is loaded.
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import type { RunningServer } from "./server.js";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

/** Waits for /health to answer 200 (or, with `anyStatus`, to answer at all). */
export async function spawnHost(command: string, args: string[], env: Record<string, string>, port: number, timeoutMs = 90_000, anyStatus = false): Promise<RunningServer> {
  const child: ChildProcess = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let log = "";
  child.stdout!.on("data", (d) => (log += d));
  child.stderr!.on("data", (d) => (log += d));
  const baseURL = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (child.exitCode !== null) throw new Error(`${command} exited with ${child.exitCode}:\n${log}`);
    try {
      const res = await fetch(`${baseURL}/health`);
      if (res.status === 200 || anyStatus) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, "SIGKILL");
      throw new Error(`${command} did not become healthy in ${timeoutMs} ms:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return {
    baseURL,
    child,
    log: () => log,
    close: async () => {
      try {
        process.kill(-child.pid!, "SIGTERM");
      } catch {
        // already gone
      }
      await new Promise((r) => setTimeout(r, 200));
    },
  };
}
