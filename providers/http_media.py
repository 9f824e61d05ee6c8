"""Small helpers shared by the byte-uploading adapters (Discord, Telegram).

Nothing here knows a provider: media kind inference for the pure checks, human number
formatting for ``Problem`` messages, reading prepared media into memory, and the one
``PreparedPublish`` implementation (a pre-built ``httpx.Request`` plus a response parser).
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from providers.base import (
    MediaFile,
    MediaKind,
    MediaRef,
    OutcomeUnknown,
    PreparedPublish,
    Problem,
    ProviderError,
    ProviderUnavailable,
    PublishResult,
    send_classified,
)

# --- secrets in logs -------------------------------------------------------------------------------

# httpx logs every request URL at INFO ("HTTP Request: POST https://…"). Telegram's bot token
# and Discord's webhook token are path segments, so redact them before any handler sees them.
_SECRET_PATHS = re.compile(r"(/bot)\d+:[A-Za-z0-9_-]+|(/webhooks/\d+/)[A-Za-z0-9_.-]+")
# Token endpoints that are GET requests (Meta's Graph, Threads, Instagram) carry secrets in the
# query string [C access-token guides]; so may a POST's logged URL on other networks.
_SECRET_PARAMS = re.compile(
    r"((?:access_token|client_secret|fb_exchange_token|code|code_verifier|input_token|refresh_token)=)"
    r"[^&\s\"']+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Secrets taken out of a URL (or a log line holding one): bot tokens and webhook tokens in
    paths, tokens, codes and client secrets in query strings."""
    text = _SECRET_PATHS.sub(lambda m: (m.group(1) or m.group(2)) + "<redacted>", text)
    return _SECRET_PARAMS.sub(r"\1<redacted>", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, RedactTokens) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(RedactTokens())


# --- pure helpers for check_post ----------------------------------------------------------------


def kind_of(ref: MediaRef) -> MediaKind:
    """The declared kind, else inferred from the mime type, else from the file extension."""
    if ref.kind:
        return ref.kind
    mime = ref.mime
    if not mime:
        name = ref.filename or urlsplit(ref.url).path
        mime = mimetypes.guess_type(name)[0] if name else None
    return kind_of_mime(mime)


def kind_of_mime(mime: str | None) -> MediaKind:
    major = (mime or "").split("/", 1)[0].lower()
    if major in ("image", "video", "audio"):
        return major  # type: ignore[return-value]
    return "other"


def n(value: int) -> str:
    """2150 -> '2,150'."""
    return f"{value:,}"


def size_text(size: int, *, binary: bool) -> str:
    """A byte count the way the provider states its limit (MiB for Discord, MB for Telegram)."""
    unit, step = ("MiB", 1024 * 1024) if binary else ("MB", 1_000_000)
    return f"{size / step:,.1f} {unit} ({n(size)} bytes)"


# Settings every network takes, handled by Herald's media pipeline rather than an adapter:
# mediaFit (pad | crop) lets a rendition pad or crop media whose aspect ratio the network refuses.
COMMON_SETTINGS = ("mediaFit",)
MEDIA_FITS = ("pad", "crop")


def unknown_settings(settings: dict[str, Any], allowed: Iterable[str], provider: str) -> list[Problem]:
    allowed = sorted({*allowed, *COMMON_SETTINGS})
    return [
        Problem(
            field=f"settings.{key}",
            message=f"unknown {provider} setting {key!r} (supported: {', '.join(allowed)})",
        )
        for key in settings
        if key not in allowed
    ]


def media_fit_problems(settings: dict[str, Any]) -> list[Problem]:
    fit = settings.get("mediaFit")
    if fit is not None and fit not in MEDIA_FITS:
        return [Problem(field="settings.mediaFit", message=f"must be one of {', '.join(MEDIA_FITS)}")]
    return []


def expect_bool(settings: dict[str, Any], key: str) -> list[Problem]:
    if key in settings and not isinstance(settings[key], bool):
        return [Problem(field=f"settings.{key}", message="must be true or false")]
    return []


# --- publishing -----------------------------------------------------------------------------------


async def read_media(media: list[MediaFile]) -> list[bytes]:
    """Read every prepared file into memory, off the event loop (files can be 50 MB)."""

    def _read() -> list[bytes]:
        return [Path(m.path).read_bytes() for m in media]

    return await asyncio.to_thread(_read) if media else []


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or {} when the body is not one (Cloudflare HTML pages...)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"result": body}


class PreparedRequest(PreparedPublish):
    """A request built ahead of time; ``send`` performs it and hands the response to ``parse``.

    ``parse`` raises the taxonomy for error answers. A success status whose body cannot be read
    is ``OutcomeUnknown``: the provider accepted the call, we just don't know the id. ``after``
    (optional, best effort) enriches the result with a read, e.g. a permalink; it runs after the
    irreversible call, so its failure never turns a published post into an error.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        request: httpx.Request,
        parse: Callable[[httpx.Response], PublishResult],
        after: Callable[[PublishResult], Awaitable[PublishResult]] | None = None,
    ):
        self._http = http
        self._request = request
        self._parse = parse
        self._after = after

    def __repr__(self) -> str:  # the URL or headers can hold a token: never show them
        return f"<PreparedRequest {self._request.method}>"

    async def send(self) -> PublishResult:
        response = await send_classified(self._http, self._request)
        try:
            result = self._parse(response)
        except (KeyError, TypeError, ValueError) as exc:
            raise OutcomeUnknown(
                f"the provider answered {response.status_code} but the body could not be read "
                f"({type(exc).__name__}); it may have published the post",
                http_status=response.status_code,
            ) from None
        if self._after is not None:
            try:
                result = await self._after(result)
            except (ProviderError, httpx.HTTPError, KeyError, TypeError, ValueError):
                pass
        return result


async def send_readonly(http: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``send_classified`` for calls that change nothing: an unknown outcome is just unavailability."""
    try:
        return await send_classified(http, request)
    except OutcomeUnknown as exc:
        raise ProviderUnavailable(exc.message) from None
