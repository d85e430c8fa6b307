// Chat messages → prompt text through the model's Jinja chat template (tokenizer_config.json),
// rendered with @huggingface/jinja, the engine transformers.js uses.
import { Template } from "@huggingface/jinja";
import type { ChatMessage } from "./schemas.js";

/** Used when tokenizer_config.json has no chat_template: "Role: content" paragraphs, then "Assistant:". */
export const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n\n{% endfor %}" +
  "{% if add_generation_prompt %}Assistant:{% endif %}";

export class ChatTemplate {
  private readonly template: Template;

  constructor(source: string | undefined, private readonly specials: { bos_token?: string; eos_token?: string } = {}) {
    this.template = new Template(source ?? DEFAULT_CHAT_TEMPLATE);
  }

  /** Messages as the template sees them: roles kept (developer as system), content as plain text. */
  render(messages: ChatMessage[]): string {
    const plain = messages.map((m) => ({
      role: m.role === "developer" ? "system" : m.role,
      content: textOf(m.content),
      ...("name" in m && m.name ? { name: m.name } : {}),
      ...("tool_calls" in m && m.tool_calls ? { tool_calls: m.tool_calls } : {}),
      ...("tool_call_id" in m ? { tool_call_id: m.tool_call_id } : {}),
    }));
    return this.template.render({ messages: plain, add_generation_prompt: true, ...this.specials });
  }
}

/** A message's text: a string, or its text parts joined (a refusal part counts as text). */
function textOf(content: ChatMessage["content"]): string {
  if (typeof content === "string") return content;
  return (content ?? []).map((p) => p.text ?? p.refusal ?? "").join("");
}

/** The first content part this text-only model cannot read, as [message index, part index, type]. */
export function unreadablePart(messages: ChatMessage[]): [number, number, string] | null {
  for (const [i, m] of messages.entries()) {
    if (!Array.isArray(m.content)) continue;
    for (const [j, part] of m.content.entries()) {
      const ok = part.type === "text" ? typeof part.text === "string" : part.type === "refusal" && m.role === "assistant" && typeof part.refusal === "string";
      if (!ok) return [i, j, part.type];
    }
  }
  return null;
}
