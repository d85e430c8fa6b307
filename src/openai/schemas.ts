// Request schemas for the OpenAI endpoints (zod). Unknown fields are rejected, like OpenAI's API
// ("Unrecognized request argument"), so a typo never silently changes nothing.
import { z } from "zod";

const stop = z.union([z.string(), z.array(z.string()).max(4)]).nullish();
const tokenId = z.number().int().nonnegative();

/** Sampling fields shared by completions and chat (OpenAI's, plus llama.cpp-style extensions). */
const sampling = {
  model: z.string(),
  max_tokens: z.number().int().nonnegative().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  n: z.number().int().min(1).max(8).nullish(),
  stop,
  seed: z.number().int().nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  logit_bias: z.record(z.string().regex(/^\d+$/, "logit_bias keys must be token ids"), z.number().min(-100).max(100)).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullish(),
  user: z.string().nullish(),
  top_k: z.number().int().nonnegative().nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).max(10).nullish(),
};

/**
 * Request fields OpenAI accepts that change nothing here: accepted and ignored (README lists them),
 * so SDKs and chat loops that send them work. Anything else unknown is still a 400 naming it.
 */
const ignored = {
  store: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  service_tier: z.string().nullish(),
  prompt_cache_key: z.string().nullish(),
  safety_identifier: z.string().nullish(),
};

/** Structured output: text, a JSON object, or JSON valid against a schema (compiled and checked in structured.ts). */
const responseFormat = z.union([
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.looseObject({ type: z.literal("json_schema") }),
]).nullish();

export const completionRequest = z.strictObject({
  ...sampling,
  ...ignored,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(tokenId).min(1),
    z.array(z.array(tokenId).min(1)).min(1),
  ]),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.boolean().nullish(),
  /** An extension on this legacy endpoint: the same structured output as chat. */
  response_format: responseFormat,
  suffix: z.null().optional(),
  best_of: z.literal(1).nullish(),
});

/** A content part: text is read; any other type is refused by name in chat.ts (this model reads text only). */
const contentPart = z.looseObject({ type: z.string(), text: z.string().optional(), refusal: z.string().optional() });
const content = z.union([z.string(), z.array(contentPart)]);

const toolCall = z.looseObject({
  id: z.string(),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

/** Every message shape the SDKs send, and every one this server returns (sent back by chat loops). */
const chatMessage = z.discriminatedUnion("role", [
  z.strictObject({ role: z.enum(["system", "developer"]), content, name: z.string().optional() }),
  z.strictObject({ role: z.literal("user"), content, name: z.string().optional() }),
  z.strictObject({
    role: z.literal("assistant"),
    content: content.nullish(),
    name: z.string().optional(),
    refusal: z.string().nullish(),
    tool_calls: z.array(toolCall).nullish(),
    annotations: z.array(z.unknown()).nullish(),
    audio: z.looseObject({ id: z.string() }).nullish(),
    function_call: z.looseObject({ name: z.string(), arguments: z.string() }).nullish(),
  }),
  z.strictObject({ role: z.literal("tool"), content, tool_call_id: z.string() }),
]);

export const chatRequest = z.strictObject({
  ...sampling,
  ...ignored,
  messages: z.array(chatMessage).min(1),
  max_completion_tokens: z.number().int().nonnegative().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  response_format: responseFormat,
  parallel_tool_calls: z.boolean().nullish(),
  modalities: z.array(z.literal("text")).nullish(),
  tools: z.array(z.strictObject({
    type: z.literal("function"),
    function: z.strictObject({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "function names are 1-64 letters, digits, _ or -"),
      description: z.string().optional(),
      parameters: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullish(),
    }),
  })).nullish(),
  tool_choice: z.union([
    z.enum(["none", "auto", "required"]),
    z.strictObject({ type: z.literal("function"), function: z.strictObject({ name: z.string() }) }),
  ]).nullish(),
});

export const tokenizeRequest = z.strictObject({ content: z.string(), add_special: z.boolean().optional() });
export const detokenizeRequest = z.strictObject({ tokens: z.array(tokenId) });

export type CompletionRequest = z.infer<typeof completionRequest>;
export type ChatRequest = z.infer<typeof chatRequest>;
export type ChatMessage = z.infer<typeof chatMessage>;

/** zod issue → OpenAI-style message and param name (e.g. "messages.0.role"). */
export function describeIssue(error: z.ZodError): { message: string; param: string | null } {
  const issue = error.issues[0];
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0];
    const path = [...issue.path, key].join(".");
    return { message: `Unrecognized request argument supplied: ${path}`, param: path };
  }
  const param = issue.path.length ? issue.path.join(".") : null;
  return { message: param ? `Invalid value for '${param}': ${issue.message}` : issue.message, param };
}
