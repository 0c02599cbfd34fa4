// The playground: chat with an assistant on a new or existing thread. Each answer is a `stream: true`
// run read as it arrives (the same live endpoint the SDK's runs.stream() reads), so words show as the
// model writes them; Stop cancels the run; a function call waits for its output, typed in by hand.
import { api, el, events, path, renderer, showError } from "./core.js";
import { messageView, toolCall } from "./threads.js";

const ENDED = new Set(["completed", "failed", "cancelled", "incomplete", "expired"]);

export async function playgroundView(query) {
  const render = renderer();
  const assistants = (await api("/assistants?order=desc&limit=100")).data;
  let threadId = query.get("thread");
  const earlier = threadId ? (await api(path("threads", threadId) + "/messages?order=asc&limit=100")).data : [];
  if (!assistants.length) {
    render(el("h1", {}, "Playground"), el("p", {}, "No assistants yet: ", el("a", { href: "#/assistants/new" }, "create one"), " to chat with it."));
    return;
  }
  const chosen = query.get("assistant") || (earlier.find((message) => message.assistant_id) || {}).assistant_id;
  const picker = el(
    "select",
    { id: "playground-assistant" },
    assistants.map((assistant) =>
      el("option", { value: assistant.id, selected: assistant.id === chosen }, (assistant.name || "(unnamed)") + " · " + assistant.model + " · " + assistant.id),
    ),
  );
  const transcript = el("div", { id: "transcript", "aria-live": "polite" }, earlier.map(messageView));
  const prompt = el("textarea", { id: "prompt", rows: 3, placeholder: "Message (Enter sends, Shift+Enter starts a new line, Escape stops the answer)", "aria-label": "Message" });
  const send = el("button", { type: "submit", id: "send" }, "Send");
  const stop = el("button", { type: "button", id: "stop", disabled: true }, "Stop");
  const status = el("div", { id: "run-status", class: "meta", role: "status" });
  const threadLabel = el("span", { id: "thread-label", class: "meta" });
  const leaving = new AbortController(); // the stream is dropped when the user leaves the playground
  window.addEventListener("hashchange", () => leaving.abort(), { once: true });
  let runId = null;

  function showThread() {
    fresh.disabled = !threadId;
    threadLabel.replaceChildren(threadId ? el("a", { href: "#" + path("threads", threadId) }, "thread " + threadId) : "a new thread");
    const search = new URLSearchParams({ assistant: picker.value });
    if (threadId) search.set("thread", threadId);
    window.history.replaceState(null, "", "#/playground?" + search); // the address follows, with no re-routing
  }

  function running(yes) {
    send.disabled = yes;
    stop.disabled = !yes;
    fresh.disabled = yes || !threadId;
    if (!yes) prompt.focus();
  }

  async function play(route, body) {
    // shows one stream's events as they come; a run that needs tool outputs asks for them and goes on
    // in the stream their submission opens
    const live = { messages: new Map(), steps: new Map() };
    for await (const { event, data } of events(route, body, leaving.signal)) {
      if (event === "thread.created") {
        threadId = data.id;
        showThread();
      } else if (event.startsWith("thread.run.step.")) {
        showStep(live, event, data);
      } else if (event.startsWith("thread.run.")) {
        runId = data.id;
        status.replaceChildren(el("a", { href: "#" + path("threads", data.thread_id, "runs", data.id), class: "run-link" }, "run " + data.id), " ", el("span", { class: "status " + data.status }, data.status));
        if (data.last_error) status.append(" · " + data.last_error.code + ": " + data.last_error.message);
        if (data.status === "requires_action") askForOutputs(data);
        if (ENDED.has(data.status)) running(false);
      } else if (event === "thread.message.created") {
        const view = el("article", { class: "message assistant streaming", id: data.id }, el("div", {}, el("span", { class: "role" }, data.role)));
        live.messages.set(data.id, { view, parts: new Map() });
        transcript.append(view);
      } else if (event === "thread.message.delta") {
        showDelta(live.messages.get(data.id), data.delta);
      } else if (event === "thread.message.completed" || event === "thread.message.incomplete") {
        const shown = live.messages.get(data.id);
        if (shown) shown.view.replaceWith(messageView(data)); // now with its citations and images
      } else if (event === "error") {
        showError(data.message);
      }
    }
  }

  function showDelta(shown, delta) {
    if (!shown) return;
    for (const content of delta.content || []) {
      if (content.type !== "text") continue;
      let text = shown.parts.get(content.index);
      if (!text) {
        text = el("p", { class: "text" });
        shown.parts.set(content.index, text);
        shown.view.append(text);
      }
      text.append((content.text && content.text.value) || "");
    }
  }

  function showStep(live, event, data) {
    if (event === "thread.run.step.created" && data.step_details.type === "tool_calls") {
      const view = el("article", { class: "step", id: data.id }, el("div", { class: "meta" }, "tool calls"));
      live.steps.set(data.id, { view, calls: new Map() });
      transcript.append(view);
    } else if (event === "thread.run.step.delta") {
      const shown = live.steps.get(data.id);
      for (const call of (shown && data.delta.step_details && data.delta.step_details.tool_calls) || []) {
        let code = shown.calls.get(call.index);
        if (!code) {
          code = el("pre", { class: call.type === "function" ? "arguments" : "code" });
          shown.calls.set(call.index, code);
          shown.view.append(el("div", { class: "meta" }, call.type === "function" ? "function " + ((call.function || {}).name || "") : call.type), code);
        }
        code.append((call.code_interpreter && call.code_interpreter.input) || (call.function && call.function.arguments) || "");
      }
    } else if (event === "thread.run.step.completed" || event === "thread.run.step.cancelled" || event === "thread.run.step.failed") {
      const shown = live.steps.get(data.id);
      if (shown && data.step_details.type === "tool_calls") shown.view.replaceChildren(el("div", { class: "meta" }, "tool calls · " + data.status), data.step_details.tool_calls.map(toolCall));
    }
  }

  function askForOutputs(run) {
    const calls = run.required_action.submit_tool_outputs.tool_calls;
    const boxes = calls.map((call, index) =>
      el(
        "div",
        { class: "row" },
        el("label", { for: "output-" + index }, "Output of " + call.function.name + "(" + call.function.arguments + ")"),
        el("textarea", { id: "output-" + index, class: "tool-output", rows: 2, "data-call": call.id }),
      ),
    );
    const form = el(
      "form",
      {
        class: "tool-outputs",
        onsubmit: (event) => {
          event.preventDefault();
          const outputs = boxes.map((box) => {
            const area = box.querySelector("textarea");
            return { tool_call_id: area.dataset.call, output: area.value };
          });
          form.remove();
          go(path("threads", run.thread_id, "runs", run.id, "submit_tool_outputs"), { tool_outputs: outputs });
        },
      },
      el("div", { class: "meta" }, "The assistant called " + calls.length + (calls.length === 1 ? " function" : " functions") + ": answer as your app would."),
      boxes,
      el("button", { type: "submit", id: "submit-outputs" }, "Submit outputs"),
    );
    transcript.append(form);
    form.querySelector("textarea").focus();
  }

  async function go(route, body) {
    showError("");
    running(true);
    try {
      await play(route, body);
    } catch (error) {
      if (error.name !== "AbortError") showError(error.message);
    } finally {
      if (!document.querySelector("form.tool-outputs")) running(false);
      else send.disabled = true;
    }
  }

  const form = el(
    "form",
    {
      class: "chat",
      onsubmit: (event) => {
        event.preventDefault();
        const text = prompt.value;
        if (!text.trim() || send.disabled) return;
        prompt.value = "";
        transcript.append(el("article", { class: "message user" }, el("div", {}, el("span", { class: "role" }, "user")), el("p", { class: "text" }, text)));
        const message = { role: "user", content: text };
        const assistant = picker.value;
        if (threadId) go(path("threads", threadId, "runs"), { assistant_id: assistant, additional_messages: [message] });
        else go("/threads/runs", { assistant_id: assistant, thread: { messages: [message] } });
      },
    },
    prompt,
    el("div", { class: "actions" }, send, " ", stop, " ", status),
  );
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape" && !stop.disabled) {
      stop.click(); // Escape stops the answer, as Stop does
    }
  });
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    try {
      await api(path("threads", threadId, "runs", runId, "cancel"), { method: "POST" });
    } catch (error) {
      showError(error.message);
    }
  });
  picker.addEventListener("change", showThread);
  const fresh = el("button", { type: "button", id: "new-thread", disabled: true }, "New thread");
  fresh.addEventListener("click", () => {
    threadId = null;
    transcript.replaceChildren();
    status.replaceChildren();
    showThread();
    prompt.focus();
  });
  const shown = render(
    el("h1", {}, "Playground"),
    el("div", { class: "row inline" }, el("label", { for: "playground-assistant" }, "Assistant "), picker, " · ", threadLabel, " · ", fresh),
    transcript,
    form,
  );
  if (!shown) return; // the user has moved on
  showThread();
  prompt.focus();
}
