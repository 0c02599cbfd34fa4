#!/bin/sh
# The stream function's handler: the Lambda Web Adapter's /opt/bootstrap executes it, and the tests
# run it as a process (tests/servers.py). It serves the app on 127.0.0.1:$AWS_LWA_PORT.
cd "$(dirname "$0")/.." || exit 1
exec python3 -m chalicelib.stream_function
