"""Chunking for vector-store files: a sliding window of tokens, as OpenAI's `static` chunking strategy.

A file is cut into windows of at most `max_tokens` tokens (counted by `tokens.py`), each next window
starting `max_tokens - overlap_tokens` tokens after the previous one, so that consecutive chunks share
exactly `overlap_tokens` tokens. A window does not look for sentence or paragraph breaks: the official
strategy is a plain token window, and a plain window keeps chunk sizes predictable.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

from chalicelib.ingest.tokens import iter_token_spans

# The official bounds of `chunking_strategy.static`: max_chunk_size_tokens in [100, 4096], and
# chunk_overlap_tokens at most half of it.
MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 4096
# The `auto` strategy: (max_chunk_size_tokens, chunk_overlap_tokens), as OpenAI documents it.
AUTO = (800, 400)


@dataclass(frozen=True)
class Chunk:
    """One window of the source text: `text == source[start:end]`, holding `tokens` tokens."""

    text: str
    start: int
    end: int
    tokens: int


def validate_chunking(max_tokens: int, overlap_tokens: int) -> None:
    """Raise ValueError unless (max_tokens, overlap_tokens) is a valid static chunking strategy."""
    # bool is an int subclass, and True would otherwise pass as a window of 1 token.
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise ValueError(f"max_tokens must be an integer, not {max_tokens!r}.")
    if isinstance(overlap_tokens, bool) or not isinstance(overlap_tokens, int):
        raise ValueError(f"overlap_tokens must be an integer, not {overlap_tokens!r}.")
    if not MIN_MAX_TOKENS <= max_tokens <= MAX_MAX_TOKENS:
        raise ValueError(f"max_tokens must be between {MIN_MAX_TOKENS} and {MAX_MAX_TOKENS}, not {max_tokens}.")
    if not 0 <= overlap_tokens <= max_tokens // 2:
        raise ValueError(
            f"overlap_tokens must be between 0 and half of max_tokens ({max_tokens // 2}), not {overlap_tokens}."
        )


def chunk_text(text: str, max_tokens: int = AUTO[0], overlap_tokens: int = AUTO[1]) -> list[Chunk]:
    """Cut `text` into overlapping windows of at most `max_tokens` tokens.

    Each chunk runs from its first token's start to its last token's end, and `text[chunk.start:
    chunk.end] == chunk.text`. Consecutive chunks share exactly `overlap_tokens` tokens; the last chunk
    ends at the end of the text, and the windows stop there, so no chunk lies wholly inside the one
    before it. An empty or whitespace-only text has no chunks.
    """
    validate_chunking(max_tokens, overlap_tokens)
    if not text or text.isspace():
        return []
    # Two flat integer arrays (16 bytes a token) instead of a list of tuples (about 120): a file of
    # millions of tokens must fit in a Lambda's memory next to its text and its chunks.
    starts: array[int] = array("q")
    ends: array[int] = array("q")
    for start, end in iter_token_spans(text):
        starts.append(start)
        ends.append(end)
    total = len(starts)
    stride = max_tokens - overlap_tokens  # >= max_tokens / 2 >= 50, so the loop always advances
    chunks: list[Chunk] = []
    first = 0
    while True:
        last = min(first + max_tokens, total)  # one past the window's last token
        start, end = starts[first], ends[last - 1]
        chunks.append(Chunk(text=text[start:end], start=start, end=end, tokens=last - first))
        if last == total:
            return chunks
        first += stride
