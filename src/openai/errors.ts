// OpenAI's error object: {"error": {"message", "type", "param", "code"}}, and the errors we raise.

export type ErrorType = "invalid_request_error" | "authentication_error" | "not_found_error" | "rate_limit_error" | "server_error" | "service_unavailable";

export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 404 | 405 | 413 | 415 | 429 | 500 | 503,
    message: string,
    readonly type: ErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toJSON() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const invalidRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, "invalid_request_error", param, code);

export const contextLengthExceeded = (limit: number, prompt: number, maxTokens: number) =>
  new ApiError(
    400,
    `This model's maximum context length is ${limit} tokens. However, you requested ${prompt + maxTokens} tokens ` +
      `(${prompt} in the prompt, ${maxTokens} for the completion). Please reduce the prompt or max_tokens.`,
    "invalid_request_error",
    "max_tokens",
    "context_length_exceeded",
  );

/** Input refused before encoding it: its byte length alone proves it holds more tokens than the context. */
export const promptTooLong = (limit: number, atLeast: number, param: string) =>
  new ApiError(
    400,
    `This model's maximum context length is ${limit} tokens. However, your ${param} holds at least ${atLeast} tokens. Please reduce it.`,
    "invalid_request_error",
    param,
    "context_length_exceeded",
  );

export const modelNotFound = (model: string) =>
  new ApiError(404, `The model '${model}' does not exist`, "invalid_request_error", "model", "model_not_found");
