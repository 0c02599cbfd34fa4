"""The child process that reads a PDF's text (`python -m chalicelib.ingest.pdf_child <max pages>
<max characters>`): the PDF's bytes on stdin, one JSON object on stdout, `{"text": ...}` or
`{"invalid": message}`. ingest/pdf.py starts it and kills it at the file's time limit: pypdf's work
grows with what a page draws, not with the file's size, so only a process of its own can be stopped
whatever a page holds. It imports pypdf and the standard library only, to start quickly."""

from __future__ import annotations

import io
import json
import sys


def read(data: bytes, max_pages: int, max_chars: int) -> dict[str, str]:
    """Each page's text, pages apart by a blank line; or why the PDF yields none."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            return {"invalid": "The PDF is protected by a password."}
        pages = len(reader.pages)
        if pages > max_pages:
            return {
                "invalid": f"The PDF has {pages} pages; Spindle reads at most {max_pages} (SPINDLE_INGEST_MAX_PAGES)."
            }
        texts: list[str] = []
        size = 0
        for page in reader.pages:
            texts.append((page.extract_text() or "").strip("\n"))
            size += len(texts[-1]) + 2
            if size > max_chars:
                return {"invalid": f"The PDF's text is longer than {max_chars} characters, the most Spindle reads."}
    except Exception as error:  # a parser boundary: malformed input raises many kinds of errors
        return {"invalid": f"The PDF could not be read ({type(error).__name__})."}
    return {"text": "\n\n".join(texts)}


def main() -> None:
    max_pages, max_chars = int(sys.argv[1]), int(sys.argv[2])
    answer = read(sys.stdin.buffer.read(), max_pages, max_chars)
    sys.stdout.write(json.dumps(answer, ensure_ascii=False))


if __name__ == "__main__":
    main()
