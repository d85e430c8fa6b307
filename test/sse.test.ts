// The event stream the streaming endpoints write (src/openai/sse.ts): framing, backpressure, abort.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { chunkWriter, sseStream, type EventStream } from "../src/openai/sse.js";

function appWith(write: (stream: EventStream) => Promise<void>) {
  const app = new Hono();
  app.get("/", (c) => sseStream(c, write));
  return app;
}

describe("sseStream", () => {
  it("frames each event as one data: line and sends streamSSE's headers", async () => {
    const res = await appWith(async (s) => {
      await s.writeSSE({ data: '{"a":"x\\ny"}' });
      await s.writeSSE({ data: "[DONE]" });
    }).request("/");
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(await res.text()).toBe('data: {"a":"x\\ny"}\n\ndata: [DONE]\n\n');
  });

  it("waits for the client once 64 events are queued, and goes on as it reads", async () => {
    let written = 0;
    let finished = false;
    const res = await appWith(async (s) => {
      for (let i = 0; i < 200; i++) {
        await s.writeSSE({ data: String(i) });
        written++;
      }
      finished = true;
    }).request("/");
    await new Promise((r) => setTimeout(r, 50));
    expect(written).toBe(63); // 64 events queued, and the write that filled the queue waits: nothing has been read
    const text = await res.text();
    expect(finished).toBe(true);
    expect(text.split("\n\n").filter(Boolean)).toEqual(Array.from({ length: 200 }, (_, i) => `data: ${i}`));
  });

  it("tells onAbort when the client goes away, and later writes are dropped", async () => {
    let aborted = 0;
    let wrote = false;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const res = await appWith(async (s) => {
      s.onAbort(() => aborted++);
      await s.writeSSE({ data: "first" });
      await gate;
      await s.writeSSE({ data: "after the client left" });
      wrote = true;
    }).request("/");
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("data: first\n\n");
    await reader.cancel();
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(aborted).toBe(1);
    expect(wrote).toBe(true);
  });
});

describe("chunkWriter", () => {
  it("writes what JSON.stringify({ ...base, choices: [choice] }) writes", () => {
    const base = { id: "cmpl-1", object: "text_completion", created: 1, model: "m \"quoted\"" };
    const choice = { text: "a\nb\u2028", index: 0, logprobs: null, finish_reason: null };
    expect(chunkWriter(base)(choice)).toBe(JSON.stringify({ ...base, choices: [choice] }));
    expect(chunkWriter({})(choice)).toBe(JSON.stringify({ choices: [choice] }));
  });
});
