"""Which due files to ingest first, so that no project's files hold up another's: the due files are
taken in turns, one of each project's (its soonest) before a second of any, the projects in the order
of their soonest file. The local poller also keeps one of its workers from any one project
(local/poller.py); on AWS, each added file's invocation sweeps on its own."""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.storage.vector_store_files import FileRef


def in_turns(due: Iterable[FileRef]) -> list[FileRef]:
    """`due` (soonest first) reordered: each project's first file, then each one's second, and so on."""
    by_project: dict[str, list[FileRef]] = {}
    for ref in due:
        by_project.setdefault(ref.project_id, []).append(ref)
    rounds = max((len(refs) for refs in by_project.values()), default=0)
    return [refs[turn] for turn in range(rounds) for refs in by_project.values() if turn < len(refs)]
