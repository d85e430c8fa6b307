// Structured output (response_format): JSON mode as a per-choice decoding constraint. The vocabulary
// trie is built once per model; each choice gets its own grammar state.
import { JsonConstraint, TokenTrie } from "../engine/token-mask.js";
import type { LoadedModel } from "../model.js";
import { invalidRequest } from "./errors.js";
import type { ChatRequest, CompletionRequest } from "./schemas.js";

const tries = new WeakMap<LoadedModel, TokenTrie>();

/** A factory of per-choice constraints for the request's response_format, or undefined for text. */
export function constraintFor(req: ChatRequest | CompletionRequest, model: LoadedModel): (() => JsonConstraint) | undefined {
  const format = req.response_format?.type ?? "text";
  if (format === "text") return undefined;
  if (format === "json_schema") {
    throw invalidRequest("response_format json_schema is not supported yet: use {\"type\": \"json_object\"} (output that always parses as a JSON object)", "response_format.type");
  }
  const { tokenizer } = model;
  if (tokenizer.eosId === undefined) throw invalidRequest("JSON mode needs a model with an end-of-text token", "response_format");
  let trie = tries.get(model);
  if (!trie) {
    trie = new TokenTrie(tokenizer.vocabSize, (id) => tokenizer.tokenBytes(id), tokenizer.eosId, (id) => tokenizer.isSpecial(id));
    tries.set(model, trie);
  }
  const built = trie;
  return () => new JsonConstraint(built, (id) => tokenizer.tokenBytes(id));
}
