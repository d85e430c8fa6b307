// The playground page at GET /: one dependency-free HTML file that talks to the server's own
// /v1 API over SSE, exactly as any client would. Served with a strict Content-Security-Policy.

const PLAYGROUND_CSP =
  "default-src 'none'; script-src 'sha256-PLACEHOLDER'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const SCRIPT = String.raw`
const $ = (id) => document.getElementById(id);
const out = $("output"), status = $("status");
let controller = null;
function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("apikey").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}
function say(text, isError) { status.textContent = text; status.className = isError ? "error" : ""; }
async function errorText(res) {
  try { const j = await res.json(); return res.status + ": " + (j.error && j.error.message || res.statusText); }
  catch { return res.status + ": " + res.statusText; }
}
async function loadCard() {
  try {
    const res = await fetch("/v1/models", { headers: headers() });
    if (res.status === 401) { $("keyrow").hidden = false; say("This server needs an API key.", true); return; }
    if (!res.ok) { say(await errorText(res), true); return; }
    const m = (await res.json()).data[0];
    window.modelId = m.id;
    const p = m.meta && m.meta.parameters, q = m.meta && m.meta.quantization;
    $("card").textContent = m.id + " · " + (p && p.total ? (p.total / 1e6).toFixed(1) + "M parameters · " : "") +
      "vocabulary " + (m.meta ? m.meta.vocabulary : "?") + (q ? " · " + q.split(",")[0] : "");
  } catch (e) { say("Cannot reach the server: " + e.message, true); }
}
async function run() {
  if (controller) return;
  const chat = $("mode").value === "chat";
  const body = {
    model: window.modelId || "", stream: true, max_tokens: Number($("max_tokens").value),
    temperature: Number($("temperature").value), top_p: Number($("top_p").value),
  };
  const stop = $("stop").value;
  if (stop) body.stop = stop.split("|").filter(Boolean).slice(0, 4);
  if (chat) body.messages = [{ role: "user", content: $("prompt").value }]; else body.prompt = $("prompt").value;
  out.textContent = "";
  controller = new AbortController();
  $("start").disabled = true; $("stopbtn").disabled = false;
  const t0 = performance.now(); let first = 0, tokens = 0;
  say("Generating…");
  try {
    const res = await fetch(chat ? "/v1/chat/completions" : "/v1/completions",
      { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!res.ok) { say(await errorText(res), true); return; }
    const reader = res.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, i); buf = buf.slice(i + 2);
        const data = event.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (!data || data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) { say("Error: " + j.error.message, true); continue; }
        const c = j.choices && j.choices[0];
        const text = c ? (chat ? (c.delta && c.delta.content) || "" : c.text) : "";
        if (text) {
          if (!first) first = performance.now();
          tokens++;
          out.textContent += text;
        }
        const secs = (performance.now() - (first || t0)) / 1000;
        $("ttft").textContent = first ? Math.round(first - t0) + " ms" : "–";
        $("tokens").textContent = tokens;
        $("rate").textContent = tokens > 1 && secs > 0 ? ((tokens - 1) / secs).toFixed(1) : "–";
      }
    }
    say("Done.");
  } catch (e) {
    say(e.name === "AbortError" ? "Stopped." : "Error: " + e.message, e.name !== "AbortError");
  } finally {
    controller = null; $("start").disabled = false; $("stopbtn").disabled = true;
  }
}
$("start").addEventListener("click", run);
$("stopbtn").addEventListener("click", () => controller && controller.abort());
$("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) run(); });
$("apikey").addEventListener("change", loadCard);
loadCard();
`;

async function sha256Base64(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

export const PLAYGROUND_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinylm-edge playground</title>
<style>
  :root { font-family: system-ui, sans-serif; color-scheme: light dark; }
  body { max-width: 52rem; margin: 0 auto; padding: 1rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .25rem; }
  #card { color: GrayText; margin: 0 0 1rem; font-size: .9rem; }
  label { display: block; font-size: .85rem; margin-bottom: .2rem; }
  textarea { width: 100%; box-sizing: border-box; min-height: 6rem; font: inherit; }
  .controls { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .6rem; margin: .6rem 0; }
  input, select { width: 100%; box-sizing: border-box; font: inherit; }
  button { font: inherit; padding: .4rem 1rem; margin-right: .4rem; }
  #output { white-space: pre-wrap; border: 1px solid GrayText; border-radius: 4px; padding: .6rem; min-height: 6rem; margin-top: .6rem; }
  #figures { display: flex; gap: 1.2rem; font-size: .85rem; margin-top: .4rem; flex-wrap: wrap; }
  .error { color: #c62828; }
  :focus-visible { outline: 2px solid Highlight; outline-offset: 2px; }
</style>
</head>
<body>
<main>
<h1>tinylm-edge playground</h1>
<p id="card">loading model facts…</p>
<div id="keyrow" hidden><label for="apikey">API key</label><input id="apikey" type="password" autocomplete="off"></div>
<label for="prompt">Prompt</label>
<textarea id="prompt">Once upon a time, in a little village by the sea,</textarea>
<div class="controls">
  <div><label for="mode">Mode</label><select id="mode"><option value="completion">Completion</option><option value="chat">Chat</option></select></div>
  <div><label for="max_tokens">Max tokens</label><input id="max_tokens" type="number" min="1" max="2048" value="128"></div>
  <div><label for="temperature">Temperature</label><input id="temperature" type="number" min="0" max="2" step="0.1" value="0.8"></div>
  <div><label for="top_p">Top-p</label><input id="top_p" type="number" min="0.01" max="1" step="0.05" value="0.95"></div>
  <div><label for="stop">Stop (separate with |)</label><input id="stop" type="text"></div>
</div>
<button id="start" type="button">Generate</button><button id="stopbtn" type="button" disabled>Stop</button>
<div id="status" role="status" aria-live="polite"></div>
<div id="output" aria-live="polite" aria-label="Model output"></div>
<div id="figures">
  <span>Time to first token: <b id="ttft">–</b></span>
  <span>Tokens/s: <b id="rate">–</b></span>
  <span>Tokens: <b id="tokens">0</b></span>
</div>
</main>
<script>${SCRIPT}</script>
</body>
</html>`;

/** The CSP allows exactly this page's inline script, by hash. */
export const playgroundCsp = sha256Base64(SCRIPT).then((h) => PLAYGROUND_CSP.replace("sha256-PLACEHOLDER", `sha256-${h}`));
