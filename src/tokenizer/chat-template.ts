// Chat messages → prompt text through the model's Jinja chat template (tokenizer_config.json),
// rendered with @huggingface/jinja, the engine transformers.js uses. Tokenizer configuration: it knows
// nothing of HTTP (openai/chat.ts turns API messages into these).
import { Template } from "@huggingface/jinja";

/** A message as chat templates read it (Hugging Face's convention): plain-text content. */
export interface TemplateMessage {
  role: string;
  content: string;
  name?: string;
  tool_calls?: unknown[];
  tool_call_id?: string;
}

/** Used when tokenizer_config.json has no chat_template: "Role: content" paragraphs, then "Assistant:". */
const DEFAULT_CHAT_TEMPLATE =
  "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n\n{% endfor %}" +
  "{% if add_generation_prompt %}Assistant:{% endif %}";

export class ChatTemplate {
  private readonly template: Template;

  constructor(source: string | undefined, private readonly specials: { bos_token?: string; eos_token?: string } = {}) {
    this.template = new Template(source ?? DEFAULT_CHAT_TEMPLATE);
  }

  /** The prompt for these messages (and the tools offered, for templates that show them), ending where the assistant's reply begins. */
  render(messages: TemplateMessage[], tools?: unknown[]): string {
    return this.template.render({ messages, add_generation_prompt: true, ...(tools?.length ? { tools } : {}), ...this.specials });
  }
}
