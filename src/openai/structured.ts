// Structured output (response_format): JSON mode and JSON-schema mode as per-choice decoding
// constraints. The vocabulary trie is built once per model; a schema is compiled once per request;
// each choice gets its own grammar state and the request's token budget, inside which the reply
// always closes (token-mask.ts); a budget that cannot hold the shortest valid reply is a 400.
import { schemaGrammar, UnsupportedSchema } from "../engine/constrain/json-schema.js";
import { GrammarConstraint, JSON_OBJECT, shortestBytes, TokenTrie, type Grammar } from "../engine/constrain/token-mask.js";
import type { LoadedModel } from "../model.js";
import { invalidRequest } from "./errors.js";
import type { ChatRequest, CompletionRequest } from "./schemas.js";

const tries = new WeakMap<LoadedModel, TokenTrie>();

/** The functions a forced tool call may name (tool_choice "required" or a named function), or null. */
export function forcedTools(req: ChatRequest): NonNullable<ChatRequest["tools"]> | null {
  const choice = req.tool_choice ?? (req.tools?.length ? "auto" : "none");
  if (choice !== "none" && !req.tools?.length) throw invalidRequest("tool_choice needs tools", "tool_choice");
  if (choice === "none" || choice === "auto") return null;
  if (req.response_format && req.response_format.type !== "text") {
    throw invalidRequest("response_format cannot be combined with a forced tool call (tool_choice required or a named function)", "response_format");
  }
  if (choice === "required") return req.tools!;
  const named = req.tools!.filter((t) => t.function.name === choice.function.name);
  if (!named.length) throw invalidRequest(`tool_choice names "${choice.function.name}", which is not in tools`, "tool_choice.function.name");
  return named;
}

/**
 * A forced tool call is generated as {"name": …, "arguments": {…}}: the name one of the tools', the
 * arguments valid against that tool's parameters (in the schema subset).
 */
function toolCallGrammar(tools: NonNullable<ChatRequest["tools"]>): Grammar<number[]> {
  return compile(() => ({
    anyOf: tools.map((t) => ({
      type: "object",
      properties: { name: { const: t.function.name }, arguments: t.function.parameters ?? { type: "object", properties: {} } },
      required: ["name", "arguments"],
      additionalProperties: false,
    })),
  }), (path) => path.replace(/^schema\.anyOf\.(\d+)\.properties\.arguments/, "tools.$1.function.parameters"));
}

/** A request's constraint, before its token budget is known. */
export interface StructuredOutput {
  /**
   * A factory of per-choice constraints that close the reply within `maxTokens` (end-of-text
   * included); a 400 naming `param` when no valid reply fits: the shortest takes up to one token per
   * byte (every byte is a token of a byte-level BPE vocabulary), plus the end-of-text.
   */
  within(maxTokens: number, param: string): () => GrammarConstraint<unknown>;
}

/**
 * The constraint for the request's response_format or forced tool call (the chat handler's
 * forcedTools(req)), or undefined for free text.
 */
export function constraintFor(req: ChatRequest | CompletionRequest, model: LoadedModel, tools: ReturnType<typeof forcedTools> = null): StructuredOutput | undefined {
  const format = req.response_format?.type ?? "text";
  if (format === "text" && !tools) return undefined;
  const grammar = (tools ? toolCallGrammar(tools) : format === "json_object" ? JSON_OBJECT : compileSchema(req.response_format as { json_schema?: unknown })) as Grammar<unknown>;
  const { tokenizer } = model;
  if (tokenizer.eosId === undefined) throw invalidRequest("structured output needs a model with an end-of-text token", "response_format");
  let trie = tries.get(model);
  if (!trie) tries.set(model, (trie = new TokenTrie(tokenizer)));
  const built = trie;
  const needed = shortestBytes(grammar) + 1;
  return {
    within(maxTokens, param) {
      if (maxTokens < needed) {
        const what = tools ? "call of the forced tool" : `reply valid under response_format ${format}`;
        throw invalidRequest(`${param} is ${maxTokens}, but the shortest ${what} takes up to ${needed} tokens (${needed - 1} bytes of JSON and the end-of-text): set ${param} to at least ${needed}`, param);
      }
      return () => new GrammarConstraint(grammar, built, maxTokens);
    },
  };
}

function compileSchema(format: { json_schema?: unknown }): Grammar<number[]> {
  const spec = format.json_schema as { name?: unknown; schema?: unknown } | undefined;
  if (typeof spec !== "object" || spec === null) throw invalidRequest("response_format.json_schema must be an object with a schema", "response_format.json_schema");
  if (typeof spec.name !== "string" || !/^[A-Za-z0-9_-]{1,64}$/.test(spec.name)) {
    throw invalidRequest("response_format.json_schema.name must be 1-64 letters, digits, _ or -", "response_format.json_schema.name");
  }
  return compile(() => spec.schema, (path) => `response_format.json_schema.${path}`);
}

/** Compile a schema; one outside the subset is a 400 whose param names the keyword's path. */
function compile(schema: () => unknown, param: (path: string) => string): Grammar<number[]> {
  try {
    return schemaGrammar(schema());
  } catch (err) {
    if (err instanceof UnsupportedSchema) throw invalidRequest(`${param(err.path)}: ${err.message.replace(/^[^:]*: /, "")}`, param(err.path));
    throw err;
  }
}
