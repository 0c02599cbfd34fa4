"""Citations: `file_citation` annotations for the markers a model writes after using file_search, and
`file_path` annotations for the links it writes to files its code made with code_interpreter.

The engine numbers what each search returned and shows the model every result under a marker in the
official style, `【3:1†manual.pdf】`: the run's search number 3, its result number 1. A marker the model
copies into its answer becomes an annotation whose `start_index` and `end_index` point exactly at the
marker in `text.value` (Python string indices: Unicode code points, as OpenAI's). A marker that names no
result the run returned stays plain text and cites nothing.

A link such as `sandbox:/mnt/data/out.csv` that names a file the run's code wrote becomes a `file_path`
annotation of the file, pointing exactly at the link; a link to anything else stays plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

# (search number, result number) -> the file the result came from
Sources: TypeAlias = Mapping[tuple[int, int], str]

MARKER = re.compile(r"【(\d{1,4}):(\d{1,4})†[^【】\n]{0,256}】")
MAX_MARKER = 270  # characters: no longer run can be one
LINK = re.compile(r"sandbox:/mnt/data/([^\s()\[\]<>\"'`【】]{1,512})")
_LINK_START = "sandbox:/mnt/data/"
_TRAILING = ".,;:!?。，、；：！？”’」』"  # punctuation after a link, not part of it (unless a file is named so)


@dataclass(frozen=True)
class Citable:
    """What a reply may cite: the search results the run showed the model, and the files its code
    wrote (by their path in the sandbox's working directory)."""

    sources: Sources = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)


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


def _cited(match: re.Match[str], citable: Citable) -> dict[str, Any] | None:
    file_id = citable.sources.get((int(match.group(1)), int(match.group(2))))
    return _annotation(match, file_id) if file_id is not None else None


def _linked(match: re.Match[str], citable: Citable) -> dict[str, Any] | None:
    path = match.group(1)
    while path not in citable.files and path and path[-1] in _TRAILING:
        path = path[:-1]
    if path not in citable.files:
        return None
    end = match.start(1) + len(path)
    return {
        "type": "file_path",
        "text": match.string[match.start() : end],
        "start_index": match.start(),
        "end_index": end,
        "file_path": {"file_id": citable.files[path]},
    }


def citations_in(text: str, citable: Citable) -> list[dict[str, Any]]:
    """The message text's citations and file links, in order."""
    found = [note for match in MARKER.finditer(text) if (note := _cited(match, citable))]
    if citable.files:
        found += [note for match in LINK.finditer(text) if (note := _linked(match, citable))]
    return sorted(found, key=lambda note: int(note["start_index"]))


class Scanner:
    """The citations of a text that arrives in pieces: each piece fed returns the annotations it
    completed, numbered as the official deltas number them (`index`, from 0 in the message), with
    offsets into the whole text. Fed the same pieces, it finds what `citations_in` finds in their join
    (but for a link at the very end, which no piece completes: the completed message carries it)."""

    def __init__(self, citable: Citable) -> None:
        self.citable = citable
        self.text = ""
        self.count = 0
        self._from = 0  # where a marker or link not yet complete may start; all before it is scanned

    def feed(self, piece: str) -> list[dict[str, Any]]:
        self.text += piece
        if not self.citable.sources and not self.citable.files:
            return []
        found: list[tuple[int, dict[str, Any]]] = []
        pending = len(self.text)
        for match in MARKER.finditer(self.text, self._from):
            if note := _cited(match, self.citable):
                found.append((match.start(), note))
        opening = self.text.rfind("【", self._from)
        if opening != -1 and "】" not in self.text[opening:] and len(self.text) - opening <= MAX_MARKER:
            pending = opening
        if self.citable.files:
            for match in LINK.finditer(self.text, self._from):
                if match.end() == len(self.text):  # the link may go on in the next piece
                    pending = min(pending, match.start())
                elif note := _linked(match, self.citable):
                    found.append((match.start(), note))
            for size in range(min(len(_LINK_START), len(self.text) - self._from), 0, -1):
                if self.text.endswith(_LINK_START[:size]):  # the start of a link, cut by the piece's end
                    pending = min(pending, len(self.text) - size)
                    break
        notes = []
        for start, note in sorted(found, key=lambda item: item[0]):
            if start < pending:
                notes.append({"index": self.count, **note})
                self.count += 1
        self._from = pending
        return notes
