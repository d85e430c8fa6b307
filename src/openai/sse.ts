// Small helpers shared by the streaming endpoints.
import type { Context } from "hono";
import type { SSEStreamingApi } from "hono/streaming";
import { ApiError } from "./errors.js";

export function newId(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return `${prefix}-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** After the headers went out an error can only be reported in the stream: one error event, then end. */
export async function sseError(stream: SSEStreamingApi, err: unknown): Promise<void> {
  const api = err instanceof ApiError ? err : new ApiError(500, "The server had an error while generating", "server_error");
  if (!(err instanceof ApiError)) console.error("generation failed:", err);
  try {
    await stream.writeSSE({ data: JSON.stringify(api.toJSON()) });
  } catch {
    // client gone
  }
}

/** On Workers, work that outlives the response must be registered with waitUntil; elsewhere a no-op. */
export function keepAlive(c: Context, work: Promise<unknown>): void {
  const settled = work.catch(() => {}); // first: a rejection must never go unhandled
  try {
    c.executionCtx.waitUntil(settled);
  } catch {
    // no execution context (Node, Deno): reading c.executionCtx throws
  }
}
