// What every view of the Console shares: building the page from data (as text, never as HTML), calling
// the /v1 API with the pasted key, and reading an event stream as it arrives.
export const KEY = "spindle.apiKey";
// The API beside the page: /console's /v1, so that the Console works under API Gateway's stage prefix
// (…/api/console calls …/api/v1) as well as at the root.
export const API = location.pathname.replace(/\/console\/?$/, "") + "/v1";

export function el(tag, attributes, ...children) {
  // an element with its attributes (on* ones as listeners) and children; strings become text nodes, so
  // nothing users wrote is ever parsed as HTML
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

export function render(...children) {
  // the page's main part, replaced: nested lists flattened, nothing shown for null
  main().replaceChildren(...children.flat(2).filter((child) => child !== null && child !== undefined));
}

let rendering = 0;
let routings = 0;
let refreshing = false; // whether the view being routed is a live view's refresh (set by the router)
let drawn = ""; // what the last view drew: its address and the data it drew from

export function routing(refresh) {
  // a routing begins: a refresh of a live view, or a view the user goes to (which is drawn, whatever
  // was drawn before); the answer tells whether this routing is still the latest
  refreshing = refresh;
  if (!refresh) drawn = "";
  const mine = ++routings;
  return () => mine === routings;
}

export function renderer() {
  // a view's render, taken before it asks the API: skipped once the user has left the view or a newer
  // render began (a view shown again each second must never put an older answer over a newer one). A
  // refresh keeps the focus on the element of the same id, and `render.unchanged(data)` tells a
  // refresh that would draw the same data as last time, which is then left as it is.
  const ticket = ++rendering;
  const shown = location.hash;
  const again = refreshing;
  let signature = "";
  const paint = (...children) => {
    if (ticket !== rendering || location.hash !== shown) return false;
    const focused = again && main().contains(document.activeElement) ? document.activeElement.id : "";
    render(...children);
    drawn = signature;
    if (focused && document.getElementById(focused)) document.getElementById(focused).focus({ preventScroll: true });
    return true;
  };
  paint.unchanged = (data) => {
    signature = shown + "\n" + JSON.stringify(data);
    return again && signature === drawn;
  };
  return paint;
}

export function show(hash) {
  // goes to `hash`, or shows it again when it is already there (setting it would change nothing)
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export function main() {
  return document.getElementById("main");
}

export function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

export function path(...parts) {
  return parts.map((part) => "/" + encodeURIComponent(part)).join("");
}

export function action(button, work) {
  // a button's (or form's) handler: the button disabled while `work` runs, its error shown in the box
  return async (event) => {
    if (event) event.preventDefault();
    if (button) button.disabled = true;
    try {
      await work();
    } catch (error) {
      showError(error.message);
    } finally {
      if (button) button.disabled = false;
    }
  };
}

async function failure(response) {
  // the API's OpenAI error message, or the HTTP status where there is none
  let message = response.status + " " + response.statusText;
  try {
    message = (await response.json()).error.message || message;
  } catch (ignored) {}
  return new Error(message);
}

export async function api(route, options = {}) {
  const { raw, json, ...rest } = options;
  const headers = { Authorization: "Bearer " + sessionStorage.getItem(KEY), "OpenAI-Beta": "assistants=v2" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    rest.body = JSON.stringify(json);
    rest.method = rest.method || "POST";
  }
  const response = await fetch(API + route, { ...rest, headers: { ...headers, ...(rest.headers || {}) } });
  if (!response.ok) throw await failure(response);
  return raw ? response : response.json();
}

export async function* events(route, body, signal) {
  // POSTs a `stream: true` request and yields each server-sent event ({event, data}) as it arrives
  const response = await api(route, { json: { ...body, stream: true }, raw: true, signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue; // a keep-alive comment
      const text = data.join("\n");
      yield { event: name, data: text === "[DONE]" ? text : JSON.parse(text) };
    }
  }
}

export async function newestFirst(route, after, limit = 100, filters = {}) {
  // one page of a list, newest first: the objects older than `after` (from the start if none)
  const search = new URLSearchParams({ order: "desc", limit: String(limit), ...filters });
  if (after) search.set("after", after);
  return api(route + "?" + search);
}

export function olderLink(base, page, text, filters = {}) {
  // the link to the page after `page` of a newest-first list, when there is one
  return page.has_more && page.last_id
    ? el("p", {}, el("a", { href: base + "?" + new URLSearchParams({ ...filters, after: page.last_id }), id: "more" }, text))
    : null;
}

export function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "";
}

export function field(name, value) {
  // a row of a details table, left out when there is nothing to show
  return value === null || value === undefined || value === ""
    ? null
    : el("tr", {}, el("th", { scope: "row" }, name), el("td", {}, typeof value === "string" ? value : JSON.stringify(value)));
}

export function status(value) {
  return el("span", { class: "status " + value }, value);
}

export function toolNames(tools) {
  return (tools || []).map((tool) => (tool.type === "function" ? tool.function.name : tool.type)).join(", ");
}

export function details(kind, rows) {
  // a table of an object's fields, one row each (rows from field())
  return el("table", { class: "details " + kind }, el("tbody", {}, rows));
}

export function table(headings, rows, attributes = {}) {
  return el(
    "table",
    attributes,
    el("thead", {}, el("tr", {}, headings.map((heading) => el("th", { scope: "col" }, heading)))),
    el("tbody", {}, rows),
  );
}

async function contentOf(fileId) {
  // a file's content, fetched with the key (an <img src> or <a href> could not send it)
  return (await api(path("files", fileId, "content"), { raw: true })).blob();
}

export function imageOf(fileId) {
  const image = el("img", { alt: "image " + fileId });
  contentOf(fileId)
    .then((blob) => (image.src = URL.createObjectURL(blob)))
    .catch((error) => image.replaceWith(el("span", { class: "meta" }, "[image " + fileId + ": " + error.message + "]")));
  return image;
}

export async function download(fileId, filename) {
  // saves a file's content under its name, handed to the browser as a blob
  const link = el("a", { href: URL.createObjectURL(await contentOf(fileId)), download: filename || fileId });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

let refreshTimer = 0;

export function refreshWhile(live) {
  // a view of something still changing shows it again each second, until the user leaves it (console.js
  // routes the refresh; see renderer())
  if (!live) return;
  clearTimeout(refreshTimer); // one refresh at a time, however often the view was shown meanwhile
  const shown = location.hash;
  refreshTimer = setTimeout(() => location.hash === shown && window.dispatchEvent(new CustomEvent("console:refresh")), 1000);
}
