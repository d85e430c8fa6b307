// The host-agnostic API suite: one list of cases, run against Node, workerd and Deno servers.
import OpenAI from "openai";
import { zodResponseFormat, zodTextFormat } from "openai/helpers/zod";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { ChatOpenAI } from "@langchain/openai";
import { generateText, Output } from "ai";
import { z } from "zod";
import { expect, it } from "vitest";

export const MODEL = "tinylm-fixture";

async function sse(res: Response): Promise<unknown[]> {
  const text = await res.text();
  const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
  expect(events.at(-1)).toBe("[DONE]");
  return events.slice(0, -1).map((e) => JSON.parse(e));
}

export function apiCases(base: () => string) {
  const client = () => new OpenAI({ baseURL: `${base()}/v1`, apiKey: "unused", maxRetries: 0 });
  const post = (path: string, body: unknown) =>
    fetch(`${base()}${path}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) });

  it("lists the model", async () => {
    const models = await client().models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
  });

  it("completes a prompt (non-streaming) with usage", async () => {
    const r = await client().completions.create({ model: MODEL, prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
    expect(r.object).toBe("text_completion");
    expect(r.choices[0].finish_reason).toMatch(/stop|length/);
    expect(r.usage!.prompt_tokens).toBe(4);
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(8);
  });

  it("streams completion chunks that add up to the non-streamed text", async () => {
    const params = { model: MODEL, prompt: "The king said", max_tokens: 12, temperature: 0.9, seed: 7 };
    const whole = await client().completions.create(params);
    const stream = await client().completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(usage).toEqual(whole.usage);
  });

  it("answers chat, streaming with a role chunk first", async () => {
    const messages = [{ role: "user" as const, content: "Tell me a story." }];
    const r = await client().chat.completions.create({ model: MODEL, messages, max_tokens: 6, temperature: 0 });
    expect(r.choices[0].message.role).toBe("assistant");
    const stream = await client().chat.completions.create({ model: MODEL, messages, max_tokens: 6, temperature: 0, stream: true });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe(r.choices[0].message.content);
    expect(chunks.at(-1)!.choices[0].finish_reason).toBe(r.choices[0].finish_reason);
  });

  it("never emits a stop string, streamed or not", async () => {
    const params = { model: MODEL, prompt: "It was a dark and stormy night", max_tokens: 24, temperature: 0 };
    const free = (await client().completions.create(params)).choices[0].text;
    const stop = free.slice(Math.floor(free.length / 2), Math.floor(free.length / 2) + 3);
    const cut = free.indexOf(stop);
    const stopped = await client().completions.create({ ...params, stop: [stop] });
    expect(stopped.choices[0].text).toBe(free.slice(0, cut));
    expect(stopped.choices[0].finish_reason).toBe("stop");
    const res = await post("/v1/completions", { ...params, stop, stream: true });
    const events = (await sse(res)) as { choices: { text: string }[] }[];
    const texts = events.map((e) => e.choices[0].text);
    expect(texts.join("")).toBe(free.slice(0, cut));
    expect(texts.some((t) => t.includes(stop[0]) && !free.slice(0, cut).includes(t))).toBe(false);
  });

  it("is reproducible for equal seeds", async () => {
    const params = { model: MODEL, prompt: "She opened the door", max_tokens: 10, temperature: 1, seed: 1234 };
    const a = await client().completions.create(params);
    const b = await client().completions.create(params);
    expect(a.choices[0].text).toBe(b.choices[0].text);
  });

  it("reports logprobs and echoes the prompt", async () => {
    const r = await client().completions.create({ model: MODEL, prompt: "A cat", max_tokens: 3, temperature: 0, logprobs: 2, echo: true });
    const lp = r.choices[0].logprobs!;
    expect(r.choices[0].text.startsWith("A cat")).toBe(true);
    expect(lp.tokens!.length).toBe(2 + 3);
    expect(lp.token_logprobs![0]).toBeNull();
    expect(lp.token_logprobs!.slice(1).every((x) => x! <= 0)).toBe(true);
    expect(Object.keys(lp.top_logprobs![2]!).length).toBe(2);
  });

  it("returns OpenAI errors through the official client", async () => {
    await expect(client().completions.create({ model: MODEL, prompt: "x", temperature: 5 })).rejects.toMatchObject({ status: 400, param: "temperature", type: "invalid_request_error" });
    await expect(client().completions.create({ model: "gpt-9", prompt: "x" })).rejects.toMatchObject({ status: 404, code: "model_not_found" });
    await expect(client().completions.create({ model: MODEL, prompt: "x ".repeat(300), max_tokens: 100 })).rejects.toMatchObject({ status: 400, code: "context_length_exceeded" });
    await expect(client().chat.completions.create({ model: MODEL, messages: [] })).rejects.toMatchObject({ status: 400, param: "messages" });
  });

  it("rejects malformed bodies with 4xx error objects", async () => {
    const cases: [unknown, number, string | null][] = [
      ['{"model": "tinylm-fixture", "prompt": "x"', 400, null],
      [{ model: MODEL, prompt: 12 }, 400, "prompt"],
      [{ model: MODEL, prompt: "x", max_tokens: -1 }, 400, "max_tokens"],
      [{ model: MODEL, prompt: "x", max_tokens: 1e12 }, 400, "max_tokens"],
      [{ model: MODEL, prompt: "x", n: 1000 }, 400, "n"],
      [{ model: MODEL, prompt: "x", stop: ["a", "b", "c", "d", "e"] }, 400, "stop"],
      [{ model: MODEL, prompt: "x", logit_bias: { "99999999": 1 } }, 400, "logit_bias"],
      [{ model: MODEL, prompt: "x", unknown_field: true }, 400, "unknown_field"],
      [{ model: MODEL, prompt: [99999999] }, 400, "prompt"],
      [[1, 2, 3], 400, null],
    ];
    for (const [body, status, param] of cases) {
      const res = await post("/v1/completions", body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const json = (await res.json()) as { error: { message: string; type: string; param: string | null } };
      expect(json.error.type).toBe("invalid_request_error");
      expect(json.error.message.length).toBeGreaterThan(0);
      if (param) expect(json.error.param).toBe(param);
    }
    const invalidUtf8 = await fetch(`${base()}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) });
    expect(invalidUtf8.status).toBe(400);
    const huge = await post("/v1/completions", JSON.stringify({ model: MODEL, prompt: "a".repeat(10_000_000) }));
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as { error: { type: string } }).error.type).toBe("invalid_request_error");
    const missing = await fetch(`${base()}/v2/nothing`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: object }).error).toBeDefined();
  });

  it("tokenizes and detokenizes", async () => {
    const { tokens } = (await (await post("/tokenize", { content: "Once upon a time, 👑" })).json()) as { tokens: number[] };
    expect(tokens.slice(0, 4).length).toBe(4);
    const { content } = (await (await post("/detokenize", { tokens })).json()) as { content: string };
    expect(content).toBe("Once upon a time, 👑");
  });

  it("serves health, metrics and the playground page", async () => {
    expect((await fetch(`${base()}/health`)).status).toBe(200);
    const metrics = await (await fetch(`${base()}/metrics`)).text();
    expect(metrics).toContain("tinylm_requests_total");
    expect(metrics).toContain("tinylm_queue_depth 0");
    const page = await fetch(`${base()}/`);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(page.headers.get("content-security-policy")).toMatch(/default-src 'none'; script-src 'sha256-/);
    expect(await page.text()).toContain("tinylm-edge playground");
  });

  it("carries an SDK chat loop: three turns, each reply sent back as it came, streamed or not", async () => {
    for (const stream of [false, true]) {
      const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "system", content: "You tell short stories." }];
      for (const turn of ["Tell me a story.", "And then?", "How does it end?"]) {
        messages.push({ role: "user", content: turn });
        let reply: OpenAI.ChatCompletionMessageParam;
        if (stream) {
          let content = "";
          for await (const chunk of await client().chat.completions.create({ model: MODEL, messages, max_tokens: 6, stream: true, store: false })) {
            content += chunk.choices[0]?.delta.content ?? "";
          }
          reply = { role: "assistant", content };
        } else {
          const r = await client().chat.completions.create({ model: MODEL, messages, max_tokens: 6, metadata: { session: "t" }, store: false });
          reply = r.choices[0].message as OpenAI.ChatCompletionMessageParam; // with refusal: null, annotations: []
        }
        messages.push(reply);
      }
      expect(messages).toHaveLength(7);
    }
  });

  it("accepts every message shape the SDKs send, refuses non-text parts by name, and still refuses unknown fields", async () => {
    const messages = [
      { role: "developer", content: [{ type: "text", text: "Be brief." }] },
      { role: "user", content: [{ type: "text", text: "Weather?" }], name: "ann" },
      { role: "assistant", content: null, refusal: null, audio: null, annotations: [], tool_calls: [{ id: "call_1", type: "function", function: { name: "weather", arguments: "{\"city\":\"Oslo\"}" } }] },
      { role: "tool", tool_call_id: "call_1", content: "Sunny" },
      { role: "user", content: "Thanks." },
    ];
    const ok = await post("/v1/chat/completions", { model: MODEL, messages, max_tokens: 4, parallel_tool_calls: false, service_tier: "auto", user: "u1", modalities: ["text"] });
    expect(ok.status).toBe(200);
    const image = await post("/v1/chat/completions", { model: MODEL, max_tokens: 4, messages: [{ role: "user", content: [{ type: "text", text: "Look" }, { type: "image_url", image_url: { url: "data:," } }] }] });
    expect(image.status).toBe(400);
    expect(((await image.json()) as { error: { param: string; message: string } }).error).toMatchObject({ param: "messages.0.content.1.type", message: expect.stringContaining("image_url") });
    const unknown = await post("/v1/chat/completions", { model: MODEL, max_tokens: 4, messages: [{ role: "user", content: "hi" }], frobnicate: true });
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error: { param: string } }).error.param).toBe("frobnicate");
    const toolWithoutId = await post("/v1/chat/completions", { model: MODEL, max_tokens: 4, messages: [{ role: "tool", content: "x" }] });
    expect(toolWithoutId.status).toBe(400);
  });

  it("JSON mode on /v1/completions too (response_format as an extension)", async () => {
    for (let seed = 0; seed < 3; seed++) {
      const res = await post("/v1/completions", { model: MODEL, prompt: "Record:", response_format: { type: "json_object" }, max_tokens: 48, seed, temperature: 1 });
      const choice = ((await res.json()) as { choices: { text: string; finish_reason: string }[] }).choices[0];
      if (choice.finish_reason === "stop") expect(JSON.parse(choice.text)).toBeTypeOf("object");
      else expect(choice.finish_reason).toBe("length");
    }
  });

  it("JSON mode: replies that stop always parse as a JSON object, streamed or not", async () => {
    const messages = [{ role: "user" as const, content: "A JSON object, please." }];
    for (let seed = 0; seed < 4; seed++) {
      const r = await client().chat.completions.create({ model: MODEL, messages, response_format: { type: "json_object" }, max_tokens: 48, seed, temperature: 1 });
      const choice = r.choices[0];
      if (choice.finish_reason === "stop") expect(JSON.parse(choice.message.content!)).toBeTypeOf("object");
      else expect(choice.finish_reason).toBe("length");
      let text = "";
      let finish: string | null = null;
      for await (const chunk of await client().chat.completions.create({ model: MODEL, messages, response_format: { type: "json_object" }, max_tokens: 48, seed, temperature: 1, stream: true })) {
        text += chunk.choices[0]?.delta.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(text).toBe(choice.message.content);
      expect(finish).toBe(choice.finish_reason);
    }
  });

  it("structured outputs: the SDK's parse() with a zod schema returns the parsed object; a keyword outside the subset is a 400 naming it", async () => {
    const Mood = z.object({ ok: z.boolean(), mood: z.enum(["happy", "sad"]) }); // bounded: the fixture model stops well inside max_tokens
    for (let seed = 0; seed < 3; seed++) {
      const r = await client().chat.completions.parse({ model: MODEL, messages: [{ role: "user", content: "How are you?" }], response_format: zodResponseFormat(Mood, "mood"), max_tokens: 40, seed, temperature: 1 });
      const parsed = r.choices[0].message.parsed!;
      expect(Mood.parse(parsed)).toEqual(parsed);
    }
    const bad = await post("/v1/chat/completions", {
      model: MODEL, messages: [{ role: "user", content: "hi" }],
      response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "string", pattern: "(?=x)" } } } } },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { param: string } }).error.param).toBe("response_format.json_schema.schema.properties.a.pattern");
  });

  it("structured outputs finish inside max_tokens: a four-field person through parse() at temperatures 0–1.3, and at the shortest reply's budget; one token less is a 400 naming the field", async () => {
    const Person = z.object({ name: z.string(), age: z.number().int(), pets: z.array(z.enum(["cat", "dog", "fish"])), nickname: z.string().nullable() });
    const messages = [{ role: "user" as const, content: "Describe a person." }];
    const format = zodResponseFormat(Person, "person");
    // The shortest reply, {"name":"","age":0,"pets":[],"nickname":""}, is 43 bytes: 44 tokens with the end-of-text.
    for (const [temperature, max_tokens] of [[0, 200], [0.9, 200], [1.3, 200], [1.3, 44], [0.9, 50], [0, 44]]) {
      for (const seed of [1, 2]) {
        const r = await client().chat.completions.parse({ model: MODEL, messages, response_format: format, max_tokens, temperature, seed });
        expect(r.choices[0].finish_reason).toBe("stop");
        expect(r.usage!.completion_tokens).toBeLessThanOrEqual(max_tokens);
        const parsed = r.choices[0].message.parsed!;
        expect(Person.parse(parsed)).toEqual(parsed);
      }
    }
    // JSON mode on completions (an extension): "{}" and the end-of-text fit in 3 tokens, not in 2.
    const tight = await client().completions.create({ model: MODEL, prompt: "Data:", max_tokens: 3, temperature: 1.3, seed: 5, response_format: { type: "json_object" } } as never) as OpenAI.Completion;
    expect(tight.choices[0].finish_reason).toBe("stop");
    expect(JSON.parse(tight.choices[0].text)).toEqual({});
    const two = await post("/v1/completions", { model: MODEL, prompt: "Data:", max_tokens: 2, response_format: { type: "json_object" } });
    expect(two.status).toBe(400);
    expect(((await two.json()) as { error: { param: string } }).error.param).toBe("max_tokens");
    for (const field of ["max_tokens", "max_completion_tokens"]) {
      const res = await post("/v1/chat/completions", { model: MODEL, messages, response_format: format, [field]: 43 });
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { param: string; message: string } };
      expect(error.param).toBe(field);
      expect(error.message).toMatch(/at least 44/);
    }
  });

  it("tool calls: tool_choice required or a named function returns tool_calls whose arguments parse and validate, streamed or not", async () => {
    const weather = { type: "object", properties: { city: { enum: ["Oslo", "Rome"] }, celsius: { type: "boolean" } }, required: ["city", "celsius"], additionalProperties: false };
    const tools = [
      { type: "function" as const, function: { name: "get_weather", description: "Weather now", parameters: weather } },
      { type: "function" as const, function: { name: "now", parameters: { type: "object", properties: {} } } },
    ];
    const messages = [{ role: "user" as const, content: "Weather in Oslo?" }];
    for (const tool_choice of ["required", { type: "function", function: { name: "get_weather" } }] as const) {
      const r = await client().chat.completions.create({ model: MODEL, messages, tools, tool_choice, max_tokens: 160, seed: 3, temperature: 1 });
      const choice = r.choices[0];
      expect(choice.finish_reason).toBe("tool_calls");
      const call = choice.message.tool_calls![0] as { type: string; function: { name: string; arguments: string } };
      expect(call.type).toBe("function");
      const args = JSON.parse(call.function.arguments);
      if (call.function.name === "get_weather") expect(["Oslo", "Rome"]).toContain(args.city);
      else expect(args).toEqual({});
      if (typeof tool_choice !== "string") expect(call.function.name).toBe("get_weather");
      // Streamed: the SDK's accumulated tool call is the same.
      const stream = client().chat.completions.stream({ model: MODEL, messages, tools, tool_choice, max_tokens: 160, seed: 3, temperature: 1 });
      const final = await stream.finalChatCompletion();
      expect(final.choices[0].finish_reason).toBe("tool_calls");
      expect((final.choices[0].message.tool_calls![0] as typeof call).function).toEqual(call.function);
      // The reply and a tool result go back through the template on the next turn.
      const next = await client().chat.completions.create({ model: MODEL, max_tokens: 4, tools, messages: [
        ...messages, choice.message, { role: "tool", tool_call_id: choice.message.tool_calls![0].id, content: "Sunny" },
      ] });
      expect(next.choices[0].message.role).toBe("assistant");
    }
  });

  it("tool call errors: an unknown named function, a forced call with response_format, parameters outside the schema subset", async () => {
    const tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { x: { type: "string", pattern: "\\bA" } } } } }];
    const base = { model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 4 };
    const cases: [Record<string, unknown>, string][] = [
      [{ tools, tool_choice: { type: "function", function: { name: "g" } } }, "tool_choice.function.name"],
      [{ tools: [{ type: "function", function: { name: "f" } }], tool_choice: "required", response_format: { type: "json_object" } }, "response_format"],
      [{ tools, tool_choice: "required" }, "tools.0.function.parameters.properties.x.pattern"],
      [{ tool_choice: "required" }, "tool_choice"],
    ];
    for (const [extra, param] of cases) {
      const res = await post("/v1/chat/completions", { ...base, ...extra });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param).toBe(param);
    }
  });

  it("other clients, unmodified: the Vercel AI SDK's generateText with an object output and LangChain's withStructuredOutput (both methods)", async () => {
    const Mood = z.object({ ok: z.boolean(), mood: z.enum(["happy", "sad"]) });
    const provider = createOpenAICompatible({ name: "tinylm", baseURL: `${base()}/v1`, apiKey: "unused", supportsStructuredOutputs: true });
    const { output } = await generateText({ model: provider(MODEL), output: Output.object({ schema: Mood }), prompt: "How are you?", maxOutputTokens: 60, seed: 1, temperature: 1 });
    expect(Mood.parse(output)).toEqual(output);
    // The four-field person of issue 26: open strings and arrays, closed inside the budget at any temperature.
    const Person = z.object({ name: z.string(), age: z.number().int(), pets: z.array(z.enum(["cat", "dog", "fish"])), nickname: z.string().nullable() });
    for (const temperature of [0, 0.9, 1.3]) {
      const person = await generateText({ model: provider(MODEL), output: Output.object({ schema: Person }), prompt: "Describe a person.", maxOutputTokens: 200, seed: 1, temperature });
      expect(Person.parse(person.output)).toEqual(person.output);
      const llm = new ChatOpenAI({ model: MODEL, apiKey: "unused", configuration: { baseURL: `${base()}/v1` }, maxTokens: 200, temperature, maxRetries: 0 });
      for (const method of ["jsonSchema", "functionCalling"] as const) {
        const result = await llm.withStructuredOutput(Person, { method }).invoke("Describe a person.");
        expect(Person.parse(result)).toEqual(result);
      }
    }
    for (const method of ["jsonSchema", "functionCalling"] as const) {
      const llm = new ChatOpenAI({ model: MODEL, apiKey: "unused", configuration: { baseURL: `${base()}/v1` }, maxTokens: 120, temperature: 1, maxRetries: 0 });
      const result = await llm.withStructuredOutput(Mood, { method }).invoke("How are you?");
      expect(Mood.parse(result)).toEqual(result);
    }
  });

  it("Responses API: text, and the same text streamed as the ordered event sequence", async () => {
    const params = { model: MODEL, instructions: "You tell short stories.", input: "Tell me a story.", max_output_tokens: 8, temperature: 0 };
    const r = await client().responses.create(params);
    expect(r).toMatchObject({ object: "response", store: false, instructions: params.instructions, output: [{ type: "message", role: "assistant" }] });
    expect(["completed", "incomplete"]).toContain(r.status);
    expect(r.usage!.total_tokens).toBe(r.usage!.input_tokens + r.usage!.output_tokens);
    expect(r.usage!.output_tokens).toBeGreaterThan(0);
    expect(r.usage!.output_tokens).toBeLessThanOrEqual(8);
    const events = [];
    for await (const e of await client().responses.create({ ...params, stream: true })) events.push(e);
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const types = events.map((e) => e.type).filter((t, i, all) => t !== "response.output_text.delta" || all[i - 1] !== t);
    expect(types).toEqual(["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
      ...(r.output_text ? ["response.output_text.delta"] : []), "response.output_text.done", "response.content_part.done", "response.output_item.done", `response.${r.status}`]);
    const text = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : [])).join("");
    expect(text).toBe(r.output_text);
    const last = events.at(-1) as { response: OpenAI.Responses.Response };
    expect(last.response.usage).toEqual(r.usage);
    expect(last.response.output).toMatchObject([{ type: "message", content: [{ type: "output_text", text }] }]);
  });

  it("Responses API: json_schema through the SDK's parse(), and a function call and its function_call_output round trip, streamed and not", async () => {
    const Mood = z.object({ ok: z.boolean(), mood: z.enum(["happy", "sad"]) });
    const parsed = await client().responses.parse({ model: MODEL, input: "How are you?", text: { format: zodTextFormat(Mood, "mood") }, max_output_tokens: 40, temperature: 0 });
    expect(Mood.parse(parsed.output_parsed)).toEqual(parsed.output_parsed);
    const weather = { type: "object", properties: { city: { enum: ["Oslo", "Rome"] }, celsius: { type: "boolean" } }, required: ["city", "celsius"], additionalProperties: false };
    const tools = [{ type: "function" as const, name: "get_weather", description: "Weather now", parameters: weather, strict: true }];
    const input: OpenAI.Responses.ResponseInputItem[] = [{ role: "user", content: [{ type: "input_text", text: "Weather in Oslo?" }] }];
    const params = { model: MODEL, input, tools, tool_choice: "required" as const, max_output_tokens: 160, temperature: 0 };
    const r = await client().responses.create(params);
    expect(r.status).toBe("completed");
    const call = r.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", status: "completed" });
    expect(["Oslo", "Rome"]).toContain(JSON.parse(call.arguments).city);
    const events = [];
    for await (const e of await client().responses.create({ ...params, stream: true })) events.push(e);
    expect(events.map((e) => e.type)).toEqual(["response.created", "response.in_progress", "response.output_item.added",
      "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done", "response.completed"]);
    expect(events[4]).toMatchObject({ name: "get_weather", arguments: call.arguments });
    // The call and its result go back as items; the reply is text.
    const next = await client().responses.create({ model: MODEL, tools, max_output_tokens: 4, temperature: 0,
      input: [...input, ...r.output as OpenAI.Responses.ResponseInputItem[], { type: "function_call_output", call_id: call.call_id, output: "Sunny" }] });
    expect(next.output[0].type).toBe("message");
  });

  it("Responses API: truncation \"auto\" drops the oldest turns and keeps the instructions; unsupported fields are 400s naming them", async () => {
    const instructions = "You answer in one word.";
    const turns = Array.from({ length: 12 }, (_, i) => [
      { role: "user" as const, content: `Question ${i}: what happened on the long road to the old town by the sea?` },
      { role: "assistant" as const, content: `Answer ${i}: the travellers walked for many days and nights until they reached it.` },
    ]);
    const history = (k: number) => [...turns.slice(turns.length - k).flat(), { role: "user" as const, content: "And then?" }];
    const params = { model: MODEL, instructions, max_output_tokens: 16, temperature: 0 };
    await expect(client().responses.create({ ...params, input: history(turns.length) })).rejects.toMatchObject({ status: 400, code: "context_length_exceeded" });
    const cut = await client().responses.create({ ...params, input: history(turns.length), truncation: "auto" });
    expect(cut.usage!.input_tokens + 16).toBeLessThanOrEqual(256);
    // The same as sending the instructions and the turns that fit: the most of them that do.
    let kept = 0;
    while (kept < turns.length) {
      const res = await post("/v1/responses", { ...params, input: history(kept + 1) });
      if (res.status !== 200) break;
      kept++;
    }
    expect(kept).toBeGreaterThan(0);
    const same = await client().responses.create({ ...params, input: history(kept) });
    expect(same.usage!.input_tokens).toBe(cut.usage!.input_tokens);
    expect(same.output_text).toBe(cut.output_text);
    const cases: [Record<string, unknown>, string][] = [
      [{ store: true }, "store"],
      [{ previous_response_id: "resp_1" }, "previous_response_id"],
      [{ reasoning: { effort: "low" } }, "reasoning"],
      [{ frobnicate: 1 }, "frobnicate"],
      [{ tools: [{ type: "web_search" }] }, "tools.0.type"],
      [{ input: [{ role: "user", content: [{ type: "input_text", text: "a" }, { type: "input_image", image_url: "data:," }] }] }, "input.0.content.1.type"],
      [{ input: [{ type: "item_reference", id: "msg_1" }] }, "input.0.type"],
      [{ text: { format: { type: "json_schema", name: "x", schema: { oneOf: [{ type: "string" }] } } } }, "text.format.schema.oneOf"],
      [{ tools: [{ type: "function", name: "f", parameters: { type: "object", properties: {} } }], tool_choice: { type: "function", name: "g" } }, "tool_choice.name"],
      [{ truncation: "auto", input: "x ".repeat(300) }, "input"],
      [{ max_output_tokens: 10_000 }, "max_output_tokens"],
      [{ text: { format: { type: "json_object" } }, max_output_tokens: 1 }, "max_output_tokens"], // no valid reply fits
    ];
    for (const [extra, param] of cases) {
      const res = await post("/v1/responses", { model: MODEL, input: "hi", max_output_tokens: 4, ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(((await res.json()) as { error: { param: string } }).error.param, JSON.stringify(extra)).toBe(param);
    }
  });
}
