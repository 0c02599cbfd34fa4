// The Spindle Console: plain JavaScript modules, no build. It calls the same /v1 API as the SDK with the
// key the user pastes, kept in this tab's session storage only. Everything that came from users
// (messages, metadata, filenames) is put in the page as text (core.js's el(), never innerHTML), so none
// of it runs. This file routes the address's #fragment to a view.
import { assistantsView, assistantView } from "./assistants.js";
import { KEY, el, main, render, routing as beginRouting, show, showError } from "./core.js";
import { fileView, filesView, storeView, storesView } from "./files.js";
import { playgroundView } from "./playground.js";
import { runView, threadsView, threadView } from "./threads.js";

function keyView() {
  const input = el("input", { id: "key", type: "password", autocomplete: "off", "aria-label": "API key" });
  const form = el(
    "form",
    {
      onsubmit: (event) => {
        event.preventDefault();
        sessionStorage.setItem(KEY, input.value.trim());
        show(location.hash && location.hash !== "#/key" ? location.hash : "#/threads"); // where the user was going
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

// each route: the #fragment's path, split at "/", ":x" standing for any one part
const ROUTES = [
  [["threads", ":thread", "runs", ":run"], (ids) => runView(ids.thread, ids.run)],
  [["threads", ":thread"], (ids, query) => threadView(ids.thread, query)],
  [["threads"], (ids, query) => threadsView(query)],
  [["assistants", ":assistant"], (ids) => assistantView(ids.assistant)],
  [["assistants"], () => assistantsView()],
  [["playground"], (ids, query) => playgroundView(query)],
  [["files", ":file"], (ids) => fileView(ids.file)],
  [["files"], (ids, query) => filesView(query)],
  [["vector_stores", ":store"], (ids) => storeView(ids.store)],
  [["vector_stores"], (ids, query) => storesView(query)],
];

function match(pattern, parts) {
  if (pattern.length !== parts.length) return null;
  const ids = {};
  for (const [index, expected] of pattern.entries()) {
    if (expected.startsWith(":")) ids[expected.slice(1)] = decodeURIComponent(parts[index]);
    else if (expected !== parts[index]) return null;
  }
  return ids;
}

async function route(event) {
  // shows the view the address names: afresh when the user goes there (the error box emptied, the
  // focus on the new content), or again for a live view's refresh (both left alone)
  const refreshing = event && event.type === "console:refresh";
  const latest = beginRouting(refreshing); // the error of a view the user has left is not shown
  if (!refreshing) showError("");
  const hash = location.hash || "#/threads";
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", hash.startsWith(link.getAttribute("href")));
  }
  if (!sessionStorage.getItem(KEY) || hash === "#/key") return keyView();
  const [where, query] = hash.slice(1).split("?");
  const parts = where.split("/").filter(Boolean);
  try {
    for (const [pattern, view] of ROUTES) {
      const ids = match(pattern, parts);
      if (ids) {
        await view(ids, new URLSearchParams(query || ""));
        if (!refreshing && !main().contains(document.activeElement)) main().focus({ preventScroll: true });
        return;
      }
    }
    return await threadsView(new URLSearchParams());
  } catch (error) {
    if (latest()) showError(error.message);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("console:refresh", route);
route();
