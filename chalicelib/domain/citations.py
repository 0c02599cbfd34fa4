"""Citations: `file_citation` annotations for the markers a model writes after using file_search.

The engine numbers what each search returned and shows the model every result under a marker in the
official style, `【3:1†manual.pdf】`: the run's search number 3, its result number 1. A marker the model
copies into its answer becomes an annotation whose `start_index` and `end_index` point exactly at the
marker in `text.value` (Python string indices: Unicode code points, as OpenAI's). A marker that names no
result the run returned stays plain text and cites nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeAlias

# (search number, result number) -> the file the result came from
Sources: TypeAlias = Mapping[tuple[int, int], str]

MARKER = re.compile(r"【(\d{1,4}):(\d{1,4})†[^【】\n]{0,256}】")
MAX_MARKER = 270  # characters: no longer run can be one


def marker(search: int, result: int, filename: str) -> str:
    return f"【{search}:{result}†{filename}】"


def _annotation(match: re.Match[str], file_id: str) -> dict[str, Any]:
    return {
        "type": "file_citation",
        "text": match.group(0),
        "start_index": match.start(),
        "end_index": match.end(),
        "file_citation": {"file_id": file_id},
    }


def citations_in(text: str, sources: Sources) -> list[dict[str, Any]]:
    """The message text's citations, in order."""
    found = []
    for match in MARKER.finditer(text):
        file_id = sources.get((int(match.group(1)), int(match.group(2))))
        if file_id is not None:
            found.append(_annotation(match, file_id))
    return found


class Scanner:
    """The citations of a text that arrives in pieces: each piece fed returns the annotations it
    completed, numbered as the official deltas number them (`index`, from 0 in the message), with
    offsets into the whole text. Fed the same pieces, it finds what `annotations` finds in their join."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.text = ""
        self.count = 0
        self._from = 0  # where a marker not yet complete may start; all before it is scanned

    def feed(self, piece: str) -> list[dict[str, Any]]:
        self.text += piece
        if not self.sources:
            return []
        found = []
        for match in MARKER.finditer(self.text, self._from):
            self._from = match.end()
            file_id = self.sources.get((int(match.group(1)), int(match.group(2))))
            if file_id is not None:
                found.append({"index": self.count, **_annotation(match, file_id)})
                self.count += 1
        opening = self.text.rfind("【", self._from)
        pending = opening != -1 and "】" not in self.text[opening:] and len(self.text) - opening <= MAX_MARKER
        self._from = opening if pending else len(self.text)
        return found
