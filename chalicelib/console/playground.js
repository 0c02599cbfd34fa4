// The playground: chat with an assistant on a new or existing thread. Each answer is a `stream: true`
// run read as it arrives (the same live endpoint the SDK's runs.stream() reads), so words show as the
// model writes them; Stop (or Escape) cancels the run; a function call waits for its output, typed in
// by hand.
import { api, el, events, newestFirst, path, renderer, showError, status as runStatus } from "./core.js";
import { messageView, newestMessages, toolCall } from "./threads.js";

const ENDED = new Set(["completed", "failed", "cancelled", "incomplete", "expired"]);
const STEP_ENDED = new Set(["thread.run.step.completed", "thread.run.step.cancelled", "thread.run.step.failed", "thread.run.step.expired"]);

async function assistantsFor(asked, lastAnswered) {
  // the newest 100 assistants, and the one to preselect wherever it is in the list: the one the address
  // asks for (an unknown one is an error), else the one that last answered in the thread (if it still
  // exists), else the newest
  const assistants = (await newestFirst("/assistants")).data;
  const listed = (id) => assistants.some((assistant) => assistant.id === id);
  if (asked && !listed(asked)) assistants.unshift(await api(path("assistants", asked)));
  if (!asked && lastAnswered && !listed(lastAnswered)) {
    const found = await api(path("assistants", lastAnswered)).catch(() => null); // deleted since
    if (found) assistants.unshift(found);
  }
  return assistants;
}

export async function playgroundView(query) {
  const render = renderer();
  let threadId = query.get("thread");
  const earlier = threadId ? await newestMessages(threadId) : { data: [], has_more: false };
  const lastAnswer = [...earlier.data].reverse().find((message) => message.assistant_id);
  const assistants = await assistantsFor(query.get("assistant"), lastAnswer && lastAnswer.assistant_id);
  const chosen = query.get("assistant") || (lastAnswer && lastAnswer.assistant_id);
  if (!assistants.length) {
    render(el("h1", {}, "Playground"), el("p", {}, "No assistants yet: ", el("a", { href: "#/assistants/new" }, "create one"), " to chat with it."));
    return;
  }
  const picker = el(
    "select",
    { id: "playground-assistant" },
    assistants.map((assistant) =>
      el("option", { value: assistant.id, selected: assistant.id === chosen }, (assistant.name || "(unnamed)") + " · " + assistant.model + " · " + assistant.id),
    ),
  );
  const transcript = el(
    "div",
    { id: "transcript" },
    earlier.has_more ? el("p", { class: "meta" }, "Only the newest 100 messages are shown; ", el("a", { href: "#" + path("threads", threadId) }, "the thread"), " has them all.") : null,
    earlier.data.map(messageView),
  );
  const prompt = el("textarea", { id: "prompt", rows: 3, placeholder: "Message (Enter sends, Shift+Enter starts a new line, Escape stops the answer)", "aria-label": "Message" });
  const send = el("button", { type: "submit", id: "send" }, "Send");
  const stop = el("button", { type: "button", id: "stop", disabled: true }, "Stop");
  const status = el("div", { id: "run-status", class: "meta", role: "status", "aria-live": "polite" });
  const threadLabel = el("span", { id: "thread-label", class: "meta" });
  const fresh = el("button", { type: "button", id: "new-thread" }, "New thread");
  const leaving = new AbortController(); // the stream is dropped when the user leaves the playground
  window.addEventListener("hashchange", () => leaving.abort(), { once: true });
  let runId = null; // the run of the turn under way, once the stream has named it
  let busy = false; // a turn is under way: its stream is open, or its run waits for tool outputs
  let streams = 0; // how many streams were opened: only the newest one says when streaming is over
  let turn = 0; // which turn is the user's latest: a finished turn's stream must not end a newer one
  let playing = Promise.resolve(); // the stream being read
  let live = { messages: new Map(), steps: new Map() }; // what this turn has shown, by id, across its streams

  function showThread() {
    fresh.disabled = busy || !threadId;
    threadLabel.replaceChildren(threadId ? el("a", { href: "#" + path("threads", threadId) }, "thread " + threadId) : "a new thread");
    const search = new URLSearchParams({ assistant: picker.value });
    if (threadId) search.set("thread", threadId);
    window.history.replaceState(null, "", "#/playground?" + search); // the address follows, with no re-routing
  }

  function running(yes) {
    busy = yes;
    send.disabled = yes;
    fresh.disabled = yes || !threadId;
    if (!yes) {
      stop.disabled = true;
      prompt.focus();
    }
  }

  function showRun(run) {
    runId = run.id;
    status.replaceChildren(el("a", { href: "#" + path("threads", run.thread_id, "runs", run.id), class: "run-link" }, "run " + run.id), " ", runStatus(run.status));
    if (run.last_error) status.append(" · " + run.last_error.code + ": " + run.last_error.message);
    stop.disabled = ENDED.has(run.status) || run.status === "cancelling"; // a run is stopped once its id is known
    if (ENDED.has(run.status)) {
      for (const form of transcript.querySelectorAll("form.tool-outputs")) form.remove();
      running(false);
    }
  }

  async function play(route, body, opened) {
    // shows one stream's events as they come; a run that needs tool outputs asks for them, and goes on
    // in the stream their submission opens
    const stream = ++streams;
    playground.dataset.streaming = "true"; // whether a stream is open, for whoever watches the page (tests)
    try {
      for await (const { event, data } of events(route, body, leaving.signal)) {
        if (opened) {
          opened(); // the request was taken: its stream has begun
          opened = null;
        }
        if (event === "thread.created") {
          threadId = data.id;
          showThread();
        } else if (event.startsWith("thread.run.step.")) {
          showStep(event, data);
        } else if (event.startsWith("thread.run.")) {
          showRun(data);
          if (data.status === "requires_action") askForOutputs(data);
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
    } finally {
      if (stream === streams) playground.dataset.streaming = "false";
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

  function showStep(event, data) {
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
    } else if (STEP_ENDED.has(event)) {
      const shown = live.steps.get(data.id);
      if (shown && data.step_details.type === "tool_calls") {
        shown.view.replaceChildren(el("div", { class: "meta" }, "tool calls · " + data.status), data.step_details.tool_calls.map(toolCall));
      }
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
    const submit = el("button", { type: "submit", id: "submit-outputs" }, "Submit outputs");
    const form = el(
      "form",
      {
        class: "tool-outputs",
        onsubmit: async (event) => {
          event.preventDefault();
          const outputs = [...form.querySelectorAll("textarea")].map((area) => ({ tool_call_id: area.dataset.call, output: area.value }));
          form.inert = true; // sent once; given back if the submission fails
          const sent = await go(path("threads", run.thread_id, "runs", run.id, "submit_tool_outputs"), { tool_outputs: outputs }, () => {
            form.remove();
            prompt.focus();
          });
          if (!sent && form.isConnected) {
            form.inert = false;
            submit.focus();
          }
        },
      },
      el("div", { class: "meta" }, "The assistant called " + calls.length + (calls.length === 1 ? " function" : " functions") + ": answer as your app would."),
      boxes,
      submit,
    );
    transcript.append(form);
    form.querySelector("textarea").focus();
  }

  async function go(route, body, opened) {
    // one request of a turn: true once its stream has ended; false (the error shown) if it failed, and
    // then the run, if there is one, is asked how it stands (it may have ended: the turn is over)
    const mine = turn;
    showError("");
    running(true);
    playing = play(route, body, opened);
    try {
      await playing;
      return true;
    } catch (error) {
      if (error.name === "AbortError") return false; // the user left the playground
      showError(error.message);
      if (runId && mine === turn) await api(path("threads", threadId, "runs", runId)).then(showRun, () => {});
      return false;
    } finally {
      if (mine === turn && !transcript.querySelector("form.tool-outputs")) running(false); // else the run waits for outputs
    }
  }

  async function cancel() {
    if (stop.disabled || !runId) return;
    stop.disabled = true;
    const mine = turn;
    try {
      let run = await api(path("threads", threadId, "runs", runId, "cancel"), { method: "POST" });
      await playing.catch(() => {}); // a stream under way tells how the run ends
      if (mine !== turn || !busy) return; // it did: the turn is over
      // no stream told (the run was waiting for tool outputs): the run is followed until it stops
      while (!ENDED.has(run.status) && !leaving.signal.aborted) {
        showRun(run);
        await new Promise((resolve) => setTimeout(resolve, 500));
        run = await api(path("threads", run.thread_id, "runs", run.id));
      }
      showRun(run);
    } catch (error) {
      showError(error.message);
      stop.disabled = !busy;
    }
  }

  const form = el(
    "form",
    {
      class: "chat",
      onsubmit: async (event) => {
        event.preventDefault();
        const text = prompt.value;
        if (!text.trim() || busy) return;
        prompt.value = "";
        turn += 1;
        runId = null;
        live = { messages: new Map(), steps: new Map() };
        status.replaceChildren();
        const bubble = el("article", { class: "message user" }, el("div", {}, el("span", { class: "role" }, "user")), el("p", { class: "text" }, text));
        transcript.append(bubble);
        const message = { role: "user", content: text };
        const assistant = picker.value;
        const sent = threadId
          ? await go(path("threads", threadId, "runs"), { assistant_id: assistant, additional_messages: [message] })
          : await go("/threads/runs", { assistant_id: assistant, thread: { messages: [message] } });
        if (!sent && !runId) {
          bubble.remove(); // nothing was stored: the message is given back to edit and send again
          prompt.value = prompt.value ? text + "\n" + prompt.value : text;
        }
      },
    },
    prompt,
    el("div", { class: "actions" }, send, " ", stop, " ", status),
  );
  prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  stop.addEventListener("click", cancel);
  picker.addEventListener("change", showThread);
  fresh.addEventListener("click", () => {
    threadId = null;
    transcript.replaceChildren();
    status.replaceChildren();
    showThread();
    prompt.focus();
  });
  const playground = el(
    "section",
    { id: "playground" },
    el("h1", {}, "Playground"),
    el("div", { class: "row inline" }, el("label", { for: "playground-assistant" }, "Assistant "), picker, " · ", threadLabel, " · ", fresh),
    transcript,
    form,
  );
  playground.addEventListener("keydown", (event) => {
    if (event.key === "Escape") cancel(); // Escape stops the answer from anywhere in the playground, as Stop does
  });
  if (!render(playground)) return; // the user has moved on
  showThread();
  prompt.focus();
}
