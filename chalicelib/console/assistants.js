// Assistants: the list, and one form that creates or edits an assistant. What the form sends is judged
// by the API alone, so the Console shows exactly the API's validation errors; only text that is not
// JSON at all (functions, metadata) is refused here, since it cannot be sent.
import { action, api, el, newestFirst, path, renderer, showError, table, toolNames, when } from "./core.js";

export async function assistantsView() {
  const render = renderer();
  const page = await newestFirst("/assistants");
  const rows = page.data.map((assistant) =>
    el(
      "tr",
      {},
      el("td", {}, el("a", { href: "#" + path("assistants", assistant.id), class: "assistant" }, assistant.name || assistant.id)),
      el("td", {}, assistant.id),
      el("td", {}, assistant.model),
      el("td", {}, toolNames(assistant.tools)),
      el("td", {}, when(assistant.created_at)),
      el("td", {}, el("a", { href: "#/playground?assistant=" + encodeURIComponent(assistant.id) }, "Chat")),
    ),
  );
  render(
    el("h1", {}, "Assistants"),
    el("p", {}, el("a", { href: "#/assistants/new", id: "new-assistant", class: "button" }, "New assistant")),
    rows.length ? table(["Name", "ID", "Model", "Tools", "Created", el("span", { class: "visually-hidden" }, "Playground")], rows, { class: "list" }) : el("p", {}, "No assistants yet."),
    page.has_more ? el("p", { class: "meta" }, "The 100 newest are shown.") : null,
  );
}

function input(id, label, value, attributes = {}) {
  return el("div", { class: "row" }, el("label", { for: id }, label), el("input", { id, name: id, value: value ?? "", ...attributes }));
}

function textarea(id, label, value, attributes = {}) {
  return el("div", { class: "row" }, el("label", { for: id }, label), el("textarea", { id, name: id, rows: 4, ...attributes }, value ?? ""));
}

function checkbox(id, label, checked) {
  return el("label", { class: "check" }, el("input", { id, type: "checkbox", checked }), " " + label);
}

function ids(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

function parsed(text, what) {
  // the JSON a text box holds, or null when it is empty; text that is not JSON cannot be sent at all
  if (!text.trim()) return null;
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(what + " is not valid JSON: " + error.message);
  }
}

function number(text) {
  // a number box's value: empty is null, a number is sent as one, and anything else as the text it is,
  // for the API to refuse (JSON has no NaN: it would go as null, which resets the setting)
  const trimmed = text.trim();
  if (trimmed === "") return null;
  return Number.isFinite(Number(trimmed)) ? Number(trimmed) : trimmed;
}

function requestFrom(form, creating) {
  // the create or modify request the form describes; an emptied field is sent as null (the API's way to
  // reset it) when editing and left out when creating
  const value = (id) => form.querySelector("#" + id).value;
  const tools = [];
  if (form.querySelector("#tool-code-interpreter").checked) tools.push({ type: "code_interpreter" });
  if (form.querySelector("#tool-file-search").checked) tools.push({ type: "file_search" });
  const functions = parsed(value("assistant-functions"), "Functions") ?? [];
  for (const definition of Array.isArray(functions) ? functions : [functions]) {
    tools.push(definition && definition.type === "function" ? definition : { type: "function", function: definition });
  }
  const resources = {};
  const codeFiles = ids(value("assistant-code-files"));
  const stores = ids(value("assistant-vector-stores"));
  if (codeFiles.length || !creating) resources.code_interpreter = { file_ids: codeFiles };
  if (stores.length || !creating) resources.file_search = { vector_store_ids: stores };
  const request = {
    model: value("assistant-model").trim(),
    name: value("assistant-name") || null,
    description: value("assistant-description") || null,
    instructions: value("assistant-instructions") || null,
    tools,
    tool_resources: resources,
    metadata: parsed(value("assistant-metadata"), "Metadata") ?? (creating ? null : {}),
    temperature: number(value("assistant-temperature")),
    top_p: number(value("assistant-top-p")),
  };
  if (creating) for (const [name, setting] of Object.entries(request)) if (setting === null) delete request[name];
  return request;
}

export async function assistantView(assistantId) {
  const render = renderer();
  const creating = assistantId === "new";
  const assistant = creating ? { model: "gpt-4o", tools: [], tool_resources: {}, metadata: {} } : await api(path("assistants", assistantId));
  const functions = assistant.tools.filter((tool) => tool.type === "function").map((tool) => tool.function);
  const has = (type) => assistant.tools.some((tool) => tool.type === type);
  const resources = assistant.tool_resources || {};
  const status = el("span", { id: "saved", class: "meta", role: "status" });
  const save = el("button", { type: "submit", id: "save-assistant" }, creating ? "Create" : "Save");
  const form = el(
    "form",
    {
      class: "assistant",
      // Save is off while its request runs: a double click must not create two assistants
      onsubmit: action(save, async () => {
        showError("");
        status.textContent = "";
        const request = requestFrom(form, creating);
        const saved = await api(creating ? "/assistants" : path("assistants", assistantId), { json: request });
        if (creating) location.hash = "#" + path("assistants", saved.id);
        else status.textContent = "Saved " + new Date().toLocaleTimeString();
      }),
    },
    input("assistant-name", "Name", assistant.name),
    input("assistant-model", "Model", assistant.model, { required: true }),
    input("assistant-description", "Description", assistant.description),
    textarea("assistant-instructions", "Instructions", assistant.instructions, { rows: 6 }),
    el(
      "fieldset",
      {},
      el("legend", {}, "Tools"),
      checkbox("tool-code-interpreter", "code_interpreter", has("code_interpreter")),
      checkbox("tool-file-search", "file_search", has("file_search")),
      textarea("assistant-functions", "Functions (JSON: a list of function definitions)", functions.length ? JSON.stringify(functions, null, 2) : "", {
        class: "code",
        spellcheck: "false",
      }),
    ),
    el(
      "fieldset",
      {},
      el("legend", {}, "Tool resources"),
      input("assistant-code-files", "code_interpreter file IDs", ((resources.code_interpreter || {}).file_ids || []).join(", ")),
      input("assistant-vector-stores", "file_search vector store IDs", ((resources.file_search || {}).vector_store_ids || []).join(", ")),
    ),
    input("assistant-temperature", "Temperature", assistant.temperature, { inputmode: "decimal" }),
    input("assistant-top-p", "top_p", assistant.top_p, { inputmode: "decimal" }),
    textarea("assistant-metadata", "Metadata (JSON object)", Object.keys(assistant.metadata || {}).length ? JSON.stringify(assistant.metadata, null, 2) : "", {
      class: "code",
      spellcheck: "false",
    }),
    el("div", { class: "actions" }, save, " ", status),
  );
  const remove = el("button", { type: "button", id: "delete-assistant", class: "danger" }, "Delete");
  remove.addEventListener(
    "click",
    action(remove, async () => {
      if (!window.confirm("Delete assistant " + assistantId + "?")) return;
      await api(path("assistants", assistantId), { method: "DELETE" });
      location.hash = "#/assistants";
    }),
  );
  render(
    el("h1", {}, creating ? "New assistant" : "Assistant " + (assistant.name || assistant.id)),
    creating
      ? null
      : el(
          "p",
          { class: "meta" },
          assistant.id + " · created " + when(assistant.created_at) + " · ",
          el("a", { href: "#/playground?assistant=" + encodeURIComponent(assistant.id), id: "chat" }, "Chat in the playground"),
          " · ",
          remove,
        ),
    form,
  ) && form.querySelector("#assistant-name").focus();
}
