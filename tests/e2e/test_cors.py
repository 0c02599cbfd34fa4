"""Which web pages may call the API from a browser. `make dev` takes any token as a project (open
mode), so a page a developer happens to visit must not be able to drive it: locally only the Console
(same origin, no header needed) and the origins SPINDLE_CORS_ORIGINS names get cross-origin answers.
On AWS every call needs a key, and the SDKs in browsers need `*`: the stream function, which serves
the same HTTP server there, keeps it."""

from __future__ import annotations

import http.client
import uuid
from collections.abc import Iterator

import pytest

from tests.servers import LocalServer, start_local_server, start_stream_function

EVIL = "https://evil.example"
APP = "http://localhost:3000"


def ask(server: LocalServer, method: str, origin: str, path: str = "/v1/threads") -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Authorization": f"Bearer sk-cors-{uuid.uuid4().hex}", "Origin": origin}
    if method == "OPTIONS":  # a browser's preflight for the SDK's POST
        headers |= {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def cors_headers(response: http.client.HTTPResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in response.getheaders() if name.lower().startswith("access-control-")}


@pytest.fixture(scope="module")
def app_origin_server() -> Iterator[LocalServer]:
    with start_local_server(auth="open", SPINDLE_CORS_ORIGINS=APP) as running:
        yield running


def test_make_dev_answers_no_other_page_cross_origin(server):
    for method in ("GET", "OPTIONS"):
        response = ask(server, method, EVIL)
        assert cors_headers(response) == {}, method
    assert ask(server, "GET", EVIL).status == 200  # the answer itself is unchanged; the browser hides it


def test_the_configured_origins_and_only_they_are_answered(app_origin_server):
    preflight = ask(app_origin_server, "OPTIONS", APP)
    allowed = cors_headers(preflight)
    assert allowed["access-control-allow-origin"] == APP
    assert "authorization" in allowed["access-control-allow-headers"].lower()
    assert "Origin" in (preflight.getheader("Vary") or "")
    assert cors_headers(ask(app_origin_server, "GET", APP))["access-control-allow-origin"] == APP
    for method in ("GET", "OPTIONS"):
        assert cors_headers(ask(app_origin_server, method, EVIL)) == {}, method


def test_the_stream_function_on_aws_answers_any_origin(model_server):
    with start_stream_function(model_server) as stream_function:
        response = ask(stream_function, "POST", EVIL, "/v1/threads/runs")
        assert cors_headers(response)["access-control-allow-origin"] == "*"
