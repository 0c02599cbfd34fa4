"""`POST /v1/vector_stores/{id}/search` through the official SDK over HTTP: keyword search (BM25) over
the store's ingested chunks, with the official page, scores from 0 to 1, max_num_results,
score_threshold, attribute filters, several queries and rewrite_query."""

from __future__ import annotations

import uuid

import openai
import pytest

from tests.pdf_maker import make_pdf

RETURNS = "Returns. Unworn shoes may be returned within 30 days for a full refund; keep the receipt."
SHIPPING = "Shipping. Orders leave the warehouse within two days, and express delivery costs ten euros."
WARRANTY = "Warranty. The boots carry a two year warranty against defects in the soles and the stitching."


@pytest.fixture
def client(server):
    return server.client(f"sk-vss-{uuid.uuid4().hex}")


def a_store(client, files, **kwargs):
    """A store holding `files` (name -> (text, attributes)), all ingested."""
    store = client.vector_stores.create(name="shop")
    for name, (text, attributes) in files.items():
        uploaded = client.files.create(file=(name, text.encode()), purpose="assistants")
        added = client.vector_stores.files.create_and_poll(
            vector_store_id=store.id, file_id=uploaded.id, attributes=attributes, poll_interval_ms=50, **kwargs
        )
        assert added.status == "completed", added.last_error
    return store


SHOP = {
    "returns.txt": (RETURNS, {"topic": "returns", "year": 2024, "public": True}),
    "shipping.txt": (SHIPPING, {"topic": "shipping", "year": 2025, "public": True}),
    "warranty.md": (WARRANTY, {"topic": "warranty", "year": 2023, "public": False}),
}


def test_the_best_chunk_comes_first_in_the_official_page(client):
    store = a_store(client, SHOP)
    page = client.vector_stores.search(store.id, query="How many days do I have to return shoes?")
    results = list(page)
    # shipping.txt holds "days" only; warranty.md holds no query term and is no result
    assert [result.filename for result in results] == ["returns.txt", "shipping.txt"]
    best = results[0]
    assert best.content[0].type == "text" and best.content[0].text == RETURNS
    assert best.attributes == {"topic": "returns", "year": 2024, "public": True}
    assert 0 < best.score <= 1
    raw = client.vector_stores.with_raw_response.search(store.id, query="warranty boots").http_response.json()
    assert raw["object"] == "vector_store.search_results.page"
    assert raw["search_query"] == ["warranty boots"]
    assert (raw["has_more"], raw["next_page"]) == (False, None)
    assert [item["filename"] for item in raw["data"]] == ["warranty.md"]
    assert set(raw["data"][0]) == {"file_id", "filename", "score", "attributes", "content"}


def test_scores_rank_and_threshold_and_limit(client):
    store = a_store(client, SHOP)
    both = list(client.vector_stores.search(store.id, query="days warranty"))
    assert {result.filename for result in both} == {"returns.txt", "shipping.txt", "warranty.md"}
    scores = [result.score for result in both]
    assert scores == sorted(scores, reverse=True) and all(0 < score <= 1 for score in scores)
    assert len(list(client.vector_stores.search(store.id, query="days warranty", max_num_results=1))) == 1
    threshold = (scores[0] + scores[-1]) / 2
    above = list(
        client.vector_stores.search(store.id, query="days warranty", ranking_options={"score_threshold": threshold})
    )
    assert [result.score for result in above] == [score for score in scores if score >= threshold]
    assert list(client.vector_stores.search(store.id, query="zebra crossing")) == []


def test_attribute_filters_comparison_and_compound(client):
    store = a_store(client, SHOP)

    def names(filters) -> set[str]:
        return {
            result.filename for result in client.vector_stores.search(store.id, query="days warranty", filters=filters)
        }

    assert names({"type": "eq", "key": "topic", "value": "returns"}) == {"returns.txt"}
    assert names({"type": "ne", "key": "topic", "value": "returns"}) == {"shipping.txt", "warranty.md"}
    assert names({"type": "gte", "key": "year", "value": 2024}) == {"returns.txt", "shipping.txt"}
    assert names({"type": "lt", "key": "year", "value": 2024}) == {"warranty.md"}
    assert names({"type": "in", "key": "topic", "value": ["warranty", "shipping"]}) == {"warranty.md", "shipping.txt"}
    assert names({"type": "nin", "key": "topic", "value": ["warranty"]}) == {"returns.txt", "shipping.txt"}
    assert names({"type": "eq", "key": "public", "value": False}) == {"warranty.md"}
    assert names({"type": "eq", "key": "missing", "value": "x"}) == set()
    compound = {
        "type": "or",
        "filters": [
            {"type": "eq", "key": "topic", "value": "warranty"},
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "public", "value": True},
                    {"type": "gt", "key": "year", "value": 2024},
                ],
            },
        ],
    }
    assert names(compound) == {"warranty.md", "shipping.txt"}


def test_several_queries_and_rewrite_query(client):
    store = a_store(client, SHOP)
    page = client.vector_stores.with_raw_response.search(
        store.id, query=["refund receipt", "express delivery"]
    ).http_response.json()
    assert page["search_query"] == ["refund receipt", "express delivery"]
    assert {item["filename"] for item in page["data"]} == {"returns.txt", "shipping.txt"}
    rewritten = client.vector_stores.with_raw_response.search(
        store.id, query="What is the warranty on the boots?", rewrite_query=True
    ).http_response.json()
    assert rewritten["search_query"] == ["warranty boots"]
    assert [item["filename"] for item in rewritten["data"]] == ["warranty.md"]


def test_a_long_file_returns_its_matching_chunk_and_a_pdf_is_searchable(client):
    filler = " ".join(f"Paragraph {n} talks about the weather in town." for n in range(200))
    text = filler + " The secret code for the vault is 4471, the vault is in the cellar. " + filler
    store = a_store(
        client,
        {"long.txt": (text, None)},
        chunking_strategy={"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}},
    )
    results = list(client.vector_stores.search(store.id, query="vault code", max_num_results=3))
    assert "4471" in results[0].content[0].text and len(results[0].content[0].text) < 800
    pdf = make_pdf(["Hold the power button for ten seconds to reset."], ["Warranty: two years."])
    client.vector_stores.files.upload_and_poll(vector_store_id=store.id, file=("manual.pdf", pdf), poll_interval_ms=50)
    found = list(client.vector_stores.search(store.id, query="reset power button"))
    assert found[0].filename == "manual.pdf" and "ten seconds" in found[0].content[0].text


def test_removed_files_are_not_searched(client):
    store = a_store(client, SHOP)
    found = {result.filename: result.file_id for result in client.vector_stores.search(store.id, query="days warranty")}
    assert set(found) == {"returns.txt", "shipping.txt", "warranty.md"}
    client.vector_stores.files.delete(found["returns.txt"], vector_store_id=store.id)
    after = {result.filename for result in client.vector_stores.search(store.id, query="days warranty")}
    assert after == {"shipping.txt", "warranty.md"}


def test_bad_searches_are_refused(client, other_client):
    store = a_store(client, {"returns.txt": (RETURNS, None)})
    with pytest.raises(openai.NotFoundError):
        other_client.vector_stores.search(store.id, query="refund")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search("vs_doesnotexist", query="refund")
    for bad in (
        {"max_num_results": 0},
        {"max_num_results": 51},
        {"ranking_options": {"score_threshold": 1.5}},
        {"ranking_options": {"ranker": "fastest"}},
        {"filters": {"type": "eq", "key": "topic"}},
        {"filters": {"type": "and", "filters": [{"type": "like", "key": "topic", "value": "r"}]}},
    ):
        with pytest.raises(openai.BadRequestError) as refused:
            client.vector_stores.search(store.id, query="refund", **bad)
        assert refused.value.status_code == 400 and refused.value.body["type"] == "invalid_request_error"


def test_a_file_added_again_is_searched_with_its_new_chunks(client):
    text = " ".join(f"Line {n} of the handbook." for n in range(300)) + " The lighthouse keeper is Ada."
    store = a_store(client, {"handbook.txt": (text, None)})
    whole = list(client.vector_stores.search(store.id, query="lighthouse keeper"))
    file_id = whole[0].file_id
    client.vector_stores.files.delete(file_id, vector_store_id=store.id)
    small = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 0}}
    client.vector_stores.files.create_and_poll(
        vector_store_id=store.id, file_id=file_id, chunking_strategy=small, poll_interval_ms=50
    )
    again = list(client.vector_stores.search(store.id, query="lighthouse keeper"))
    assert "Ada" in again[0].content[0].text and len(again[0].content[0].text) < len(whole[0].content[0].text)
