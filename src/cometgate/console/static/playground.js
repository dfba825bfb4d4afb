// The playground: builds a chat request in the chosen dialect, sends it to the gateway's own
// model route with the operator's key, and shows the raw request, the raw streamed answer
// (server-sent events as they arrive) and the text they carry.
// The key is read from the input when sending and kept nowhere else.
"use strict";

const $ = (id) => document.getElementById(id);

function requestFor(dialect, model, message, maxTokens, key) {
  const user = message;
  if (dialect === "gemini") {
    return {
      url: `/v1beta/models/${encodeURIComponent(model)}:streamGenerateContent?alt=sse`,
      headers: { "content-type": "application/json", "x-goog-api-key": key },
      body: { contents: [{ role: "user", parts: [{ text: user }] }],
              generationConfig: { maxOutputTokens: maxTokens } },
    };
  }
  if (dialect === "anthropic") {
    return {
      url: "/v1/messages",
      headers: { "content-type": "application/json", "x-api-key": key,
                 "anthropic-version": "2023-06-01" },
      body: { model, max_tokens: maxTokens, stream: true,
              messages: [{ role: "user", content: user }] },
    };
  }
  return {
    url: "/v1/chat/completions",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: { model, stream: true, max_tokens: maxTokens,
            messages: [{ role: "user", content: user }] },
  };
}

function textOf(dialect, event) {
  if (dialect === "gemini") {
    const parts = event?.candidates?.[0]?.content?.parts ?? [];
    return parts.map((p) => (p.thought ? "" : p.text ?? "")).join("");
  }
  if (dialect === "anthropic") {
    return event?.type === "content_block_delta" ? event.delta?.text ?? "" : "";
  }
  return event?.choices?.[0]?.delta?.content ?? "";
}

function shown(request) {
  // The key is not echoed back onto the page.
  const headers = { ...request.headers };
  for (const name of ["authorization", "x-goog-api-key", "x-api-key"]) {
    if (headers[name]) headers[name] = "(your key)";
  }
  return `POST ${request.url}\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join("\n")}\n\n${JSON.stringify(request.body, null, 2)}`;
}

async function send(event) {
  event.preventDefault();
  const dialect = $("pg-dialect").value;
  const request = requestFor(dialect, $("pg-model").value, $("pg-message").value,
                             Number($("pg-max").value) || 64, $("pg-key").value.trim());
  $("pg-raw-request").textContent = shown(request);
  $("pg-raw-answer").textContent = "";
  $("pg-answer").textContent = "";
  $("pg-status").textContent = "Waiting for the first byte…";
  const response = await fetch(request.url, {
    method: "POST", headers: request.headers, body: JSON.stringify(request.body),
    credentials: "omit",  // the model route authenticates by the key alone
  });
  $("pg-status").textContent = `HTTP ${response.status}`;
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const chunk = decoder.decode(value, { stream: true });
    $("pg-raw-answer").textContent += chunk;
    pending += chunk;
    const lines = pending.split(/\r?\n/);
    pending = lines.pop();
    for (const line of lines) {
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (!data || data === "[DONE]") continue;
      try {
        $("pg-answer").textContent += textOf(dialect, JSON.parse(data));
      } catch (_) { /* a partial or non-JSON line: shown raw above */ }
    }
  }
  $("pg-status").textContent = `HTTP ${response.status}, done`;
  $("pg-status").dataset.done = "true";
}

async function temporaryKey() {
  const form = $("playground");
  const response = await fetch("/console/playground/key", {
    method: "POST", headers: { "x-csrf-token": form.dataset.csrf }, credentials: "same-origin",
  });
  if (!response.ok) {
    $("pg-key-note").textContent = `Could not create a key (HTTP ${response.status}).`;
    return;
  }
  const made = await response.json();
  $("pg-key").value = made.key;
  $("pg-key-note").textContent = `Key ${made.name} (${made.prefix}…) until ${made.expires_at}.`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("playground").addEventListener("submit", (event) => {
    send(event).catch((error) => { $("pg-status").textContent = `Failed: ${error}`; });
  });
  $("pg-temp-key").addEventListener("click", () => { temporaryKey(); });
});
