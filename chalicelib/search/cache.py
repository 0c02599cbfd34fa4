"""What one process keeps of the vector store files it has searched: each file's text and keyword index
(search/retrieval.py) and, locally, its vectors (search/vectors.py), in one memory budget,
SPINDLE_SEARCH_CACHE_MB, keyed by the ingestion that made them (so a file removed and added again is
never searched as it was).

To make room the cache drops the least recently searched files that the search at hand does not need;
when the files one search needs do not fit at all, those that do not are read for the search and not
kept (an LRU cycling through them would keep none, and reload every file on every search).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from chalicelib.config import settings
from chalicelib.storage.vector_store_files import StoredFile

Key = tuple[str, str, str, str]  # (what is kept, store key, file id, ingestion)


def key(kind: str, file: StoredFile) -> Key:
    return (kind, file.ref.store_key, file.ref.file_id, file.chunks_version or "")


class FileCache:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.held = 0  # bytes, by the sizes given to `put`
        self._entries: OrderedDict[Key, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, wanted: Key) -> Any:
        with self._lock:
            found = self._entries.get(wanted)
            if found is None:
                return None
            self._entries.move_to_end(wanted)
            return found[0]

    def put(self, added: Key, value: Any, size: int, needed: set[Key]) -> bool:
        """Keep `value` (about `size` bytes), dropping entries the current search does not need
        (`needed`) to make room. Whether it was kept."""
        with self._lock:
            if added in self._entries:
                return True
            for old in [old for old in self._entries if old not in needed]:
                if self.held + size <= self.budget:
                    break
                self.held -= self._entries.pop(old)[1]
            if self.held + size > self.budget:
                return False
            self._entries[added] = (value, size)
            self.held += size
            return True

    def clear(self) -> None:
        """Forget everything, as a new process would."""
        with self._lock:
            self._entries.clear()
            self.held = 0


files = FileCache(settings.search_cache_mb * 1024 * 1024)
