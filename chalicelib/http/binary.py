"""Bytes for any `Accept`: file downloads answer 200 with the exact bytes whatever the client accepts.

Chalice refuses a response whose Content-Type is binary unless the request's Accept names a binary
type: buffered API Gateway decodes a base64 body only for those, so that check protects a client from
receiving base64 text. The SDKs do not send such an Accept: openai-node 4.x sends `application/json`,
and a plain fetch sends none. Spindle's binary answers never need the check, because they never pass
through buffered API Gateway: on AWS the download routes stream from the stream function (API
Gateway's STREAM transfer mode passes bytes as they are, with no binary media types; scripts/package.py),
and locally Spindle's HTTP server decodes the body itself. So the app skips the check, and a download
is always base64 for the gateway, whatever its media type (Chalice encodes only the types it lists).
"""

from __future__ import annotations

import base64
from typing import Any

from chalice import Chalice, Response
from chalice.app import CaseInsensitiveMapping, RestAPIEventHandler


class BytesResponse(Response):
    """A body of bytes, handed to the gateway base64-encoded whatever its Content-Type."""

    def to_dict(self, binary_types: list[str] | None = None) -> dict[str, Any]:
        response = super().to_dict(None)
        response["body"] = base64.b64encode(self.body).decode("ascii")
        response["isBase64Encoded"] = True
        return response


class _AnyAcceptHandler(RestAPIEventHandler):
    def _validate_binary_response(
        self, request_headers: CaseInsensitiveMapping, response_headers: CaseInsensitiveMapping
    ) -> bool:
        return True


class SpindleApp(Chalice):
    """Chalice, answering binary responses whatever the request's Accept (see above)."""

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        # Chalice.__call__, with the handler that does not refuse bytes for the Accept header
        self.lambda_context = context
        handler = _AnyAcceptHandler(
            self.routes, self.api, self.log, self.debug, middleware_handlers=self._get_middleware_handlers("http")
        )
        self.current_request = handler.create_request_object(event, context)
        result: dict[str, Any] = handler(event, context)
        return result
