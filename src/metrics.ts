// Prometheus text exposition for /metrics: request counters, token counters, queue gauges and
// latency histograms. Small enough to write here; the edge runtimes have no prom-client.

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Token gaps are milliseconds: finer buckets. */
const TOKEN_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(private readonly buckets: number[] = BUCKETS) {
    this.counts = new Array(buckets.length).fill(0);
  }
  observe(seconds: number): void {
    this.buckets.forEach((b, i) => seconds <= b && this.counts[i]++);
    this.sum += seconds;
    this.count++;
  }
  render(name: string, labels = ""): string[] {
    const sep = labels ? "," : "";
    return [
      ...this.buckets.map((b, i) => `${name}_bucket{${labels}${sep}le="${b}"} ${this.counts[i]}`),
      `${name}_bucket{${labels}${sep}le="+Inf"} ${this.count}`,
      `${name}_sum{${labels}} ${this.sum}`,
      `${name}_count{${labels}} ${this.count}`,
    ];
  }
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly durations = new Map<string, Histogram>();
  private readonly ttft = new Histogram();
  private readonly itl = new Histogram(TOKEN_BUCKETS);

  /** Seconds from a generation request's arrival to its first token (per choice). */
  observeTimeToFirstToken(seconds: number): void {
    this.ttft.observe(seconds);
  }

  /** Seconds between two consecutive tokens of one choice. */
  observeInterTokenLatency(seconds: number): void {
    this.itl.observe(seconds);
  }

  observeRequest(route: string, status: number, seconds: number): void {
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    if (!this.durations.has(route)) this.durations.set(route, new Histogram());
    this.durations.get(route)!.observe(seconds);
  }

  render(heapBytes: number, backend?: { name: string; kernels: string | null }, engine?: { queued: number; running: number; promptTokens: number; fedPromptTokens: number; generatedTokens: number; reusedPromptTokens: number; steps: number }): string {
    const lines = ["# HELP tinylm_requests_total HTTP requests by route and status.", "# TYPE tinylm_requests_total counter"];
    for (const [labels, n] of this.requests) lines.push(`tinylm_requests_total{${labels}} ${n}`);
    lines.push("# HELP tinylm_request_duration_seconds Time to complete a request (streams: until the last event).");
    lines.push("# TYPE tinylm_request_duration_seconds histogram");
    for (const [route, h] of this.durations) lines.push(...h.render("tinylm_request_duration_seconds", `route="${route}"`));
    lines.push("# HELP tinylm_time_to_first_token_seconds From a generation request's arrival to each choice's first token.", "# TYPE tinylm_time_to_first_token_seconds histogram");
    lines.push(...this.ttft.render("tinylm_time_to_first_token_seconds"));
    lines.push("# HELP tinylm_inter_token_latency_seconds Between consecutive tokens of one choice.", "# TYPE tinylm_inter_token_latency_seconds histogram");
    lines.push(...this.itl.render("tinylm_inter_token_latency_seconds"));
    lines.push("# HELP tinylm_wasm_heap_bytes Size of the decoder's WebAssembly heap (our kernels' or onnxruntime-web's).", "# TYPE tinylm_wasm_heap_bytes gauge", `tinylm_wasm_heap_bytes ${heapBytes}`);
    if (backend) {
      lines.push("# HELP tinylm_engine_info The decoder backend: simd (our WASM kernels: relaxed-simd or simd128) or ort (onnxruntime-web).", "# TYPE tinylm_engine_info gauge");
      lines.push(`tinylm_engine_info{backend="${backend.name}",kernels="${backend.kernels ?? ""}"} 1`);
    }
    if (engine) {
      const gauge = (name: string, help: string, v: number, type = "gauge") =>
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${v}`);
      gauge("tinylm_queue_depth", "Requests waiting for a place in the batch.", engine.queued);
      gauge("tinylm_running_sequences", "Sequences being decoded.", engine.running);
      gauge("tinylm_prompt_tokens_total", "Prompt tokens processed.", engine.promptTokens, "counter");
      gauge("tinylm_prompt_tokens_reused_total", "Prompt tokens served from the prefix cache.", engine.reusedPromptTokens, "counter");
      gauge("tinylm_prompt_tokens_fed_total", "Prompt tokens run through the model (once per prompt, whatever its n).", engine.fedPromptTokens, "counter");
      gauge("tinylm_generated_tokens_total", "Tokens generated.", engine.generatedTokens, "counter");
      gauge("tinylm_decode_steps_total", "Batched steps (decode rows and prompt chunks together).", engine.steps, "counter");
    }
    return lines.join("\n") + "\n";
  }
}
