// The Spindle Console: plain JavaScript, no build. It calls the same /v1 API as the SDK with the key
// the user pastes, kept in this tab's session storage only. Everything that came from users (messages,
// metadata, filenames) is put in the page as text (textContent, never innerHTML), so none of it runs.
"use strict";

const KEY = "spindle.apiKey";
const main = () => document.getElementById("main");

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "onclick" || name === "onsubmit") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function render(...children) {
  // the page's main part, replaced: nested lists flattened, nothing shown for null
  main().replaceChildren(...children.flat(2).filter((child) => child !== null && child !== undefined));
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY);
  const response = await fetch("/v1" + path, {
    ...options,
    headers: { Authorization: "Bearer " + key, "OpenAI-Beta": "assistants=v2", ...(options.headers || {}) },
  });
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try {
      message = (await response.json()).error.message || message;
    } catch (ignored) {}
    throw new Error(message);
  }
  return options.raw ? response : response.json();
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

function keyView() {
  const input = el("input", { id: "key", type: "password", autocomplete: "off", "aria-label": "API key" });
  const form = el(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        location.hash = "#/threads";
      },
    },
    el("p", {}, "Paste an API key. It stays in this browser tab and is sent only to this server's /v1 API."),
    input,
    " ",
    el("button", { type: "submit", id: "use-key" }, "Use key"),
  );
  render(el("h1", {}, "API key"), form);
  input.focus();
}

async function threadsView(after) {
  const query = "?limit=20&order=desc" + (after ? "&after=" + encodeURIComponent(after) : "");
  const page = await api("/threads" + query);
  const rows = page.data.map((thread) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: "#/threads/" + encodeURIComponent(thread.id), class: "thread" }, thread.id)),
      el("td", {}, when(thread.created_at)),
      el("td", {}, JSON.stringify(thread.metadata || {})),
    ),
  );
  const more = page.has_more
    ? el("a", { href: "#/threads?after=" + encodeURIComponent(page.last_id), id: "more" }, "Older threads")
    : null;
  render(
    el("h1", {}, "Threads"),
    rows.length
      ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Thread"), el("th", {}, "Created"), el("th", {}, "Metadata"))), el("tbody", {}, rows))
      : el("p", {}, "No threads yet."),
    more,
  );
}

async function imageOf(fileId) {
  const image = el("img", { alt: "image " + fileId });
  api("/files/" + encodeURIComponent(fileId) + "/content", { raw: true })
    .then((response) => response.blob())
    .then((blob) => (image.src = URL.createObjectURL(blob)))
    .catch((error) => image.replaceWith(el("span", { class: "meta" }, "[image " + fileId + ": " + error.message + "]")));
  return image;
}

async function part(content) {
  if (content.type === "text") {
    const notes = (content.text.annotations || []).map((note) =>
      el("li", { class: "meta" }, note.type + " " + note.text + " → " + ((note.file_citation || note.file_path || {}).file_id || "")),
    );
    return [el("p", { class: "text" }, content.text.value), notes.length ? el("ul", {}, notes) : null];
  }
  if (content.type === "image_file") return imageOf(content.image_file.file_id);
  if (content.type === "image_url") return el("span", { class: "meta" }, "[image " + content.image_url.url + "]");
  return el("span", { class: "meta" }, "[" + content.type + "]");
}

async function threadView(threadId) {
  const thread = await api("/threads/" + encodeURIComponent(threadId));
  const page = await api("/threads/" + encodeURIComponent(threadId) + "/messages?order=asc&limit=100");
  const messages = [];
  for (const message of page.data) {
    const parts = [];
    for (const content of message.content) parts.push(await part(content));
    messages.push(
      el(
        "article",
        { class: "message", id: message.id },
        el(
          "div",
          {},
          el("span", { class: "role" }, message.role),
          " ",
          el("span", { class: "meta" }, when(message.created_at)),
          message.run_id
            ? [" · ", el("a", { href: "#/threads/" + encodeURIComponent(threadId) + "/runs/" + encodeURIComponent(message.run_id), class: "run-link" }, "run " + message.run_id)]
            : null,
        ),
        parts,
        (message.attachments || []).map((attachment) => el("div", { class: "meta" }, "attachment " + attachment.file_id)),
      ),
    );
  }
  render(
    el("h1", {}, "Thread " + thread.id),
    el("p", { class: "meta" }, "Created " + when(thread.created_at) + " · metadata " + JSON.stringify(thread.metadata || {})),
    messages.length ? messages : el("p", {}, "No messages."),
  );
}

const LIVE = new Set(["queued", "in_progress", "requires_action", "cancelling"]);
const INCLUDE = "include[]=" + encodeURIComponent("step_details.tool_calls[*].file_search.results[*].content");

function field(name, value) {
  return value === null || value === undefined || value === ""
    ? null
    : el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, typeof value === "string" ? value : JSON.stringify(value)));
}

async function toolCall(call) {
  if (call.type === "function") {
    return el(
      "div",
      { class: "call" },
      el("div", { class: "meta" }, "function " + call.function.name + " · " + call.id),
      el("pre", { class: "arguments" }, call.function.arguments),
      call.function.output === null ? el("div", { class: "meta" }, "waiting for its output") : el("pre", { class: "output" }, call.function.output),
    );
  }
  if (call.type === "file_search") {
    const results = (call.file_search.results || []).map((result) =>
      el(
        "li",
        {},
        el("span", {}, result.file_name + " (" + result.file_id + "), score " + result.score),
        (result.content || []).map((content) => el("pre", {}, content.text)),
      ),
    );
    return el("div", { class: "call" }, el("div", { class: "meta" }, "file_search · " + call.id), el("ol", {}, results));
  }
  if (call.type === "code_interpreter") {
    const outputs = [];
    for (const output of call.code_interpreter.outputs || []) {
      outputs.push(output.type === "logs" ? el("pre", { class: "logs" }, output.logs) : await imageOf(output.image.file_id));
    }
    return el(
      "div",
      { class: "call" },
      el("div", { class: "meta" }, "code_interpreter · " + call.id),
      el("pre", { class: "code" }, call.code_interpreter.input),
      outputs,
    );
  }
  return el("div", { class: "meta" }, call.type);
}

async function stepView(step) {
  const details = step.step_details;
  const body =
    details.type === "message_creation"
      ? el("div", { class: "meta" }, "message " + details.message_creation.message_id)
      : await Promise.all((details.tool_calls || []).map(toolCall));
  return el(
    "article",
    { class: "step", id: step.id },
    el("div", {}, el("strong", {}, details.type === "tool_calls" ? "Tool calls" : "Message"), " ", el("span", { class: "status " + step.status }, step.status), " ", el("span", { class: "meta" }, when(step.created_at) + " · " + step.id)),
    step.last_error ? el("div", { class: "error" }, step.last_error.code + ": " + step.last_error.message) : null,
    body,
  );
}

async function runView(threadId, runId) {
  const base = "/threads/" + encodeURIComponent(threadId) + "/runs/" + encodeURIComponent(runId);
  const run = await api(base);
  const steps = await api(base + "/steps?order=asc&limit=100&" + INCLUDE);
  const rows = [
    field("Status", run.status),
    field("Assistant", run.assistant_id),
    field("Model", run.model),
    field("Created", when(run.created_at)),
    field("Started", when(run.started_at)),
    field("Completed", when(run.completed_at)),
    field("Failed", when(run.failed_at)),
    field("Cancelled", when(run.cancelled_at)),
    field("Usage", run.usage),
    field("Last error", run.last_error && run.last_error.code + ": " + run.last_error.message),
    field("Incomplete", run.incomplete_details),
    field("Tools", (run.tools || []).map((tool) => tool.type === "function" ? tool.function.name : tool.type).join(", ")),
  ];
  const stepViews = await Promise.all(steps.data.map(stepView));
  render(
    el("h1", {}, "Run " + run.id),
    el("p", {}, el("a", { href: "#/threads/" + encodeURIComponent(threadId) }, "← thread " + threadId)),
    el("table", { class: "run" }, el("tbody", {}, rows)),
    el("h2", {}, "Steps"),
    stepViews.length ? stepViews : el("p", {}, "No steps yet."),
  );
  if (LIVE.has(run.status)) {
    const shown = location.hash;
    setTimeout(() => location.hash === shown && route(), 1000);  // a live run updates as it changes
  }
}

async function route() {
  showError("");
  const hash = location.hash || "#/threads";
  if (!sessionStorage.getItem(KEY) || hash === "#/key") return keyView();
  try {
    const [path, query] = hash.slice(1).split("?");
    const parts = path.split("/").filter(Boolean);
    if (parts[0] === "threads" && parts[1] && parts[2] === "runs" && parts[3]) {
      return await runView(decodeURIComponent(parts[1]), decodeURIComponent(parts[3]));
    }
    if (parts[0] === "threads" && parts[1]) return await threadView(decodeURIComponent(parts[1]));
    return await threadsView(new URLSearchParams(query || "").get("after"));
  } catch (error) {
    showError(error.message);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
