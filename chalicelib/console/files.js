// Files (list, upload, download, delete) and vector stores (list, create, a store's files: add by upload
// or by id, remove; delete the store). Everything users named (filenames, store names, metadata, error
// messages) goes in the page as text through core.js's el().
import { action, api, details, download, el, field, imageOf, newestFirst, olderLink, path, refreshWhile, renderer, show, status, table, when } from "./core.js";

const PURPOSES = ["assistants", "vision", "user_data", "batch", "fine-tune"];

async function upload(file, purpose) {
  const form = new FormData();
  form.append("purpose", purpose);
  form.append("file", file, file.name);
  return api("/files", { method: "POST", body: form });
}

// ---- files

function uploadForm() {
  const input = el("input", { id: "upload-file", type: "file", name: "file", required: true });
  const purpose = el(
    "select",
    { id: "upload-purpose", name: "purpose" },
    PURPOSES.map((name) => el("option", { value: name, selected: name === "assistants" }, name)),
  );
  const button = el("button", { type: "submit", id: "upload" }, "Upload");
  const form = el(
    "form",
    { class: "inline upload", "aria-label": "Upload a file" },
    el("label", { for: "upload-file" }, "File "),
    input,
    " ",
    el("label", { for: "upload-purpose" }, "Purpose "),
    purpose,
    " ",
    button,
  );
  form.addEventListener(
    "submit",
    action(button, async () => {
      const file = input.files[0];
      if (!file) throw new Error("Choose a file to upload.");
      await upload(file, purpose.value);
      show("#/files");
    }),
  );
  return form;
}

async function deleteFile(file) {
  if (!window.confirm("Delete the file " + file.filename + " (" + file.id + ")?")) return false;
  await api(path("files", file.id), { method: "DELETE" });
  return true;
}

function fileRow(file) {
  const downloadButton = el("button", { type: "button", class: "download", "aria-label": "Download " + file.filename }, "Download");
  downloadButton.addEventListener("click", action(downloadButton, () => download(file.id, file.filename)));
  const deleteButton = el("button", { type: "button", class: "delete danger", "aria-label": "Delete " + file.filename }, "Delete");
  deleteButton.addEventListener(
    "click",
    action(deleteButton, async () => {
      if (await deleteFile(file)) show(location.hash);
    }),
  );
  return el(
    "tr",
    { id: file.id },
    el("td", {}, el("a", { href: "#" + path("files", file.id), class: "file" }, file.filename)),
    el("td", {}, file.id),
    el("td", {}, file.purpose),
    el("td", { class: "number" }, String(file.bytes)),
    el("td", {}, when(file.created_at)),
    el("td", { class: "buttons" }, downloadButton, " ", deleteButton),
  );
}

export async function filesView(query) {
  const paint = renderer();
  const page = await newestFirst("/files", query.get("after"));
  paint(
    el("h1", {}, "Files"),
    uploadForm(),
    page.data.length
      ? table(["Filename", "ID", "Purpose", "Bytes", "Created", el("span", { class: "visually-hidden" }, "Actions")], page.data.map(fileRow), {
          class: "list files",
        })
      : el("p", {}, query.get("after") ? "No older files." : "No files yet."),
    olderLink("#/files", page, "Older files"),
  );
}

export async function fileView(fileId) {
  const paint = renderer();
  const file = await api(path("files", fileId));
  const downloadButton = el("button", { type: "button", id: "download" }, "Download");
  downloadButton.addEventListener("click", action(downloadButton, () => download(file.id, file.filename)));
  const deleteButton = el("button", { type: "button", id: "delete", class: "danger" }, "Delete");
  deleteButton.addEventListener(
    "click",
    action(deleteButton, async () => {
      if (await deleteFile(file)) location.hash = "#/files";
    }),
  );
  paint(
    el("h1", {}, "File " + file.filename),
    el("p", {}, el("a", { href: "#/files" }, "← files")),
    details("file", [
      field("ID", file.id),
      field("Filename", file.filename),
      field("Purpose", file.purpose),
      field("Bytes", file.bytes),
      field("Status", file.status),
      field("Created", when(file.created_at)),
      field("Expires", when(file.expires_at)),
    ]),
    el("p", { class: "actions" }, downloadButton, " ", deleteButton),
    file.purpose === "vision" ? el("p", {}, imageOf(file.id)) : null,
  );
}

// ---- vector stores

function counts(fileCounts) {
  const c = fileCounts || {};
  let text = (c.completed || 0) + "/" + (c.total || 0) + ", " + (c.in_progress || 0) + " in progress, " + (c.failed || 0) + " failed";
  if (c.cancelled) text += ", " + c.cancelled + " cancelled";
  return text;
}

function storeName(store) {
  return store.name || "(no name)";
}

export async function storesView(query) {
  const paint = renderer();
  const page = await newestFirst("/vector_stores", query.get("after"));
  const rows = page.data.map((store) =>
    el(
      "tr",
      { id: store.id },
      el("td", {}, el("a", { href: "#" + path("vector_stores", store.id), class: "store" }, storeName(store))),
      el("td", {}, store.id),
      el("td", {}, status(store.status)),
      el("td", {}, counts(store.file_counts)),
      el("td", { class: "number" }, String(store.usage_bytes)),
      el("td", {}, when(store.created_at)),
    ),
  );
  const name = el("input", { id: "store-name", name: "name", autocomplete: "off" });
  const button = el("button", { type: "submit", id: "create-store" }, "Create");
  const form = el("form", { class: "inline", "aria-label": "Create a vector store" }, el("label", { for: "store-name" }, "Name "), name, " ", button);
  form.addEventListener(
    "submit",
    action(button, async () => {
      const store = await api("/vector_stores", { json: { name: name.value.trim() } });
      location.hash = "#" + path("vector_stores", store.id);
    }),
  );
  paint(
    el("h1", {}, "Vector stores"),
    form,
    rows.length
      ? table(["Name", "ID", "Status", "Files", "Usage bytes", "Created"], rows, { class: "list stores" })
      : el("p", {}, query.get("after") ? "No older vector stores." : "No vector stores yet."),
    olderLink("#/vector_stores", page, "Older vector stores"),
  );
}

function chunking(strategy) {
  if (!strategy) return "";
  if (strategy.type === "static" && strategy.static) {
    return "static: " + strategy.static.max_chunk_size_tokens + " tokens, " + strategy.static.chunk_overlap_tokens + " overlap";
  }
  return strategy.type;
}

function expiry(policy) {
  return policy ? policy.days + " days after " + policy.anchor : null;
}

export async function storeView(storeId) {
  const paint = renderer();
  const base = path("vector_stores", storeId);
  const [store, files] = await Promise.all([api(base), newestFirst(base + "/files")]);
  const again = () => show(location.hash);
  const live = store.status === "in_progress" || files.data.some((file) => file.status === "in_progress");
  refreshWhile(live); // a store still ingesting updates as its files do
  if (paint.unchanged([store, files])) return; // nothing new: what is shown (and being done) stays

  const rows = files.data.map((file) => {
    const remove = el("button", { type: "button", id: "remove-" + file.id, class: "remove danger", "aria-label": "Remove " + file.id + " from the store" }, "Remove");
    remove.addEventListener(
      "click",
      action(remove, async () => {
        await api(base + path("files", file.id), { method: "DELETE" });
        again();
      }),
    );
    return el(
      "tr",
      { id: file.id },
      el("td", {}, el("a", { href: "#" + path("files", file.id), class: "file" }, file.id)),
      el("td", {}, status(file.status)),
      el("td", { class: "number" }, String(file.usage_bytes)),
      el("td", { class: "error" }, file.last_error ? file.last_error.code + ": " + file.last_error.message : ""),
      el("td", {}, chunking(file.chunking_strategy)),
      el("td", { class: "buttons" }, remove),
    );
  });

  // keep what the user was typing when the view is shown again (it is, each second, while ingesting)
  const typed = document.getElementById("store-file-id");
  const keep = typed && typed.dataset.store === store.id ? { value: typed.value } : null; // the focus is kept by renderer()

  const uploadInput = el("input", { id: "store-upload", type: "file", name: "file" });
  uploadInput.addEventListener(
    "change",
    action(uploadInput, async () => {
      const chosen = uploadInput.files[0];
      if (!chosen) return;
      uploadInput.value = ""; // the same file chosen again is a change again
      const file = await upload(chosen, "assistants");
      await api(base + "/files", { json: { file_id: file.id } });
      again();
    }),
  );
  const idInput = el("input", { id: "store-file-id", name: "file_id", autocomplete: "off", placeholder: "file-…", "data-store": store.id });
  const addButton = el("button", { type: "submit", id: "add-file" }, "Add");
  const idForm = el("form", { class: "inline", "aria-label": "Add an uploaded file" }, el("label", { for: "store-file-id" }, "File ID "), idInput, " ", addButton);
  idForm.addEventListener(
    "submit",
    action(addButton, async () => {
      const fileId = idInput.value.trim();
      if (!fileId) throw new Error("Type the id of a file to add.");
      await api(base + "/files", { json: { file_id: fileId } });
      idInput.value = "";
      again();
    }),
  );
  const deleteButton = el("button", { type: "button", id: "delete-store", class: "danger" }, "Delete store");
  deleteButton.addEventListener(
    "click",
    action(deleteButton, async () => {
      if (!window.confirm("Delete the vector store " + storeName(store) + " (" + store.id + ") and its files' chunks?")) return;
      await api(base, { method: "DELETE" });
      location.hash = "#/vector_stores";
    }),
  );

  const shown = paint(
    el("h1", {}, "Vector store " + storeName(store)),
    el("p", {}, el("a", { href: "#/vector_stores" }, "← vector stores")),
    details("store", [
      field("ID", store.id),
      field("Name", store.name),
      el("tr", {}, el("th", { scope: "row" }, "Status"), el("td", {}, status(store.status))),
      field("Files", counts(store.file_counts)),
      field("Usage bytes", store.usage_bytes),
      field("Created", when(store.created_at)),
      field("Expires after", expiry(store.expires_after)),
      field("Expires", when(store.expires_at)),
      field("Last active", when(store.last_active_at)),
      field("Metadata", store.metadata && Object.keys(store.metadata).length ? store.metadata : null),
    ]),
    el("p", { class: "actions" }, deleteButton),
    el("h2", {}, "Files"),
    el(
      "div",
      { class: "add-files" },
      el("p", {}, el("label", { for: "store-upload" }, "Upload a file and add it "), uploadInput),
      idForm,
    ),
    rows.length
      ? table(["File", "Status", "Usage bytes", "Last error", "Chunking", el("span", { class: "visually-hidden" }, "Actions")], rows, {
          class: "list store-files",
        })
      : el("p", {}, "No files in this store."),
    files.has_more ? el("p", { class: "meta" }, "The newest 100 files are shown.") : null,
  );
  if (shown && keep) idInput.value = keep.value;
}
