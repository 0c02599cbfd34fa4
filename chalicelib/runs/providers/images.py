"""Images for providers that must be sent bytes: a part's bytes (uploaded, a `data:` URL decoded, or
an http(s) URL fetched from a public address), and the media type the bytes themselves show."""

from __future__ import annotations

import base64
import binascii
import http.client
import ipaddress
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from chalicelib.runs.providers.base import ImagePart, ProviderError

SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniffed_media_type(data: bytes) -> str | None:
    """png, jpeg, gif or webp, by the bytes' own signature."""
    for signature, media_type in SIGNATURES:
        if data.startswith(signature):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_bytes(part: ImagePart, deadline: float, limit: int, provider: str) -> tuple[bytes, str | None]:
    """The image's bytes and declared media type; a ProviderError naming `provider` if it cannot be had
    by `deadline` (a time.monotonic() reading, shared by all of a request's images) in `limit` bytes."""
    if part.data is not None:
        data, declared = part.data, part.media_type
    elif part.url and part.url.startswith("data:"):
        data, declared = _data_url(part.url)
    elif part.url and urllib.parse.urlsplit(part.url).scheme in ("http", "https"):
        data, declared = _fetch(part.url, deadline, limit, provider)
    else:
        raise ProviderError("server_error", f"{provider} cannot be given the image {_shown(part.url)}.")
    if len(data) > limit:
        raise ProviderError(
            "server_error", f"An image is {len(data)} bytes, larger than {provider}'s limit ({limit} bytes)."
        )
    return data, declared


def _shown(url: str | None) -> str:
    return repr(url if url is None or len(url) <= 80 else url[:77] + "...")


def _data_url(url: str) -> tuple[bytes, str]:
    header, comma, payload = url[len("data:") :].partition(",")
    if not comma:
        raise ProviderError("server_error", "An image's data: URL has no data.")
    media_type, _, parameters = header.partition(";")
    try:
        if parameters.split(";")[-1] == "base64":
            return base64.b64decode(payload, validate=True), media_type
        return urllib.parse.unquote_to_bytes(payload), media_type
    except (binascii.Error, ValueError) as error:
        raise ProviderError("server_error", f"An image's data: URL is not valid base64: {error}") from error


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global


def _check_peer(connection: http.client.HTTPConnection) -> None:
    """Refuse to fetch from loopback, private, link-local or reserved addresses (a Lambda's runtime API
    and a VPC's services among them): the address checked is the one connected to, so DNS cannot swap it."""
    assert connection.sock is not None
    address = ipaddress.ip_address(connection.sock.getpeername()[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not _is_public(address):
        connection.close()
        raise OSError(f"{connection.host} is not a public address")


class _PublicHTTPConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _PublicHTTPSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


class _PublicHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_PublicHTTPConnection, req)


class _PublicHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_PublicHTTPSConnection, req, context=ssl.create_default_context())


def _fetch(url: str, deadline: float, limit: int, provider: str) -> tuple[bytes, str]:
    """An image URL's bytes and media type, fetched directly (no proxy) over http(s) and its redirects
    only, by `deadline` and at most `limit` bytes.

    A socket timeout restarts with every byte, so a server that trickles could hold the fetch forever:
    reads take whatever has arrived (read1) and the deadline is checked after each, so a fetch ends at
    most one socket timeout (the time left when it began) past the deadline."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        _PublicHTTPHandler(),
        _PublicHTTPSHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    request = urllib.request.Request(url, headers={"User-Agent": "Spindle", "Accept": "image/*"})
    if time.monotonic() >= deadline:
        raise ProviderError("server_error", f"No time was left to fetch the image at {_shown(url)}.")
    try:
        with opener.open(request, timeout=deadline - time.monotonic()) as response:
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read1(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise ProviderError(
                        "server_error", f"The image at {_shown(url)} is larger than {provider}'s limit."
                    )
                if time.monotonic() > deadline:
                    raise ProviderError("server_error", f"The image at {_shown(url)} took too long to download.")
            return b"".join(chunks), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        raise ProviderError(
            "server_error", f"The image at {_shown(url)} could not be fetched: HTTP {error.code}."
        ) from error
    except (OSError, ValueError, http.client.HTTPException) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise ProviderError("server_error", f"The image at {_shown(url)} could not be fetched: {reason}.") from error
