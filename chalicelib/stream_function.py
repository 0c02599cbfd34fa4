"""The stream function on AWS: the Lambda behind the three routes that can answer `stream: true`.

Lambda streams a Python function's response only through a program that speaks its streaming runtime
protocol. The AWS Lambda Web Adapter (a layer, `AWS_LWA_INVOKE_MODE=response_stream`) is that program:
it starts `stream_function.sh`, which runs this module, waits until the server answers on
127.0.0.1:$AWS_LWA_PORT, then hands each API Gateway request to it over HTTP and streams the response
back as it is written. So the function serves the same app, from the same deployment package, through
the same HTTP server as `make dev` (http/server.py): a streamed route's events leave as they happen,
any other answer leaves in one piece. The tests run this very script as a process, driven by the SDK.

Nothing else runs here: no tables are made and no background work is done (Lambda freezes the process
between requests); the run's Step Functions execution takes over a run whose stream request died.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_PORT = 8080  # the Lambda Web Adapter's default


def main() -> None:
    port = int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or DEFAULT_PORT)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # app.py, beside chalicelib/
    from app import app
    from chalicelib.http.server import serve_app

    serve_app(app, "127.0.0.1", port)


if __name__ == "__main__":
    main()
