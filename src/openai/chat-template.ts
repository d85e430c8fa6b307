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

  render(messages: ChatMessage[]): string {
    const plain = messages.map((m) => ({
      role: m.role === "developer" ? "system" : m.role,
      content: typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text).join(""),
    }));
    return this.template.render({ messages: plain, add_generation_prompt: true, ...this.specials });
  }
}
