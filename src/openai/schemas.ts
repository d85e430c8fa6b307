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

export const completionRequest = z.strictObject({
  ...sampling,
  prompt: z.union([
    z.string(),
    z.array(z.string()).min(1),
    z.array(tokenId).min(1),
    z.array(z.array(tokenId).min(1)).min(1),
  ]),
  logprobs: z.number().int().min(0).max(5).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.null().optional(),
  best_of: z.literal(1).nullish(),
});

const textPart = z.strictObject({ type: z.literal("text"), text: z.string() });

export const chatMessage = z.strictObject({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(textPart)]).nullable(),
  name: z.string().optional(),
});

export const chatRequest = z.strictObject({
  ...sampling,
  messages: z.array(chatMessage).min(1),
  max_completion_tokens: z.number().int().nonnegative().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().min(0).max(5).nullish(),
  response_format: z.strictObject({ type: z.literal("text") }).nullish(),
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
