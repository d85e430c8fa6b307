// The straight road from a validated request to engine parameters: sampling, stops, token budget.
import { DEFAULT_SAMPLING, MIN_TEMPERATURE, type SamplingParams } from "../engine/sampler.js";
import { contextLengthExceeded, invalidRequest } from "./errors.js";
import type { GenerationDefaults } from "../model.js";
import type { ChatRequest, CompletionRequest } from "./schemas.js";

export interface Limits {
  /** Largest max_tokens a request may ask for on this host. */
  maxTokensLimit: number;
}

/** Sampling for one choice: the request's fields, else the model's generation_config.json defaults, else OpenAI's. */
export function samplingParams(req: CompletionRequest | ChatRequest, vocabSize: number, logprobs: number | null, index: number, defaults: GenerationDefaults = {}): SamplingParams {
  const logitBias = new Map<number, number>();
  for (const [id, bias] of Object.entries(req.logit_bias ?? {})) {
    if (Number(id) >= vocabSize) throw invalidRequest(`logit_bias refers to token ${id}, but the vocabulary has ${vocabSize} tokens`, "logit_bias");
    logitBias.set(Number(id), bias);
  }
  const temperature = req.temperature ?? defaults.temperature ?? DEFAULT_SAMPLING.temperature;
  return {
    ...DEFAULT_SAMPLING,
    temperature: temperature < MIN_TEMPERATURE ? 0 : temperature,
    topP: req.top_p ?? defaults.top_p ?? 1,
    topK: req.top_k ?? defaults.top_k ?? 0,
    minP: req.min_p ?? defaults.min_p ?? 0,
    presencePenalty: req.presence_penalty ?? 0,
    frequencyPenalty: req.frequency_penalty ?? 0,
    repetitionPenalty: req.repetition_penalty ?? defaults.repetition_penalty ?? 1,
    logitBias,
    // Equal seeds give equal output; choices of one request get consecutive seeds.
    seed: (req.seed ?? Math.floor(Math.random() * 2 ** 31)) + index,
    logprobs,
  };
}

export function stopStrings(stop: string | string[] | null | undefined): string[] {
  return (typeof stop === "string" ? [stop] : (stop ?? [])).filter((s) => s.length > 0);
}

/** max_tokens after defaults and limits; prompt + completion must fit the context. */
export function tokenBudget(requested: number | null | undefined, fallback: number, promptTokens: number, contextLength: number, limits: Limits): number {
  const maxTokens = requested ?? Math.min(fallback, Math.max(0, contextLength - promptTokens));
  if (maxTokens > limits.maxTokensLimit) {
    throw invalidRequest(`max_tokens is ${maxTokens}, but this server allows at most ${limits.maxTokensLimit}`, "max_tokens");
  }
  if (promptTokens + maxTokens > contextLength || promptTokens >= contextLength) throw contextLengthExceeded(contextLength, promptTokens, maxTokens);
  return maxTokens;
}
