"""Time-sortable ids with the official prefixes.

An id is `<prefix><9 chars of milliseconds><14 chars of randomness>` in base62 using the alphabet
0-9A-Za-z, which sorts the same as bytes, so ordering ids is ordering by creation time. Within one
millisecond a process increments the random part instead of drawing a new one (as ULID does), so
ids minted by one process are strictly increasing: pagination cursors become key conditions.
"""

from __future__ import annotations

import os
import threading
import time

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TIME_CHARS = 9  # 62**9 > 2**48 milliseconds (year 10889)
RANDOM_CHARS = 14  # 62**14 > 2**80
RANDOM_LIMIT = 62**RANDOM_CHARS
BODY_LENGTH = TIME_CHARS + RANDOM_CHARS

PREFIXES = {
    "thread": "thread_",
    "message": "msg_",
    "assistant": "asst_",
    "run": "run_",
    "step": "step_",
    "call": "call_",
    "file": "file-",
    "vector_store": "vs_",
    "vector_store_file_batch": "vsfb_",
}

_lock = threading.Lock()
_last_millis = -1
_last_random = 0


def _encode(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def _next_body() -> str:
    global _last_millis, _last_random
    with _lock:
        millis = max(int(time.time() * 1000), _last_millis)
        if millis == _last_millis:
            _last_random += 1
            if _last_random >= RANDOM_LIMIT:  # astronomically unlikely: borrow the next millisecond
                millis += 1
                _last_random = int.from_bytes(os.urandom(10)) % (RANDOM_LIMIT // 2)
        else:
            # Start in the lower half so increments within the millisecond never overflow in practice.
            _last_random = int.from_bytes(os.urandom(10)) % (RANDOM_LIMIT // 2)
        _last_millis = millis
        return _encode(millis, TIME_CHARS) + _encode(_last_random, RANDOM_CHARS)


def new_id(kind: str) -> str:
    return PREFIXES[kind] + _next_body()


def is_valid_id(kind: str, value: str) -> bool:
    prefix = PREFIXES[kind]
    if not value.startswith(prefix) or len(value) != len(prefix) + BODY_LENGTH:
        return False
    return all(char in ALPHABET for char in value[len(prefix) :])
