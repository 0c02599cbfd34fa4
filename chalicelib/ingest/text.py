"""Text extraction for vector-store files: the bytes of an uploaded file to the text that is chunked.

The file's extension (case-insensitive) picks an extractor from `EXTRACTORS`. Plain-text formats
(text, Markdown, CSV, source code, markup read as source) are decoded as they are; JSON is decoded and
checked to parse; HTML is reduced to its visible text. Formats that need a parser of their own (PDF,
DOCX, PPTX) are not here: a module that reads one adds an entry to `EXTRACTORS`, and until then such a
file is an `UnsupportedFile`.

The exceptions carry the `code` of the official vector store file's `last_error`.
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Callable
from html.parser import HTMLParser

from chalicelib.ingest.pdf import pdf_text
from chalicelib.ingest.unreadable import FileNotReadable, InvalidFile, UnsupportedFile

__all__ = ["FileNotReadable", "InvalidFile", "UnsupportedFile", "extract_text"]


# Byte-order marks, longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_text(data: bytes) -> str:
    """UTF-8, or UTF-8/16/32 after a byte-order mark (which is dropped); anything else is InvalidFile."""
    encoding, bom_length = "utf-8", 0
    for bom, bom_encoding in _BOMS:
        if data.startswith(bom):
            encoding, bom_length = bom_encoding, len(bom)
            break
    try:
        text = data[bom_length:].decode(encoding)
    except UnicodeDecodeError as error:
        position = bom_length + error.start
        raise InvalidFile(f"The file is not valid {encoding.upper()} text (at byte {position}).") from None
    # NUL never occurs in text; it does in binary files (and in UTF-16 without a mark) that happen to
    # decode as UTF-8, which would otherwise be indexed as garbage.
    if "\x00" in text:
        raise InvalidFile("The file is not text: it contains NUL characters.")
    return text


def _json_text(data: bytes) -> str:
    text = decode_text(data)
    try:
        json.loads(text)
    except ValueError as error:
        raise InvalidFile(f"The file is not valid JSON: {error}.") from None
    except RecursionError:
        # The standard parser recurses per nesting level; a file nested this deep is not worth indexing.
        raise InvalidFile("The file is not valid JSON: it is nested too deeply.") from None
    # The original text, not a re-serialisation: chunk offsets and citations refer to what was uploaded.
    return text


# Elements whose content is never shown. (Not <head>: its end tag is optional, and a document that
# omits it would otherwise lose its whole body; what <head> holds besides <title> has no text.)
_HIDDEN_ELEMENTS = frozenset({"script", "style", "template", "noscript"})
# Elements that start a new line, and those that also stand apart from what surrounds them by a blank line.
_LINE_ELEMENTS = frozenset(
    {"address", "dd", "details", "div", "dt", "figcaption", "form", "li", "main", "nav", "summary", "tr", "title"}
)
_PARAGRAPH_ELEMENTS = frozenset(
    {"article", "aside", "blockquote", "dl", "fieldset", "figure", "footer", "header", "hr", "ol", "p", "pre"}
    | {"section", "table", "ul", "h1", "h2", "h3", "h4", "h5", "h6"}
)
_CELL_ELEMENTS = frozenset({"td", "th"})
_WHITESPACE_RUN = re.compile(r"\s+")


class _VisibleText(HTMLParser):
    """Collects the text a browser shows: whitespace collapsed as HTML does (except in <pre>), a line
    break at each block element, entities unescaped (convert_charrefs)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._hidden_depth = 0
        self._pre_depth = 0
        # HTML drops a newline right after <pre>; without this a block of code would start with a blank line.
        self._pre_opened = False
        # Newlines at the end of the output so far; the start of the document counts as a blank line so
        # that no block adds leading newlines.
        self._trailing_newlines = 2

    def _emit(self, chunk: str) -> None:
        self._parts.append(chunk)
        stripped = chunk.rstrip("\n")
        if stripped:
            self._trailing_newlines = len(chunk) - len(stripped)
        else:
            self._trailing_newlines += len(chunk)

    def _drop_trailing_space(self) -> None:
        # A collapsed space before a line break or a cell separator is not text.
        if self._parts and self._parts[-1].endswith(" ") and not self._pre_depth:
            self._parts[-1] = self._parts[-1].rstrip(" ")

    def _break(self, newlines: int) -> None:
        self._drop_trailing_space()
        if self._trailing_newlines < newlines:
            self._emit("\n" * (newlines - self._trailing_newlines))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_ELEMENTS:
            self._hidden_depth += 1
        elif tag == "br":
            self._drop_trailing_space()
            self._emit("\n")
        elif tag in _PARAGRAPH_ELEMENTS:
            self._break(2)
        elif tag in _LINE_ELEMENTS:
            self._break(1)
        elif tag in _CELL_ELEMENTS and not self._trailing_newlines:
            self._drop_trailing_space()
            self._emit("\t")
        if tag == "pre":
            self._pre_depth += 1
            self._pre_opened = True

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_ELEMENTS:
            # max(): a stray closing tag must not hide the rest of the document.
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _PARAGRAPH_ELEMENTS:
            self._break(2)
        elif tag in _LINE_ELEMENTS:
            self._break(1)
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
            self._pre_opened = False

    def handle_data(self, data: str) -> None:
        if self._hidden_depth:
            return
        if self._pre_opened:
            self._pre_opened = False
            data = data.removeprefix("\n")
        if not self._pre_depth:
            data = _WHITESPACE_RUN.sub(" ", data)
            if self._trailing_newlines or (self._parts and self._parts[-1][-1:] in (" ", "\t")):
                data = data.lstrip(" ")
        if data:
            self._emit(data)

    def text(self) -> str:
        return "".join(self._parts).strip()


# html.parser asserts (AssertionError) on a marked section "<![...": unless it names one of the
# keywords below ("<![CDATA[", "<![if ...]>"), which a browser reads as a bogus comment. Escaping its "<"
# makes the parser read it as text instead.
_UNKNOWN_MARKED_SECTION = re.compile(
    r"<!\[(?!(?:temp|cdata|ignore|include|rcdata|if|else|endif)(?![-_.a-z0-9]))", re.IGNORECASE
)


def html_to_text(html: str) -> str:
    """The visible text of an HTML document."""
    parser = _VisibleText()
    try:
        parser.feed(_UNKNOWN_MARKED_SECTION.sub("&lt;![", html))
        parser.close()
    except AssertionError as error:  # any other input html.parser gives up on
        raise InvalidFile(f"The file is not valid HTML: {error}.") from None
    return parser.text()


def _html_text(data: bytes) -> str:
    return html_to_text(decode_text(data))


def _pdf_text(data: bytes) -> str:
    """Each page's text, pages apart by a blank line, read in a child process under the limits one
    file may take (ingest/pdf.py). pypdf (pure Python, well kept) is loaded there only; a PDF it cannot
    read, or one locked with a password, is an invalid file rather than an error of Spindle's."""
    return pdf_text(data)


Extractor = Callable[[bytes], str]

# Read as they are: prose and data formats, and source code (markup languages other than HTML
# included: their tags are part of what a search should find).
_PLAIN_TEXT_EXTENSIONS = (
    "txt text md markdown rst tex csv tsv log"
    " py js mjs cjs jsx ts tsx java c h cpp cc cxx hpp hh cs go rb php sh bash zsh ps1 rs kt swift scala sql r"
    " css scss less xml yaml yml toml ini cfg conf"
)

EXTRACTORS: dict[str, Extractor] = {
    **{extension: decode_text for extension in _PLAIN_TEXT_EXTENSIONS.split()},
    "json": _json_text,
    "html": _html_text,
    "htm": _html_text,
    "pdf": _pdf_text,
}


def file_extension(filename: str) -> str:
    """The lower-cased extension without its dot ("" if none); a path's directories are ignored."""
    basename = re.split(r"[\\/]", filename)[-1]
    return os.path.splitext(basename)[1][1:].lower()


def extract_text(filename: str, data: bytes) -> str:
    """The text of an uploaded file, chosen by its name's extension.

    Raises UnsupportedFile for an extension with no extractor, InvalidFile for content that cannot be
    read or has no text.
    """
    extension = file_extension(filename)
    extractor = EXTRACTORS.get(extension)
    if extractor is None:
        shown = f"'.{extension}'" if extension else "no extension"
        raise UnsupportedFile(f"Files with {shown} are not supported for file search.")
    text = extractor(data)
    if not text.strip():
        raise InvalidFile("The file has no text.")
    return text
