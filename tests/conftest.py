"""Shared fixtures. Settings are read at import, so the environment is set before chalicelib loads."""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("SPINDLE_DYNAMODB_ENDPOINT", None)
os.environ["SPINDLE_AUTH"] = "open"

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

from tests.servers import LocalServer, start_local_server  # noqa: E402


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    """`make dev`'s server (open auth) on a free port, shared by the end-to-end and contract tests."""
    with start_local_server(auth="open") as running:
        yield running


@pytest.fixture(scope="session")
def keys_server() -> Iterator[LocalServer]:
    """The same server with `SPINDLE_AUTH=keys`, as deployed; keys are minted with the CLI."""
    with start_local_server(auth="keys", SPINDLE_KEY_CACHE_SECONDS="0") as running:
        yield running


@pytest.fixture
def client(server: LocalServer):
    return server.client("sk-tenant-a")


@pytest.fixture
def other_client(server: LocalServer):
    return server.client("sk-tenant-b")


@pytest.fixture(scope="session")
def standin():
    """The scripted stand-in model (tests/standin_model.py) on a free loopback port."""
    from tests.standin_model import StandInModel

    with StandInModel() as running:
        yield running


def _model_settings(standin) -> dict[str, str]:
    """The OpenAI-compatible stand-in as the model provider: quick retries, a 5 s model timeout, and a
    60 s lease (a run that waits out a lease is told apart from one that ends at once)."""
    return {
        "SPINDLE_LLM_BASE_URL": standin.base_url,
        "SPINDLE_LLM_API_KEY": "test",
        "SPINDLE_LLM_MAX_RETRIES": "2",
        "SPINDLE_LLM_TIMEOUT_SECONDS": "5",
        "SPINDLE_RUN_LEASE_SECONDS": "60",
    }


@pytest.fixture(scope="session")
def model_server(standin) -> Iterator[LocalServer]:
    """The local server with the stand-in as its model provider (quick retries, a 5 s model timeout,
    and a 60 s lease, so that a run that waits out a lease is told apart from one that ends at once)."""
    with start_local_server(auth="open", **_model_settings(standin)) as running:
        yield running


@pytest.fixture(scope="session")
def code_server(standin) -> Iterator[LocalServer]:
    """The stand-in as model, and code_interpreter in bubblewrap (insisted on: a machine without it
    fails) with small limits: 2 s of CPU, 30 s of wall clock and 768 MB per execution (the wall clock
    far enough beyond the CPU limit that a loaded machine still reaches the CPU limit first)."""
    sessions = tempfile.mkdtemp(prefix="spindle-code-sessions-")  # where a test may watch a program's files
    limits = {
        "SPINDLE_CODE_SANDBOX": "bwrap",
        "SPINDLE_CODE_CPU_SECONDS": "2",
        "SPINDLE_CODE_WALL_SECONDS": "30",
        "SPINDLE_CODE_MEMORY_MB": "768",
        "SPINDLE_CODE_SANDBOX_DIR": sessions,
    }
    with start_local_server(auth="open", **_model_settings(standin), **limits) as running:
        yield running
    shutil.rmtree(sessions, ignore_errors=True)


@pytest.fixture(scope="session")
def embedding_server(standin) -> Iterator[LocalServer]:
    """The local server with semantic search: the stand-in's toy `/v1/embeddings` (tests/standin_model.py)
    embeds chunks and queries, and the offline model answers."""
    settings = {"SPINDLE_EMBEDDINGS": "openai:toy-embed", "SPINDLE_EMBEDDINGS_BASE_URL": standin.base_url}
    with start_local_server(auth="open", **settings) as running:
        yield running


@pytest.fixture(scope="session")
def standin_bedrock():
    """The scripted Amazon Bedrock ConverseStream stand-in (tests/standin_bedrock.py) on a free loopback port."""
    from tests.standin_bedrock import StandInBedrock

    with StandInBedrock() as running:
        yield running


@pytest.fixture(scope="session")
def bedrock_server(standin, standin_bedrock) -> Iterator[LocalServer]:
    """One deployment with two providers: `anthropic.` models go to Bedrock (its stand-in, signed for
    us-west-2), every other model to the OpenAI-compatible stand-in; settings as `model_server`'s."""
    with start_local_server(
        auth="open",
        SPINDLE_MODEL_PROVIDERS="anthropic.=bedrock",
        SPINDLE_BEDROCK_ENDPOINT=standin_bedrock.endpoint_url,
        SPINDLE_BEDROCK_REGION="us-west-2",
        **_model_settings(standin),
    ) as running:
        yield running
