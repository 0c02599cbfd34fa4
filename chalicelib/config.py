"""Every Spindle setting, read once from the environment. README's configuration table mirrors this."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

PROVIDERS = ("openai", "bedrock", "offline")
CODE_SANDBOXES = ("local", "bwrap", "process", "agentcore")


@dataclass(frozen=True)
class CodeLimits:
    """What one code_interpreter execution may use (and a session, for CPU), in the local sandbox."""

    cpu_seconds: int = 60
    session_cpu_seconds: int = 1800
    wall_seconds: float = 120.0
    memory_mb: int = 2048
    file_mb: int = 256
    disk_mb: int = 1024  # all of a session's files: past it, after an execution, the session is ended
    output_bytes: int = 64 * 1024
    max_processes: int = 64
    max_figures: int = 10


@dataclass(frozen=True)
class IngestLimits:
    """What reading one vector store file may take (ingest/pdf.py): past either, the file ends `failed`
    with `last_error`, and the worker goes on to the next file."""

    file_seconds: float = 60.0
    max_pages: int = 2000


@dataclass(frozen=True)
class Settings:
    auth_mode: str
    table_prefix: str
    region: str
    dynamodb_endpoint: str | None
    max_body_bytes: int
    key_cache_seconds: float
    run_driver: str
    state_machine_arn: str | None
    ingest_function: str | None
    llm_base_url: str | None
    llm_api_key: str | None
    llm_timeout_seconds: float
    llm_reply_max_seconds: float
    llm_max_retries: int
    offline_word_seconds: float
    model_providers: Mapping[str, str]
    bedrock_region: str | None
    bedrock_endpoint: str | None
    run_lease_seconds: float
    poll_after_ms: int
    stream_max_seconds: float
    stream_keepalive_seconds: float
    files_bucket: str
    s3_endpoint: str | None
    max_file_bytes: int
    search_cache_mb: int
    embeddings: str | None
    embeddings_base_url: str | None
    embeddings_api_key: str | None
    embeddings_dimensions: int | None
    vector_bucket: str | None
    s3vectors_endpoint: str | None
    dev_read_timeout_seconds: float
    code_sandbox: str
    code_sandbox_dir: str
    code_limits: CodeLimits
    code_session_idle_seconds: float
    agentcore_interpreter_id: str
    agentcore_endpoint: str | None
    ingest_limits: IngestLimits
    # Which web origins may call the API from a browser: ("*",) any (AWS, where every call needs a
    # key), else these alone (make dev, whose open mode takes any token as a project).
    cors_origins: tuple[str, ...]

    @property
    def max_upload_bytes(self) -> int:
        """The largest multipart upload body: the largest file and room for its form fields."""
        return self.max_file_bytes + 64 * 1024


def _pause_seconds(name: str) -> float:
    value = os.environ.get(name) or "0"
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 10:
        raise RuntimeError(f"{name} must be a number of seconds from 0 to 10, not {value!r}")
    return seconds


def _positive_seconds(name: str, default: str) -> float:
    value = os.environ.get(name, default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= 86400:  # also refuses nan; a socket timeout cannot be infinite
        raise RuntimeError(f"{name} must be seconds, at most a day, not {value!r}")
    return seconds


def _model_providers(llm_base_url: str | None) -> dict[str, str]:
    """SPINDLE_MODEL_PROVIDERS: `prefix=provider` pairs, comma-separated; `*` is the default."""
    routes = {"*": "openai" if llm_base_url else "offline"}
    for pair in filter(None, (item.strip() for item in os.environ.get("SPINDLE_MODEL_PROVIDERS", "").split(","))):
        prefix, _, name = (part.strip() for part in pair.partition("="))
        if not prefix or name not in PROVIDERS:
            raise RuntimeError(
                f"SPINDLE_MODEL_PROVIDERS: {pair!r} is not `model-prefix=provider` with a provider of {PROVIDERS}"
            )
        routes[prefix] = name
    return routes


def _read() -> Settings:
    auth_mode = os.environ.get("SPINDLE_AUTH", "keys")
    if auth_mode not in ("keys", "open"):
        raise RuntimeError(f"SPINDLE_AUTH must be 'keys' or 'open', not {auth_mode!r}")
    if os.environ.get("SPINDLE_RUN_DRIVER", "local") not in ("local", "stepfunctions"):
        raise RuntimeError("SPINDLE_RUN_DRIVER must be 'local' or 'stepfunctions'")
    return Settings(
        auth_mode=auth_mode,
        table_prefix=os.environ.get("SPINDLE_TABLE_PREFIX", "spindle-"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        dynamodb_endpoint=os.environ.get("SPINDLE_DYNAMODB_ENDPOINT") or None,
        max_body_bytes=int(os.environ.get("SPINDLE_MAX_BODY_BYTES", str(3 * 1024 * 1024))),
        key_cache_seconds=float(os.environ.get("SPINDLE_KEY_CACHE_SECONDS", "30")),
        run_driver=os.environ.get("SPINDLE_RUN_DRIVER", "local"),
        state_machine_arn=os.environ.get("SPINDLE_STATE_MACHINE_ARN") or None,
        # AWS: the Lambda that ingests vector store files, invoked (asynchronously) when one is added.
        ingest_function=os.environ.get("SPINDLE_INGEST_FUNCTION") or None,
        llm_base_url=os.environ.get("SPINDLE_LLM_BASE_URL") or None,
        llm_api_key=os.environ.get("SPINDLE_LLM_API_KEY") or None,
        # Each wait for the model (to connect, for its next chunk); the whole reply has a limit of its
        # own, under the 15 minutes a worker Lambda may run, so a model that trickles forever still ends.
        llm_timeout_seconds=float(os.environ.get("SPINDLE_LLM_TIMEOUT_SECONDS", "60")),
        llm_reply_max_seconds=_positive_seconds("SPINDLE_LLM_REPLY_MAX_SECONDS", "600"),
        llm_max_retries=int(os.environ.get("SPINDLE_LLM_MAX_RETRIES", "2")),
        # The offline model's pace: a pause before each word after the first (`make dev` sets 0.05, so
        # that its answers stream visibly and can be stopped; tests and the default take none).
        offline_word_seconds=_pause_seconds("SPINDLE_OFFLINE_WORD_SECONDS"),
        model_providers=_model_providers(os.environ.get("SPINDLE_LLM_BASE_URL") or None),
        bedrock_region=os.environ.get("SPINDLE_BEDROCK_REGION") or None,
        bedrock_endpoint=os.environ.get("SPINDLE_BEDROCK_ENDPOINT") or None,
        # Short, because the worker renews it every third of it while a step is in progress: a worker
        # that dies is replaced within one lease, however long model calls take.
        run_lease_seconds=float(os.environ.get("SPINDLE_RUN_LEASE_SECONDS") or "20"),
        poll_after_ms=int(os.environ.get("SPINDLE_POLL_AFTER_MS", "100")),
        # The stream function's Lambda timeout (900 s, API Gateway's limit for a streamed response) less
        # a margin in which the stream still ends with `error` and `done`: the run goes on regardless.
        stream_max_seconds=float(os.environ.get("SPINDLE_STREAM_MAX_SECONDS", "870")),
        # An SSE comment while the run is silent (a model thinking, a tool call waiting): API Gateway
        # drops a streamed response that sends nothing for 5 minutes, and proxies often sooner.
        stream_keepalive_seconds=_positive_seconds("SPINDLE_STREAM_KEEPALIVE_SECONDS", "10"),
        files_bucket=os.environ.get("SPINDLE_FILES_BUCKET", "spindle-files"),
        s3_endpoint=os.environ.get("SPINDLE_S3_ENDPOINT") or None,
        # Lambda takes at most 6 MB per request and API Gateway base64-encodes binary bodies (4/3).
        max_file_bytes=int(os.environ.get("SPINDLE_MAX_FILE_BYTES", str(4 * 1024 * 1024))),
        # What one process keeps of the files it has searched (their text and keyword index).
        # Default: half the function's memory on Lambda, 1 GiB elsewhere (`make dev`).
        search_cache_mb=int(
            os.environ.get("SPINDLE_SEARCH_CACHE_MB")
            or int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") or 2048) // 2
        ),
        # Semantic search (search/embeddings.py): `openai:<model>` or `bedrock:<model id>`; unset, none.
        embeddings=os.environ.get("SPINDLE_EMBEDDINGS") or None,
        embeddings_base_url=os.environ.get("SPINDLE_EMBEDDINGS_BASE_URL") or None,
        embeddings_api_key=os.environ.get("SPINDLE_EMBEDDINGS_API_KEY") or None,
        embeddings_dimensions=int(os.environ["SPINDLE_EMBEDDINGS_DIMENSIONS"])
        if os.environ.get("SPINDLE_EMBEDDINGS_DIMENSIONS")
        else None,
        # AWS: the S3 Vectors bucket that holds one vector index per store; unset, vectors are kept
        # beside the chunks and searched in process (search/vectors.py).
        vector_bucket=os.environ.get("SPINDLE_VECTOR_BUCKET") or None,
        s3vectors_endpoint=os.environ.get("SPINDLE_S3VECTORS_ENDPOINT") or None,
        # `make dev` only: how long a client may take to send a request's head (or sit idle).
        dev_read_timeout_seconds=_positive_seconds("SPINDLE_DEV_READ_TIMEOUT_SECONDS", "30"),
        # code_interpreter (sandbox/): where code runs, and what one execution may use.
        code_sandbox=_code_sandbox(),
        code_sandbox_dir=os.environ.get("SPINDLE_CODE_SANDBOX_DIR")
        or os.path.join(tempfile.gettempdir(), f"spindle-sandboxes-{os.getuid()}"),
        code_limits=CodeLimits(
            cpu_seconds=int(_positive_seconds("SPINDLE_CODE_CPU_SECONDS", "60")),
            wall_seconds=_positive_seconds("SPINDLE_CODE_WALL_SECONDS", "120"),
            memory_mb=int(os.environ.get("SPINDLE_CODE_MEMORY_MB", "2048")),
            max_processes=int(os.environ.get("SPINDLE_CODE_MAX_PROCESSES", "64")),
            output_bytes=int(os.environ.get("SPINDLE_CODE_OUTPUT_BYTES", str(64 * 1024))),
        ),
        # As the official tool's sessions: an hour without use ends a thread's session (and its files).
        code_session_idle_seconds=_positive_seconds("SPINDLE_CODE_SESSION_IDLE_SECONDS", "3600"),
        agentcore_interpreter_id=os.environ.get("SPINDLE_AGENTCORE_INTERPRETER_ID") or "aws.codeinterpreter.v1",
        agentcore_endpoint=os.environ.get("SPINDLE_AGENTCORE_ENDPOINT") or None,
        ingest_limits=_ingest_limits(),
        cors_origins=tuple(
            # as browsers send it in Origin: no path, so no trailing slash
            origin.strip().rstrip("/")
            for origin in os.environ.get("SPINDLE_CORS_ORIGINS", "*").split(",")
            if origin.strip()
        ),
    )


def _ingest_limits() -> IngestLimits:
    pages = os.environ.get("SPINDLE_INGEST_MAX_PAGES", "2000")
    if not pages.isascii() or not pages.isdigit() or int(pages) < 1:
        raise RuntimeError(f"SPINDLE_INGEST_MAX_PAGES must be a whole number of pages, at least 1, not {pages!r}")
    seconds = _positive_seconds("SPINDLE_INGEST_FILE_SECONDS", "60")
    if seconds > 180:  # an ingest function runs 300 s, and keeps room for storing the file it read
        raise RuntimeError(f"SPINDLE_INGEST_FILE_SECONDS must be at most 180, not {seconds:g}")
    return IngestLimits(file_seconds=seconds, max_pages=int(pages))


def _code_sandbox() -> str:
    chosen = os.environ.get("SPINDLE_CODE_SANDBOX", "local")
    if chosen not in CODE_SANDBOXES:
        raise RuntimeError(f"SPINDLE_CODE_SANDBOX must be one of {CODE_SANDBOXES}, not {chosen!r}")
    return chosen


settings = _read()
