// Turns a stream of token ids into text chunks that never split a multi-byte character:
// TextDecoder in streaming mode holds back an incomplete UTF-8 sequence until its last byte arrives.

export class StreamDecoder {
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

  constructor(private readonly tokenBytes: (id: number) => Uint8Array) {}

  /** Text completed by this token ("" while a character is still incomplete). */
  push(id: number): string {
    return this.utf8.decode(this.tokenBytes(id), { stream: true });
  }

  /** Whatever is still held back (a truncated character becomes U+FFFD). */
  flush(): string {
    return this.utf8.decode();
  }
}
