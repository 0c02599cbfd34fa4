"""Why a vector-store file yields no text: the exceptions text extraction raises (ingest/text.py, and the
PDF reader it calls, ingest/pdf.py), each carrying the `code` of the official vector store file's
`last_error`."""

from __future__ import annotations

from typing import ClassVar


class FileNotReadable(Exception):
    """A file that yields no text for file_search; `code` is its vector store file's last_error.code."""

    code: ClassVar[str] = "invalid_file"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFile(FileNotReadable):
    """A file of a type that is not read (by extension)."""

    code: ClassVar[str] = "unsupported_file"


class InvalidFile(FileNotReadable):
    """A file of a supported type whose content cannot be read: not text, malformed, or empty."""

    code: ClassVar[str] = "invalid_file"
