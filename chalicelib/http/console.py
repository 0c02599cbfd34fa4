"""The Spindle Console's files (chalicelib/console/): a page and its script, served by the same app at
/console. They are read from disk only when the console is asked for, so API requests never load them.
The page calls the same /v1 API as the SDK, with the key the user pastes (kept in the browser's
session storage only)."""

from __future__ import annotations

from pathlib import Path

from chalice import Blueprint, Response

blueprint = Blueprint(__name__)
FOLDER = Path(__file__).resolve().parent.parent / "console"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "core.js": "text/javascript; charset=utf-8",
    "threads.js": "text/javascript; charset=utf-8",
    "assistants.js": "text/javascript; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "files.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
# Nothing but the console's own files runs or loads: no inline script, no other origin, no framing. The
# one exception is images: a message's image_url (https: or data:) is shown, as OpenAI's dashboard did.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: https:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _serve(name: str) -> Response:
    content_type = FILES.get(name)
    if content_type is None:
        return Response(body="Not found", status_code=404, headers={"Content-Type": "text/plain"})
    headers: dict[str, str | list[str]] = {
        "Content-Type": content_type,
        "Content-Security-Policy": POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return Response(body=(FOLDER / name).read_text(encoding="utf-8"), status_code=200, headers=headers)


@blueprint.route("/console", methods=["GET"])
def console_page() -> Response:
    return _serve("index.html")


@blueprint.route("/console/{name}", methods=["GET"])
def console_file(name: str) -> Response:
    return _serve(name)
