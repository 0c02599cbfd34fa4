// Threads, a thread's messages, and a run with its steps.
import { api, details, el, field, imageOf, newestFirst, olderLink, path, refreshWhile, renderer, status, table, toolNames, when } from "./core.js";

export async function threadsView(query) {
  const render = renderer();
  const user = query.get("user") || "";
  const filters = user ? { user } : {};
  const page = await newestFirst("/threads", query.get("after"), 20, filters);
  const rows = page.data.map((thread) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: "#/threads/" + encodeURIComponent(thread.id), class: "thread" }, thread.id)),
      el("td", {}, when(thread.created_at)),
      el("td", {}, JSON.stringify(thread.metadata || {})),
    ),
  );
  const filter = el("input", { id: "user-filter", name: "user", value: user, placeholder: "metadata.user", "aria-label": "Only the threads of user" });
  const form = el(
    "form",
    { class: "inline", onsubmit: (event) => (event.preventDefault(), (location.hash = "#/threads" + (filter.value.trim() ? "?user=" + encodeURIComponent(filter.value.trim()) : ""))) },
    el("label", { for: "user-filter" }, "User "),
    filter,
    " ",
    el("button", { type: "submit" }, "Filter"),
  );
  render(
    el("h1", {}, "Threads"),
    form,
    rows.length ? table(["Thread", "Created", "Metadata"], rows, { class: "list" }) : el("p", {}, user ? "No threads of this user." : "No threads yet."),
    olderLink("#/threads", page, "Older threads", filters),
  );
}

function textWithCitations(text) {
  // the text with each annotation made a link to its file: a file_citation's marker (【4:0†source】, as
  // the model wrote it) shown as a numbered citation [n] with the file it cites listed below, a
  // file_path's text (the sandbox link) kept as it is. Annotations are found by their text, in order,
  // so offsets counted in other units than JavaScript's cannot misplace them.
  const pieces = [];
  const cited = new Map(); // file id -> its number
  let cursor = 0;
  for (const note of text.annotations || []) {
    const at = text.value.indexOf(note.text, cursor);
    const file = (note.file_citation || note.file_path || {}).file_id;
    if (at < 0 || !file || !note.text) continue;
    pieces.push(text.value.slice(cursor, at));
    const href = "#" + path("files", file);
    if (note.type === "file_citation") {
      if (!cited.has(file)) cited.set(file, cited.size + 1);
      const number = cited.get(file);
      pieces.push(el("a", { href, class: "citation", title: note.text, "aria-label": "source " + number }, "[" + number + "]"));
    } else {
      pieces.push(el("a", { href, class: "file-path", title: file }, note.text));
    }
    cursor = at + note.text.length;
  }
  pieces.push(text.value.slice(cursor));
  const sources = [...cited].map(([file, number]) => {
    const name = el("a", { href: "#" + path("files", file) }, file);
    api(path("files", file)).then((found) => (name.textContent = found.filename + " (" + file + ")"), () => {}); // a deleted file keeps its id
    return el("li", { value: number }, name);
  });
  return [el("p", { class: "text" }, pieces), sources.length ? el("ol", { class: "sources meta" }, sources) : null];
}

function imageAt(url) {
  // an image_url's preview. A data:image/ address is shown at once; an https: one only when the user
  // asks (loading it would tell its server who looks at the thread, and when); any other address is
  // shown as its text, and the page's policy loads images from nowhere else.
  if (/^data:image\//i.test(url)) return el("img", { src: url, alt: "image from a data URL" });
  let host = "";
  try {
    if (/^https:\/\//i.test(url)) host = new URL(url).host;
  } catch (invalid) {} // an address with no host: shown as text
  if (!host) return el("span", { class: "meta" }, "[image " + url + "]");
  const load = el("button", { type: "button", class: "load-image" }, "Show the image from " + host);
  load.addEventListener("click", () => load.replaceWith(el("img", { src: url, alt: "image from " + url, referrerpolicy: "no-referrer" })));
  return el("span", { class: "image-url" }, el("span", { class: "meta" }, "[image " + url + "] "), load);
}

export function part(content) {
  if (content.type === "text") return textWithCitations(content.text);
  if (content.type === "image_file") return imageOf(content.image_file.file_id);
  if (content.type === "image_url") return imageAt(content.image_url.url);
  return el("span", { class: "meta" }, "[" + content.type + "]");
}

export function messageView(message) {
  const thread = message.thread_id;
  return el(
    "article",
    { class: "message " + message.role, id: message.id },
    el(
      "div",
      {},
      el("span", { class: "role" }, message.role),
      " ",
      el("span", { class: "meta" }, when(message.created_at)),
      message.run_id
        ? [" · ", el("a", { href: "#" + path("threads", thread, "runs", message.run_id), class: "run-link" }, "run " + message.run_id)]
        : null,
    ),
    message.content.map(part),
    (message.attachments || []).map((attachment) =>
      el("div", { class: "meta" }, "attachment ", el("a", { href: "#" + path("files", attachment.file_id) }, attachment.file_id)),
    ),
  );
}

export async function newestMessages(threadId, after) {
  // a thread's newest 100 messages (older than `after`, if given), oldest first
  const page = await newestFirst(path("threads", threadId) + "/messages", after);
  return { ...page, data: [...page.data].reverse() };
}

export async function threadView(threadId, query) {
  const render = renderer();
  const after = query.get("after");
  const thread = await api(path("threads", threadId));
  const page = await newestMessages(threadId, after);
  render(
    el("h1", {}, "Thread " + thread.id),
    el(
      "p",
      { class: "meta" },
      "Created " + when(thread.created_at) + " · metadata " + JSON.stringify(thread.metadata || {}) + " · ",
      el("a", { href: "#/playground?thread=" + encodeURIComponent(thread.id), id: "continue" }, "Continue in the playground"),
    ),
    olderLink("#" + path("threads", threadId), page, "Older messages"),
    page.data.length ? page.data.map(messageView) : el("p", {}, "No messages."),
    after ? el("p", {}, el("a", { href: "#" + path("threads", threadId) }, "Newest messages")) : null,
  );
}

const LIVE = new Set(["queued", "in_progress", "requires_action", "cancelling"]);
const INCLUDE = "include[]=" + encodeURIComponent("step_details.tool_calls[*].file_search.results[*].content");

export function toolCall(call) {
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
        el("span", {}, result.file_name + " (", el("a", { href: "#" + path("files", result.file_id) }, result.file_id), "), score " + result.score),
        (result.content || []).map((content) => el("pre", {}, content.text)),
      ),
    );
    return el("div", { class: "call" }, el("div", { class: "meta" }, "file_search · " + call.id), el("ol", {}, results));
  }
  if (call.type === "code_interpreter") {
    return el(
      "div",
      { class: "call" },
      el("div", { class: "meta" }, "code_interpreter · " + call.id),
      el("pre", { class: "code" }, call.code_interpreter.input),
      (call.code_interpreter.outputs || []).map((output) => (output.type === "logs" ? el("pre", { class: "logs" }, output.logs) : imageOf(output.image.file_id))),
    );
  }
  return el("div", { class: "meta" }, call.type);
}

function stepView(step) {
  const details = step.step_details;
  return el(
    "article",
    { class: "step", id: step.id },
    el(
      "div",
      {},
      el("strong", {}, details.type === "tool_calls" ? "Tool calls" : "Message"),
      " ",
      status(step.status),
      " ",
      el("span", { class: "meta" }, when(step.created_at) + " · " + step.id),
    ),
    step.last_error ? el("div", { class: "error" }, step.last_error.code + ": " + step.last_error.message) : null,
    details.type === "message_creation"
      ? el("div", { class: "meta" }, "message " + details.message_creation.message_id)
      : (details.tool_calls || []).map(toolCall),
  );
}

export async function runView(threadId, runId) {
  const render = renderer();
  const base = path("threads", threadId, "runs", runId);
  const run = await api(base);
  const steps = await api(base + "/steps?order=asc&limit=100&" + INCLUDE);
  refreshWhile(LIVE.has(run.status)); // a live run updates as it changes
  if (render.unchanged([run, steps])) return; // nothing new: what is shown stays as it is
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
    field("Tools", toolNames(run.tools)),
  ];
  render(
    el("h1", {}, "Run " + run.id),
    el("p", {}, el("a", { href: "#" + path("threads", threadId) }, "← thread " + threadId)),
    details("run", rows),
    el("h2", {}, "Steps"),
    steps.data.length ? steps.data.map(stepView) : el("p", {}, "No steps yet."),
    steps.has_more ? el("p", { class: "meta" }, "The first 100 steps are shown.") : null,
  );
}
