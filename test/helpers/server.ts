// Start the Node host on a free loopback port with the fixture model.
import { startNodeServer } from "../../src/hosts/node.js";
import { FIXTURE_DIR } from "./fixture.js";

export interface RunningServer {
  baseURL: string;
  close(): Promise<void>;
  /** For hosts started as child processes. */
  child?: import("node:child_process").ChildProcess;
  log?: () => string;
}

export async function startFixtureServer(env: Record<string, string> = {}): Promise<RunningServer> {
  const { server, port, loaded } = await startNodeServer({ MODEL_DIR: FIXTURE_DIR, PORT: "0", HOST: "127.0.0.1", LOG: "quiet", ...env });
  await loaded;
  return {
    baseURL: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
