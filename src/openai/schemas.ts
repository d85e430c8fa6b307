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

/** A content part of a Responses input item: text is read; any other type is refused by name in responses.ts. */
const itemPart = z.looseObject({ type: z.string(), text: z.string().optional(), refusal: z.string().optional() });
const itemContent = z.union([z.string(), z.array(itemPart)]);

/** The Responses input items this server reads: messages (a `type` left out means one), and a tool round trip. */
const responseItem = z.preprocess(
  (v) => (v && typeof v === "object" && !Array.isArray(v) && !("type" in v) ? { ...v, type: "message" } : v),
  z.discriminatedUnion("type", [
    z.strictObject({
      type: z.literal("message"),
      role: z.enum(["user", "system", "developer", "assistant"]),
      content: itemContent,
      // As this server returns them (a client sends its output items back as they came).
      id: z.string().nullish(),
      status: z.string().nullish(),
      phase: z.string().nullish(),
    }),
    z.strictObject({
      type: z.literal("function_call"),
      call_id: z.string(),
      name: z.string(),
      arguments: z.string(),
      id: z.string().nullish(),
      status: z.string().nullish(),
    }),
    z.strictObject({
      type: z.literal("function_call_output"),
      call_id: z.string(),
      output: itemContent,
      id: z.string().nullish(),
      status: z.string().nullish(),
    }),
  ]),
);

/**
 * POST /v1/responses, stateless. Fields of OpenAI's API this server does not implement are listed
 * (so the 400 says "not supported" rather than "unrecognized") and refused in responses.ts.
 */
export const responsesRequest = z.strictObject({
  ...ignored,
  model: z.string(),
  input: z.union([z.string(), z.array(responseItem).min(1)]),
  instructions: z.string().nullish(),
  max_output_tokens: z.number().int().nonnegative().nullish(),
  temperature: sampling.temperature,
  top_p: sampling.top_p,
  stream: z.boolean().nullish(),
  user: z.string().nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  truncation: z.enum(["auto", "disabled"]).nullish(),
  text: z.strictObject({
    format: z.discriminatedUnion("type", [
      z.strictObject({ type: z.literal("text") }),
      z.strictObject({ type: z.literal("json_object") }),
      z.strictObject({ type: z.literal("json_schema"), name: z.string(), schema: z.record(z.string(), z.unknown()), description: z.string().optional(), strict: z.boolean().nullish() }),
    ]).optional(),
  }).nullish(),
  tools: z.array(z.strictObject({
    type: z.literal("function"),
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "function names are 1-64 letters, digits, _ or -"),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  })).nullish(),
  tool_choice: z.union([
    z.enum(["none", "auto", "required"]),
    z.strictObject({ type: z.literal("function"), name: z.string() }),
  ]).nullish(),
  // Known, not supported (responses.ts: a 400 naming each when given).
  previous_response_id: z.unknown().optional(),
  conversation: z.unknown().optional(),
  background: z.unknown().optional(),
  include: z.unknown().optional(),
  max_tool_calls: z.unknown().optional(),
  prompt: z.unknown().optional(),
  reasoning: z.unknown().optional(),
  top_logprobs: z.unknown().optional(),
  stream_options: z.unknown().optional(),
});

export const tokenizeRequest = z.strictObject({ content: z.string(), add_special: z.boolean().optional() });
export const detokenizeRequest = z.strictObject({ tokens: z.array(tokenId) });

export type CompletionRequest = z.infer<typeof completionRequest>;
export type ChatRequest = z.infer<typeof chatRequest>;
export type ChatMessage = z.infer<typeof chatMessage>;
export type ResponsesRequest = z.infer<typeof responsesRequest>;
export type ResponseItem = z.infer<typeof responseItem>;

/** zod issue → OpenAI-style message and param name (e.g. "messages.0.role"). */
export function describeIssue(error: z.ZodError): { message: string; param: string | null } {
  const { issue, path } = innermost(error.issues[0], []);
  if (issue.code === "unrecognized_keys") {
    const key = issue.keys[0];
    const param = [...path, key].join(".");
    return { message: `Unrecognized request argument supplied: ${param}`, param };
  }
  const param = path.length ? path.join(".") : null;
  return { message: param ? `Invalid value for '${param}': ${issue.message}` : issue.message, param };
}

/**
 * A union whose value had the type of exactly one branch (say, an array, not a string) failed inside
 * that branch: that branch's issue, with its full path, says what is wrong (input.0.type, not input).
 */
function innermost(issue: z.core.$ZodIssue, prefix: PropertyKey[]): { issue: z.core.$ZodIssue; path: PropertyKey[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code !== "invalid_union") return { issue, path };
  const typed = issue.errors.filter((branch) => !(branch.length === 1 && branch[0].code === "invalid_type" && branch[0].path.length === 0));
  return typed.length === 1 && typed[0].length ? innermost(typed[0][0], path) : { issue, path };
}
