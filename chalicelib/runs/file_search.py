"""The file_search tool, which the engine runs itself (no requires_action).

When a run has the tool and a vector store is attached (the assistant's and the thread's
`tool_resources.file_search.vector_store_ids`), the model is offered a function, `file_search`, taking
the queries to search for. When the model calls it, the engine searches (search/retrieval.py, the same
search as the search route), records the call in a tool_calls step as the official
RunStepDetailsToolCallsFileSearchObject, and shows the model the results, each under a citation marker
(domain/citations.py), within a budget of RESULT_TOKEN_BUDGET tokens for all of a turn's searches. The
model then answers, or searches again, up to MAX_SEARCH_ROUNDS turns that search in one run; the next
turn is sent `tool_choice: none`, and a search it makes anyway is answered that the limit is reached.

Each call keeps, beside its official fields, what the model sent and the search's number in the run
(`_model`): the model's history is rebuilt from the steps, and served steps never show it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import vector_stores
from chalicelib.domain.citations import Sources, marker
from chalicelib.ingest.tokens import count_tokens
from chalicelib.runs.builtin_calls import PRIVATE, calls
from chalicelib.runs.providers.base import FunctionTool
from chalicelib.runs.resources import ToolResources
from chalicelib.storage.records import StoredRun

TOOL_NAME = "file_search"
MAX_SEARCH_ROUNDS = 5  # model turns that search, per run
DEFAULT_MAX_RESULTS = 20  # the official default for gpt-4* models
RESULT_TOKEN_BUDGET = 16_000  # of result text shown to the model per turn, as OpenAI's tool
STORE_WAIT_SECONDS = 60.0  # a run waits this long (from its start) for its stores' files to be ingested
MAX_QUERIES = 5

TOOL = FunctionTool(
    name=TOOL_NAME,
    description=(
        "Search the files the user has provided (their vector stores) for passages relevant to the "
        "conversation. Returns numbered passages, each under a citation marker."
    ),
    parameters={
        "type": "object",
        "properties": {
            "queries": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 1,
                "maxItems": MAX_QUERIES,
                "description": "One to five search queries, each a few keywords or a short question.",
            }
        },
        "required": ["queries"],
        "additionalProperties": False,
    },
)

INSTRUCTIONS = (
    "You can search the user's files with the `file_search` tool. Each passage it returns starts with a "
    "citation marker such as 【0:1†manual.pdf】. When your answer uses a passage, cite it by copying its "
    "marker exactly, right after the sentence it supports. Never write a marker you were not given."
)


@dataclass(frozen=True)
class FileSearch:
    """The tool as a run has it: where it searches and how many results it shows."""

    vector_store_ids: tuple[str, ...]
    max_num_results: int
    ranking_options: Mapping[str, Any]


def configured(stored: StoredRun, resources: ToolResources) -> FileSearch | None:
    """The run's file_search, if it has the tool and any store is attached."""
    tool = next((tool for tool in stored.run["tools"] if tool.get("type") == TOOL_NAME), None)
    if tool is None:
        return None
    store_ids = resources.ids(TOOL_NAME, "vector_store_ids")
    if not store_ids:
        return None
    options = tool.get("file_search") or {}
    ranking = options.get("ranking_options") or {}
    return FileSearch(
        vector_store_ids=tuple(dict.fromkeys(store_ids)),
        max_num_results=options.get("max_num_results") or DEFAULT_MAX_RESULTS,
        ranking_options={
            "ranker": ranking.get("ranker") or "auto",
            "score_threshold": ranking.get("score_threshold") or 0.0,
        },
    )


# --- what earlier rounds left in the run's steps ---------------------------------------------------


def searches_so_far(steps: Iterable[Mapping[str, Any]]) -> int:
    return len(calls(steps, TOOL_NAME))


def rounds_so_far(steps: Iterable[Mapping[str, Any]]) -> int:
    """How many model turns searched: steps holding a file_search call."""
    return sum(
        1
        for step in steps
        if step["type"] == "tool_calls" and any(c["type"] == TOOL_NAME for c in step["step_details"]["tool_calls"])
    )


def sources(steps: Iterable[Mapping[str, Any]]) -> Sources:
    """Every result the run's searches showed the model, by (search number, result number)."""
    found: dict[tuple[int, int], str] = {}
    for call in calls(steps, TOOL_NAME):
        number = call[PRIVATE]["search"]
        for index, result in enumerate(call[TOOL_NAME]["results"]):
            found[(number, index)] = result["file_id"]
    return found


def model_output(call: Mapping[str, Any]) -> str:
    """What the model is shown for a search: its results under their markers, or why there are none."""
    private = call[PRIVATE]
    if private.get("error"):
        return str(private["error"])
    results = call[TOOL_NAME]["results"]
    if not results:
        return "The search found nothing in the files."
    return "\n\n".join(
        f"{marker(private['search'], index, result['file_name'])}\n{result['content'][0]['text']}"
        for index, result in enumerate(results)
    )


# --- running a call ----------------------------------------------------------------------------------


def _queries(arguments: str) -> list[str]:
    """The queries the model asked for; ValueError saying what is wrong with its arguments."""
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError as error:
        raise ValueError(f"The file_search arguments are not JSON ({error}).") from None
    if not isinstance(parsed, dict):
        raise ValueError("The file_search arguments must be an object with `queries`.")
    queries = parsed.get("queries")
    if queries is None and isinstance(parsed.get("query"), str):
        queries = [parsed["query"]]
    if not isinstance(queries, list) or not queries or not all(isinstance(q, str) and q.strip() for q in queries):
        raise ValueError("file_search takes `queries`: a list of one to five non-empty strings.")
    return queries[:MAX_QUERIES]


def _within_budget(texts: Sequence[str], budget: int) -> tuple[int, int]:
    """How many results, in order, fit `budget` tokens, and the tokens they take."""
    spent = 0
    for index, text in enumerate(texts):
        tokens = count_tokens(text)
        if spent + tokens > budget:
            return index, spent
        spent += tokens
    return len(texts), spent


def _call(setup: FileSearch, call_id: str, results: list[dict[str, Any]], private: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": TOOL_NAME,
        TOOL_NAME: {"ranking_options": dict(setup.ranking_options), "results": results},
        PRIVATE: private,
    }


def run_call(
    project_id: str, setup: FileSearch, call_id: str, arguments: str, number: int, budget: int
) -> tuple[dict[str, Any], int]:
    """Search as the model asked: the call's tool_calls entry, results with their content (served only
    when `include[]` asks for it) within `budget` tokens (what the turn's searches have left of
    RESULT_TOKEN_BUDGET), and `_model` (its arguments, its search number, any error); and the tokens
    its results take."""
    from chalicelib.search import retrieval  # runs that never search never load the index code

    private: dict[str, Any] = {"arguments": arguments, "search": number}
    try:
        queries = _queries(arguments)
    except ValueError as error:
        private["error"] = str(error)
        return _call(setup, call_id, [], private), 0
    hits = retrieval.search(
        vector_stores.searchable_stores(project_id, setup.vector_store_ids),
        queries,
        max_results=setup.max_num_results,
        score_threshold=float(setup.ranking_options["score_threshold"]),
    )
    kept, spent = _within_budget([hit.text for hit in hits], budget)
    results = [
        {
            "file_id": hit.file_id,
            "file_name": hit.filename,
            "score": round(hit.score, 6),
            "content": [{"type": "text", "text": hit.text}],
        }
        for hit in hits[:kept]
    ]
    return _call(setup, call_id, results, private), spent


def refused_call(setup: FileSearch, call_id: str, arguments: str, number: int) -> dict[str, Any]:
    """A search past the run's limit, not run: the model is told to answer with what it has."""
    private = {
        "arguments": arguments,
        "search": number,
        "error": f"The search limit of this run ({MAX_SEARCH_ROUNDS} searching turns) is reached: answer "
        "from the passages you have.",
    }
    return _call(setup, call_id, [], private)


def wait_for_stores(project_id: str, setup: FileSearch, started_at: float, moved_on: threading.Event) -> None:
    """Wait, until STORE_WAIT_SECONDS after the run started, while a store still ingests files, so that
    a file attached just before the run is searched (as the official tool waits for the thread's store)."""
    deadline = started_at + STORE_WAIT_SECONDS
    while time.time() < deadline and not moved_on.is_set():
        if not vector_stores.any_in_progress(project_id, setup.vector_store_ids):
            return
        moved_on.wait(min(0.5, max(0.0, deadline - time.time())))
