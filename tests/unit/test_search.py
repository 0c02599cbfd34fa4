"""Keyword search (BM25 over per-file segments) and attribute filters, as plain functions."""

from __future__ import annotations

import json

import pytest

from chalicelib.search import filters
from chalicelib.search.keywords import Corpus, Segment, index_chunks, terms
from chalicelib.search.retrieval import rewritten


def corpus(*files: list[str]) -> Corpus:
    # through JSON, as the index is stored in S3
    return Corpus([Segment.of(json.loads(json.dumps(index_chunks(chunks)))) for chunks in files])


def test_terms_fold_case_drop_stop_words_and_plurals():
    assert terms("The Policies of our SERVICES, and the boxes' glasses") == ["policy", "service", "box", "glass"]
    assert terms("files shoes churches") == ["file", "shoe", "church"]
    assert terms("status bus analysis") == ["status", "bus", "analysis"]  # -us, -ss and -is are no plurals
    assert terms("退货政策 v2") == ["退货", "货政", "政策", "v2"]
    assert terms("ab退货") == ["ab", "退货"]


def test_rarer_terms_weigh_more_and_scores_stay_between_0_and_1():
    found = corpus(
        ["the cat sat on the mat", "a dog and a cat", "the cat cat cat"],
        ["a zebra and a cat", "nothing to see here"],
    )
    hits = found.search("zebra cat", 10)
    assert (hits[0].segment, hits[0].chunk) == (1, 0)  # the only chunk with the rare term
    assert {(hit.segment, hit.chunk) for hit in hits} == {(0, 0), (0, 1), (0, 2), (1, 0)}
    assert all(0 < hit.score < 1 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert found.search("unicorn", 10) == [] and found.search("the and", 10) == []
    assert found.search("zebra cat", 2) == hits[:2]


def test_more_occurrences_score_higher_and_saturate():
    found = corpus(["apple pear", "apple apple apple pear", "apple " * 40 + "pear"])
    by_chunk = {hit.chunk: hit.score for hit in found.search("apple", 10)}
    assert by_chunk[1] > by_chunk[0]
    assert all(score < 1 for score in by_chunk.values())


def test_statistics_span_every_file_searched_together():
    alone = corpus(["apple banana", "apple cherry"])
    together = corpus(["apple banana", "apple cherry"], ["banana split"] * 5)
    # alone, banana and cherry are as rare as each other and the two chunks tie; beside five more
    # bananas, banana weighs less, and the cherry chunk wins
    tied = alone.search("banana cherry", 2)
    assert tied[0].score == pytest.approx(tied[1].score)
    ranked = together.search("banana cherry", 10)
    assert (ranked[0].segment, ranked[0].chunk) == (0, 1)
    assert ranked[0].score > next(hit.score for hit in ranked if (hit.segment, hit.chunk) == (0, 0))


def test_score_of_a_single_text_agrees_with_search():
    found = corpus(["the vault code is 4471", "the weather is fine"], ["vault doors"])
    best = found.search("vault code", 1)[0]
    assert found.score("vault code", "the vault code is 4471") == pytest.approx(best.score)
    assert found.score("vault code", "nothing relevant") == 0.0


def test_rewrite_drops_words_without_meaning():
    assert rewritten("What is the return policy?") == "return policy"
    assert rewritten("the") == "the"  # nothing left: the query as it was


ATTRIBUTES = {"topic": "returns", "year": 2024, "public": True, "score": 4.5}


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({"type": "eq", "key": "topic", "value": "returns"}, True),
        ({"type": "eq", "key": "year", "value": 2024.0}, True),
        ({"type": "eq", "key": "public", "value": 1}, False),  # a boolean is never a number
        ({"type": "eq", "key": "year", "value": "2024"}, False),
        ({"type": "ne", "key": "topic", "value": "shipping"}, True),
        ({"type": "ne", "key": "absent", "value": "x"}, True),
        ({"type": "eq", "key": "absent", "value": "x"}, False),
        ({"type": "gt", "key": "year", "value": 2023}, True),
        ({"type": "gte", "key": "score", "value": 4.5}, True),
        ({"type": "lt", "key": "score", "value": 4.5}, False),
        ({"type": "lte", "key": "topic", "value": "s"}, True),  # strings compare as strings
        ({"type": "gt", "key": "topic", "value": 1}, False),  # across kinds: false, not an error
        ({"type": "gt", "key": "public", "value": False}, False),
        ({"type": "in", "key": "year", "value": [2023, 2024]}, True),
        ({"type": "nin", "key": "year", "value": [2023, 2024]}, False),
        ({"type": "nin", "key": "absent", "value": [1]}, True),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "public", "value": True},
                    {"type": "lt", "key": "year", "value": 2024},
                ],
            },
            False,
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "public", "value": False},
                    {"type": "gte", "key": "year", "value": 2024},
                ],
            },
            True,
        ),
        ({"type": "and", "filters": []}, True),
        ({"type": "or", "filters": []}, False),
    ],
)
def test_filters(filter_, expected):
    assert filters.matches(filter_, ATTRIBUTES) is expected


def test_a_file_without_attributes_and_values_in_the_other_shape():
    assert filters.matches({"type": "eq", "key": "topic", "value": "x"}, None) is False
    assert filters.matches(None, None) is True
    # the schema lets every operator take one value or an array
    assert filters.matches({"type": "in", "key": "topic", "value": "returns"}, ATTRIBUTES) is True
    assert filters.matches({"type": "nin", "key": "topic", "value": "returns"}, ATTRIBUTES) is False
    assert filters.matches({"type": "eq", "key": "topic", "value": ["returns"]}, ATTRIBUTES) is False
    assert filters.matches({"type": "ne", "key": "topic", "value": ["returns"]}, ATTRIBUTES) is True


def test_the_search_cache_never_cycles_through_what_one_search_needs():
    from chalicelib.search.cache import FileCache

    size = 1000
    cache = FileCache(budget=2 * size)
    keys = [("keywords", "store", f"file{n}", "v") for n in range(3)]
    needed = set(keys)
    assert [cache.put(key, object(), size, needed) for key in keys] == [True, True, False]  # the third does not fit
    assert cache.get(keys[0]) is not None and cache.get(keys[1]) is not None  # and pushed nothing out
    assert cache.put(keys[2], object(), size, needed) is False  # searched again: still read through, no cycling
    other = ("vectors", "store", "other", "v")
    assert cache.put(other, object(), size, {other}) is True  # another search makes room from what it does not need
    assert cache.get(other) is not None and sum(cache.get(key) is not None for key in keys[:2]) == 1
    assert (len(cache), cache.held) == (2, 2 * size)
