// POST /v1/completions
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { GeneratedToken } from "../engine/engine.js";
import type { LoadedModel } from "../model.js";
import { ApiError, invalidRequest, promptTooLong } from "./errors.js";
import { collectChoices, deltaTokenCount, linkAbort, startChoices, type ChoiceRequest, type ClientScope } from "./generation.js";
import { samplingParams, stopStrings, tokenBudget, type Limits } from "./params.js";
import type { CompletionRequest } from "./schemas.js";
import { keepAlive, newId, sseError } from "./sse.js";
import { constraintFor } from "./structured.js";

interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

/** The prompts as token ids: strings are refused cheaply when too long for the context, then encoded a slice at a time. */
async function promptsOf(req: CompletionRequest, model: LoadedModel): Promise<number[][]> {
  const p = req.prompt;
  const vocab = model.tokenizer.vocabSize;
  const check = (ids: number[]) => {
    if (ids.length === 0) throw invalidRequest("prompt must not be empty", "prompt");
    if (ids.some((id) => id >= vocab)) throw invalidRequest(`prompt contains a token id ≥ the vocabulary size ${vocab}`, "prompt");
    return ids;
  };
  const encode = async (text: string) => {
    if (text.length === 0) throw invalidRequest("prompt must not be empty", "prompt");
    const least = model.tokenizer.minTokens(text);
    if (least >= model.engine.maxLength) throw promptTooLong(model.engine.maxLength, least, "prompt");
    return model.tokenizer.encodeAsync(text, { addSpecial: true }); // a raw prompt gets what tokenizer(text) adds (Llama 2's <s>)
  };
  if (typeof p === "string") return [await encode(p)];
  if (p.length === 0) throw invalidRequest("prompt must not be empty", "prompt");
  const out: number[][] = [];
  if (typeof p[0] === "string") for (const text of p as string[]) out.push(await encode(text));
  else if (typeof p[0] === "number") out.push(check(p as number[]));
  else for (const ids of p as number[][]) out.push(check(ids));
  return out;
}

/** The logprobs object of these tokens; `offset` is the choice's text length so far, and is moved past them. */
function logprobsOf(model: LoadedModel, tokens: GeneratedToken[], offset: { at: number }, prompt?: { ids: number[]; lps: (number | null)[] }): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  const add = (id: number, lp: number | null, top: Record<string, number> | null) => {
    const text = model.tokenizer.decode([id]);
    out.tokens.push(text);
    out.token_logprobs.push(lp);
    out.top_logprobs.push(top);
    out.text_offset.push(offset.at);
    offset.at += text.length;
  };
  if (prompt) prompt.ids.forEach((id, i) => add(id, prompt.lps[i], null));
  for (const t of tokens) add(t.token, t.logprob, Object.fromEntries(t.top.map((a) => [model.tokenizer.decode([a.token]), a.logprob])));
  return out;
}

export async function completions(c: Context, model: LoadedModel, req: CompletionRequest, limits: Limits, scope: ClientScope): Promise<Response> {
  if (req.stream_options && !req.stream) throw invalidRequest("stream_options is only allowed when stream is true", "stream_options");
  const structured = constraintFor(req, model);
  const prompts = await promptsOf(req, model);
  const n = req.n ?? 1;
  if (prompts.length * n > 8) throw invalidRequest("prompts × n may be at most 8", "n");
  const logprobs = req.logprobs ?? null;
  const choices: ChoiceRequest[] = [];
  prompts.forEach((prompt, p) => {
    const maxTokens = tokenBudget(req.max_tokens, 16, prompt.length, model.engine.maxLength, limits);
    const constraint = structured?.within(maxTokens, "max_tokens");
    for (let k = 0; k < n; k++) {
      choices.push({
        prompt,
        maxTokens,
        sampling: samplingParams(req, model.tokenizer.vocabSize, logprobs, p * n + k, model.defaults),
        stops: stopStrings(req.stop),
        promptLogprobs: Boolean(req.echo && logprobs !== null),
        seeded: req.seed != null,
        constraint,
      });
    }
  });
  const abort = new AbortController();
  linkAbort(abort, scope.signal);
  const id = newId("cmpl");
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: "text_completion", created, model: model.id };
  const promptTokens = prompts.reduce((s, p) => s + p.length, 0);
  const echoText = (i: number) => (req.echo ? model.tokenizer.decode(choices[i].prompt) : "");
  const deltas = startChoices(model, choices, abort.signal, scope);
  keepAlive(c, model.engine.whenIdle());

  if (req.stream) {
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => abort.abort());
      let completionTokens = 0;
      const echoed = new Set<number>();
      const offsets = choices.map(() => ({ at: 0 })); // text_offset runs on across a choice's chunks
      try {
        for await (const d of deltas) {
          completionTokens += deltaTokenCount(d);
          let text = d.text;
          let prompt: { ids: number[]; lps: (number | null)[] } | undefined;
          if (!echoed.has(d.index)) {
            echoed.add(d.index);
            text = echoText(d.index) + text;
            if (req.echo) prompt = { ids: choices[d.index].prompt, lps: d.generation.promptLogprobs };
          }
          const lp = logprobs === null ? null : logprobsOf(model, d.tokens, offsets[d.index], prompt);
          await stream.writeSSE({ data: JSON.stringify({ ...base, choices: [{ text, index: d.index, logprobs: lp, finish_reason: d.finish }] }) });
        }
        if (req.stream_options?.include_usage) {
          await stream.writeSSE({ data: JSON.stringify({ ...base, choices: [], usage: usage(promptTokens, completionTokens) }) });
        }
        await stream.writeSSE({ data: "[DONE]" });
      } catch (err) {
        await sseError(stream, err);
      }
    });
  }

  const results = await collectChoices(deltas, choices.length);
  return c.json({
    ...base,
    choices: results.map((r, i) => {
      const echo = echoText(i);
      const prompt = req.echo ? { ids: choices[i].prompt, lps: r.generation?.promptLogprobs ?? [] } : undefined;
      return {
        text: echo + r.text,
        index: i,
        logprobs: logprobs === null ? null : logprobsOf(model, r.tokens, { at: 0 }, prompt),
        finish_reason: r.finish,
      };
    }),
    usage: usage(promptTokens, results.reduce((s, r) => s + r.counted, 0)),
  });
}

export function usage(prompt: number, completion: number) {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

export { ApiError };
