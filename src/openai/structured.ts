// Structured output (response_format): JSON mode and JSON-schema mode as per-choice decoding
// constraints. The vocabulary trie is built once per model; a schema is compiled once per request;
// each choice gets its own grammar state.
import { schemaGrammar, UnsupportedSchema } from "../engine/json-schema.js";
import { GrammarConstraint, JSON_OBJECT, TokenTrie, type Grammar } from "../engine/token-mask.js";
import type { LoadedModel } from "../model.js";
import { invalidRequest } from "./errors.js";
import type { ChatRequest, CompletionRequest } from "./schemas.js";

const tries = new WeakMap<LoadedModel, TokenTrie>();

/** A factory of per-choice constraints for the request's response_format, or undefined for text. */
export function constraintFor(req: ChatRequest | CompletionRequest, model: LoadedModel): (() => GrammarConstraint<unknown>) | undefined {
  const format = req.response_format?.type ?? "text";
  if (format === "text") return undefined;
  const grammar = (format === "json_object" ? JSON_OBJECT : compileSchema(req.response_format as { json_schema?: unknown })) as Grammar<unknown>;
  const { tokenizer } = model;
  if (tokenizer.eosId === undefined) throw invalidRequest("structured output needs a model with an end-of-text token", "response_format");
  let trie = tries.get(model);
  if (!trie) {
    trie = new TokenTrie(tokenizer.vocabSize, (id) => tokenizer.tokenBytes(id), tokenizer.eosId, (id) => tokenizer.isSpecial(id));
    tries.set(model, trie);
  }
  const built = trie;
  return () => new GrammarConstraint(grammar, built, (id) => tokenizer.tokenBytes(id));
}

function compileSchema(format: { json_schema?: unknown }): Grammar<number[]> {
  const spec = format.json_schema as { name?: unknown; schema?: unknown } | undefined;
  if (typeof spec !== "object" || spec === null) throw invalidRequest("response_format.json_schema must be an object with a schema", "response_format.json_schema");
  if (typeof spec.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(spec.name)) {
    throw invalidRequest("response_format.json_schema.name must be 1-64 letters, digits, _ or -", "response_format.json_schema.name");
  }
  try {
    return schemaGrammar(spec.schema);
  } catch (err) {
    if (err instanceof UnsupportedSchema) throw invalidRequest(`response_format.json_schema.${err.message}`, `response_format.json_schema.${err.path}`);
    throw err;
  }
}
