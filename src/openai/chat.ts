// POST /v1/chat/completions
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { GeneratedToken } from "../engine/engine.js";
import type { LoadedModel } from "../model.js";
import { invalidRequest, promptTooLong } from "./errors.js";
import { collectChoices, deltaTokenCount, linkAbort, startChoices, type ChoiceRequest, type ClientScope } from "./generation.js";
import { samplingParams, stopStrings, tokenBudget, type Limits } from "./params.js";
import type { ChatRequest } from "./schemas.js";
import { keepAlive, newId, sseError } from "./sse.js";
import { constraintFor, forcedTools } from "./structured.js";
import type { TemplateMessage } from "../tokenizer/chat-template.js";
import type { ChatMessage } from "./schemas.js";
import { usage } from "./completions.js";

function tokenInfo(model: LoadedModel, id: number, logprob: number) {
  const token = model.tokenizer.decode([id]);
  return { token, logprob, bytes: Array.from(model.tokenizer.tokenBytes(id)) };
}

function logprobsOf(model: LoadedModel, tokens: GeneratedToken[]) {
  return {
    content: tokens.map((t) => ({
      ...tokenInfo(model, t.token, t.logprob),
      top_logprobs: t.top.map((a) => tokenInfo(model, a.token, a.logprob)),
    })),
  };
}

/** An API message as the chat template reads it: roles kept (developer as system), content as plain text. */
function templateMessage(m: ChatMessage): TemplateMessage {
  return {
    role: m.role === "developer" ? "system" : m.role,
    content: textOf(m.content),
    ...("name" in m && m.name ? { name: m.name } : {}),
    ...("tool_calls" in m && m.tool_calls ? { tool_calls: m.tool_calls } : {}),
    ...("tool_call_id" in m ? { tool_call_id: m.tool_call_id } : {}),
  };
}

/** A message's text: a string, or its text parts joined (a refusal part counts as text). */
function textOf(content: ChatMessage["content"]): string {
  if (typeof content === "string") return content;
  return (content ?? []).map((p) => p.text ?? p.refusal ?? "").join("");
}

/** The first content part this text-only model cannot read, as [message index, part index, type]. */
function unreadablePart(messages: ChatMessage[]): [number, number, string] | null {
  for (const [i, m] of messages.entries()) {
    if (!Array.isArray(m.content)) continue;
    for (const [j, part] of m.content.entries()) {
      const ok = part.type === "text" ? typeof part.text === "string" : part.type === "refusal" && m.role === "assistant" && typeof part.refusal === "string";
      if (!ok) return [i, j, part.type];
    }
  }
  return null;
}

/** A finished forced call's text ({"name", "arguments"}) as OpenAI's tool_calls entry; null when cut short. */
function toolCall(text: string, finish: string | null): { id: string; type: "function"; function: { name: string; arguments: string } } | null {
  if (finish !== "stop") return null;
  let call: { name: string; arguments: unknown };
  try {
    call = JSON.parse(text) as typeof call;
  } catch {
    return null; // not whole (the constraint keeps every stop at a complete call; this guards the rest)
  }
  const { name, arguments: args } = call;
  return { id: newId("call").replace("-", "_"), type: "function", function: { name, arguments: JSON.stringify(args) } };
}

export async function chatCompletions(c: Context, model: LoadedModel, req: ChatRequest, limits: Limits, scope: ClientScope): Promise<Response> {
  if (req.stream_options && !req.stream) throw invalidRequest("stream_options is only allowed when stream is true", "stream_options");
  if (req.top_logprobs && !req.logprobs) throw invalidRequest("top_logprobs requires logprobs to be true", "top_logprobs");
  const unreadable = unreadablePart(req.messages);
  if (unreadable) {
    const [i, j, type] = unreadable;
    throw invalidRequest(`messages[${i}].content[${j}]: content parts of type '${type}' are not supported: this model reads text only`, `messages.${i}.content.${j}.type`);
  }
  if (!model.chatTemplate) {
    throw invalidRequest(`model ${model.id} has no chat template (chat_template.jinja, or "chat_template" in tokenizer_config.json): use /v1/completions`, "model", "model_not_chat");
  }
  let promptText: string;
  try {
    // Tools go to the template unless tool_choice is "none" (a template that ignores them, like the
    // shipped base model's, simply does not show them).
    promptText = model.chatTemplate.render(req.messages.map(templateMessage), req.tool_choice === "none" ? undefined : (req.tools ?? undefined));
  } catch (err) {
    throw invalidRequest(`messages could not be rendered with the chat template: ${(err as Error).message}`, "messages");
  }
  const tools = forcedTools(req);
  const structured = constraintFor(req, model, tools);
  const toolMode = tools !== null; // the reply is a call: {"name", "arguments"}
  const least = model.tokenizer.minTokens(promptText);
  if (least >= model.engine.maxLength) throw promptTooLong(model.engine.maxLength, least, "messages");
  const prompt = await model.tokenizer.encodeAsync(promptText);
  const n = req.n ?? 1;
  const maxTokens = tokenBudget(req.max_completion_tokens ?? req.max_tokens, 256, prompt.length, model.engine.maxLength, limits);
  const constraint = structured?.within(maxTokens, req.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens");
  const wantLogprobs = Boolean(req.logprobs);
  const choices: ChoiceRequest[] = Array.from({ length: n }, (_, k) => ({
    prompt,
    maxTokens,
    sampling: samplingParams(req, model.tokenizer.vocabSize, wantLogprobs ? (req.top_logprobs ?? 0) : null, k, model.defaults),
    // A forced call is JSON under the constraint: a stop string inside it would cut the call in two.
    stops: toolMode ? [] : stopStrings(req.stop),
    promptLogprobs: false,
    seeded: req.seed != null,
    constraint,
  }));
  const abort = new AbortController();
  linkAbort(abort, scope.signal);
  const base = { id: newId("chatcmpl"), object: "chat.completion", created: Math.floor(Date.now() / 1000), model: model.id };
  const deltas = startChoices(model, choices, abort.signal, scope);
  keepAlive(c, model.engine.whenIdle());

  if (req.stream) {
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => abort.abort());
      const chunk = { ...base, object: "chat.completion.chunk" };
      let completionTokens = 0;
      try {
        for (let k = 0; k < n; k++) {
          await stream.writeSSE({ data: JSON.stringify({ ...chunk, choices: [{ index: k, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] }) });
        }
        const calls = new Map<number, string>(); // tool mode: each choice's text until its call is whole
        for await (const d of deltas) {
          completionTokens += deltaTokenCount(d);
          if (toolMode) {
            calls.set(d.index, (calls.get(d.index) ?? "") + d.text);
            if (!d.finish) continue;
            const call = toolCall(calls.get(d.index)!, d.finish);
            // As OpenAI streams a call: id, type and name first (arguments ""), then the arguments.
            const deltas = call
              ? [{ tool_calls: [{ index: 0, id: call.id, type: call.type, function: { name: call.function.name, arguments: "" } }] },
                 { tool_calls: [{ index: 0, function: { arguments: call.function.arguments } }] }]
              : [{ content: calls.get(d.index) }];
            for (const delta of deltas) await stream.writeSSE({ data: JSON.stringify({ ...chunk, choices: [{ index: d.index, delta, logprobs: null, finish_reason: null }] }) });
            await stream.writeSSE({ data: JSON.stringify({ ...chunk, choices: [{ index: d.index, delta: {}, logprobs: null, finish_reason: call ? "tool_calls" : d.finish }] }) });
            continue;
          }
          const delta = d.text ? { content: d.text } : {};
          if (!d.text && !d.finish) continue; // a held-back partial: nothing to say yet
          await stream.writeSSE({ data: JSON.stringify({ ...chunk, choices: [{ index: d.index, delta, logprobs: wantLogprobs ? logprobsOf(model, d.tokens) : null, finish_reason: d.finish }] }) });
        }
        if (req.stream_options?.include_usage) {
          await stream.writeSSE({ data: JSON.stringify({ ...chunk, choices: [], usage: usage(prompt.length * n, completionTokens) }) });
        }
        await stream.writeSSE({ data: "[DONE]" });
      } catch (err) {
        await sseError(stream, err);
      }
    });
  }

  const results = await collectChoices(deltas, n);
  return c.json({
    ...base,
    choices: results.map((r, i) => {
      const call = toolMode ? toolCall(r.text, r.finish) : null;
      return {
        index: i,
        message: call
          ? { role: "assistant", content: null, tool_calls: [call], refusal: null, annotations: [] }
          : { role: "assistant", content: r.text, refusal: null, annotations: [] },
        logprobs: wantLogprobs ? logprobsOf(model, r.tokens) : null,
        finish_reason: call ? "tool_calls" : r.finish,
      };
    }),
    usage: usage(prompt.length * n, results.reduce((s, r) => s + r.counted, 0)),
  });
}
