from __future__ import annotations

import threading

from chalicelib.domain import ids


def test_ids_carry_the_official_prefixes_and_a_fixed_length_body():
    for kind, prefix in ids.PREFIXES.items():
        value = ids.new_id(kind)
        assert value.startswith(prefix)
        assert len(value) == len(prefix) + ids.BODY_LENGTH
        assert ids.is_valid_id(kind, value)


def test_ids_minted_by_one_process_strictly_increase_even_within_a_millisecond():
    minted = [ids.new_id("message") for _ in range(20_000)]
    assert minted == sorted(minted)
    assert len(set(minted)) == len(minted)


def test_ids_from_concurrent_threads_are_unique():
    results: list[list[str]] = [[] for _ in range(4)]

    def mint(bucket: list[str]) -> None:
        bucket.extend(ids.new_id("thread") for _ in range(5000))

    workers = [threading.Thread(target=mint, args=(bucket,)) for bucket in results]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    everything = [value for bucket in results for value in bucket]
    assert len(set(everything)) == len(everything)
    for bucket in results:
        assert bucket == sorted(bucket)


def test_malformed_ids_are_not_valid():
    good = ids.new_id("thread")
    assert not ids.is_valid_id("message", good)
    assert not ids.is_valid_id("thread", good + "x")
    assert not ids.is_valid_id("thread", good[:-1] + "-")
    assert not ids.is_valid_id("thread", "thread_")
    assert not ids.is_valid_id("thread", "")
