"""multipart/form-data bodies (file uploads), parsed in time linear in the body.

Not email.parser: on a crafted body of at most 4 MiB it spent minutes of CPU (thousands of tiny
parts, a long Content-Disposition parameter). Here the body is split with one regular-expression
search per delimiter, the number of parts and the size of each part's headers are bounded, and
only those small header blocks are parsed, the way email's parser read names and filenames (RFC
2231 sections and charsets included)."""

from __future__ import annotations

import re
import urllib.parse
from typing import NamedTuple

from chalicelib.domain.errors import InvalidRequest

# The official upload has at most four fields (file, purpose, expires_after[anchor] and
# expires_after[seconds]); the bound keeps a body of thousands of tiny parts from costing seconds.
MAX_MULTIPART_PARTS = 16
# An SDK's part headers (a Content-Disposition with a filename of at most 255 characters, percent-
# or UTF-8 encoded, and a Content-Type) take well under 2 KiB.
MAX_PART_HEADER_BYTES = 8 * 1024
# One parameter of a header such as `Content-Disposition: form-data; name="file"; filename="a.txt"`:
# its name (`filename*0*` in RFC 2231's form), and a quoted value or a token (which ends at a space
# or a tspecial, RFC 2045); anything else up to the next `;` is ignored, as email's parser did. The
# alternatives never overlap, so matching is linear in the header's length.
_PARAMETER = re.compile(r'\s*([^\s=;]*)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"?|([^\s()<>@,;:\\"/\[\]?=]*)))?[^;]*', re.DOTALL)
_RFC2231_NAME = re.compile(r"(.*?)(?:\*(\d{1,9}))?(\*)?")  # nine digits: int() must not refuse it
_QUOTED_PAIR = re.compile(r"\\(.)", re.DOTALL)
_HEADER_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]*:")  # a field name and a colon, as email reads them

INVALID_MULTIPART = "Send the file as multipart/form-data with a boundary."


def _invalid(message: str = INVALID_MULTIPART) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_multipart")


class _Parameter(NamedTuple):
    name: str  # lowercase, without RFC 2231's `*N` / `*`
    section: int
    extended: bool  # `name*=charset'language'percent-encoded`
    value: str


def _parse_header_value(value: str) -> tuple[str, list[_Parameter]]:
    """`form-data; name="file"` -> ("form-data", its parameters, in order)."""
    cut = value.find(";")
    main = (value if cut < 0 else value[:cut]).strip().lower()
    parameters: list[_Parameter] = []
    position = len(value) if cut < 0 else cut + 1
    while position < len(value):
        match = _PARAMETER.match(value, position)
        assert match is not None  # every group is optional: it always matches
        position = match.end() + 1  # past the `;` (or the end)
        raw_name, quoted, token = match.groups()
        if not raw_name:
            continue
        named = _RFC2231_NAME.fullmatch(raw_name.lower())
        assert named is not None  # `(.*?)` takes whatever the optional suffixes leave
        base, section, star = named.groups()
        text = _QUOTED_PAIR.sub(r"\1", quoted) if quoted is not None else token or ""
        parameters.append(_Parameter(base, int(section) if section else 0, bool(star), text))
    return main, parameters


def _parameter(parameters: list[_Parameter], wanted: str) -> str | None:
    """A parameter's value, RFC 2231 sections joined and decoded: as email.message's get_param does
    (the first occurrence of a name wins; a plain value is not joined with sections)."""
    found = sorted((p for p in parameters if p.name == wanted), key=lambda p: p.section)
    if not found:
        return None
    if not found[0].extended and len(found) > 1 and found[1].section == 0:
        found = found[:1]
    charset = "us-ascii"
    pieces: list[str] = []
    expected = 0
    for parameter in found:
        if parameter.section != expected and not parameter.extended:
            continue  # a duplicate
        value = parameter.value
        if parameter.extended:
            if expected == 0 and value.count("'") >= 2:
                charset, _, value = value.split("'", 2)
            encoded = urllib.parse.unquote_to_bytes(value)
            try:
                value = encoded.decode(charset or "us-ascii", "replace")
            except (LookupError, UnicodeError):  # an unknown charset (or idna, which only decodes
                # strictly): as email does, keep what ASCII can say
                value = encoded.decode("us-ascii", "replace")
        pieces.append(value)
        expected += 1
    return "".join(pieces)


def _part_headers(raw: bytes, start: int, end: int) -> tuple[dict[str, str], int]:
    """A part's headers ({lowercase name: value}; the first of a name wins) and where its body starts.

    As email's parser: headers run to a blank line, or to the first line that is not a header
    (which begins the body), or to the end of the part (an empty body)."""
    lines: list[list[bytes]] = []  # each header's line, and any continuation lines
    position = start
    while position < end:
        if position - start > MAX_PART_HEADER_BYTES:
            raise _invalid(f"Invalid multipart/form-data body: part headers over {MAX_PART_HEADER_BYTES} bytes.")
        newline = raw.find(b"\n", position, end)
        line_end = end if newline < 0 else newline + 1
        line = raw[position:line_end].rstrip(b"\r\n")
        if not line:
            position = line_end  # the blank line ends the headers
            break
        if line[:1] in (b" ", b"\t"):
            if lines:
                lines[-1].append(line.strip())  # an obsolete folded continuation
        elif _HEADER_LINE.match(line):
            lines.append([line])
        else:
            break  # not a header: the body begins here
        position = line_end
    headers: dict[str, str] = {}
    for pieces in lines:
        name, _, value = b" ".join(pieces).partition(b":")
        # Header bytes other than UTF-8 become U+FFFD, as email's parser made them.
        headers.setdefault(name.decode("ascii").lower(), value.decode("utf-8", "replace").strip())
    return headers, position


def _decode_transfer_encoding(payload: bytes, encoding: str) -> bytes:
    """RFC 7578 deprecates Content-Transfer-Encoding in form data; old clients may still send
    base64 or quoted-printable. email decodes them as the previous parser did (in linear time)."""
    from email.message import Message

    message = Message()
    message["Content-Transfer-Encoding"] = encoding
    message.set_payload(payload.decode("ascii", "surrogateescape"))  # how email's parser holds bytes
    decoded = message.get_payload(decode=True)
    return decoded if isinstance(decoded, bytes) else payload


def _split_parts(raw: bytes, boundary: bytes) -> list[tuple[int, int]]:
    """Where each part's bytes start and end: between delimiter lines (`--boundary`, at the start of
    a line, optionally padded with spaces or tabs), up to the close delimiter (`--boundary--`).

    A linear scan: one regular-expression search per delimiter, and no more than
    MAX_MULTIPART_PARTS of them."""
    tail = rb"(--)?[ \t]*(?:\r?\n|\Z)"
    opening = re.compile(b"--" + re.escape(boundary) + tail)
    delimiter = re.compile(b"\n--" + re.escape(boundary) + tail)
    match = opening.match(raw) or delimiter.search(raw)  # the first may follow a preamble
    if match is not None and match.group(1):
        raise _invalid()  # a close delimiter first: no part at all
    spans: list[tuple[int, int]] = []
    while match is not None and not match.group(1):
        start = match.end()
        if opening.match(raw, start):
            raise _invalid()  # a delimiter line right after another: email's parser refused it too
        match = delimiter.search(raw, start)
        if match is None:
            break
        end = match.start() - 1 if match.start() > start and raw[match.start() - 1] == 0x0D else match.start()
        spans.append((start, end))
        if len(spans) > MAX_MULTIPART_PARTS:
            raise _invalid(f"Invalid multipart/form-data body: more than {MAX_MULTIPART_PARTS} parts.")
    if match is None:  # no delimiter at all, or no close delimiter
        raise _invalid()
    return spans


def parse_form(raw: bytes, content_type: str) -> tuple[dict[str, str], str | None, bytes | None]:
    """The text fields, and the `file` part's name and bytes, of a multipart/form-data body."""
    media_type, parameters = _parse_header_value(content_type)
    boundary = _parameter(parameters, "boundary")
    if not media_type.startswith("multipart/") or not boundary:
        raise _invalid()
    form: dict[str, str] = {}
    filename: str | None = None
    content: bytes | None = None
    for start, end in _split_parts(raw, boundary.encode("utf-8", "replace")):
        headers, body_start = _part_headers(raw, start, end)
        part_type, type_parameters = _parse_header_value(headers.get("content-type", ""))
        if part_type.startswith("multipart/"):
            raise InvalidRequest("Nested multipart parts are not accepted.", code="invalid_multipart")
        payload = raw[body_start:end]
        encoding = headers.get("content-transfer-encoding", "").strip().lower()
        if encoding in ("base64", "quoted-printable"):  # (x-uuencode, a line-by-line decode, is not
            payload = _decode_transfer_encoding(payload, encoding)  # taken: no form client sends it)
        _, disposition = _parse_header_value(headers.get("content-disposition", ""))
        name = _parameter(disposition, "name")
        if name == "file":
            # As email's get_filename: Content-Disposition's filename, else Content-Type's name.
            named = _parameter(disposition, "filename")
            if named is None:
                named = _parameter(type_parameters, "name")
            filename, content = (named.strip() if named is not None else None), payload
        elif name is not None:
            try:
                form[name] = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidRequest(f"Invalid '{name}': expected UTF-8 text.", param=name) from None
    return form, filename, content
