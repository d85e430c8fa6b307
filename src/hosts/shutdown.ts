// Graceful shutdown for the Node and Deno hosts: on SIGTERM or SIGINT stop accepting connections,
// let running generations finish for up to the grace period, then end the rest (each stream gets a
// final chunk and [DONE]), wait for the responses to go out, and exit 0.
import type { ModelHandle } from "../model.js";

export interface Drainable {
  /** Stop accepting connections; resolves when every open connection has closed. */
  close(): Promise<void>;
}

export async function drain(server: Drainable, handle: ModelHandle, graceMs: number, log: (line: string) => void = console.log): Promise<void> {
  log(`tinylm-edge: shutting down: running requests get up to ${graceMs} ms`);
  const closed = server.close();
  const engine = handle.model?.engine;
  const finished = engine ? engine.whenIdle() : Promise.resolve();
  const timedOut = await Promise.race([finished.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs))]);
  if (timedOut && engine) {
    log("tinylm-edge: grace period over: ending the remaining generations");
    engine.stop();
  }
  // The responses still have to be written; do not wait on a client that will not read them.
  await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
}
