"""Serving stored objects over HTTP: conditional requests and single byte ranges (RFC 9110).

What a request gets, in the order the RFC evaluates it (§13.2.2):

* ``If-None-Match`` naming the current ETag (weak comparison, or ``*``) → 304, no body.
* HEAD → 200 with every header a GET would carry and no body (Range is ignored: §14.2
  defines range handling for GET only).
* GET with one satisfiable range → 206 with ``Content-Range: bytes first-last/size``;
  with an unsatisfiable one → 416 with ``Content-Range: bytes */size``.
* GET with several ranges, a syntactically bad Range, another unit, or an ``If-Range`` that no
  longer matches → the whole object, 200. Ignoring Range is always allowed (§14.2) and spares
  us multipart/byteranges, which players and CDNs do not need from us.

Bodies are streamed from ``Storage.iter_range`` in 64 KiB chunks on a worker thread; nothing
holds a whole object in memory.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

import anyio
from starlette.responses import Response, StreamingResponse

from storage import ObjectMissing, Storage
from storage.base import ObjectStat

CHUNK_SIZE = 65536

_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)", re.ASCII)
_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')
# A type/subtype with optional parameters; anything else is not sent as Content-Type.
_MIME = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?")


class _Unsatisfiable:
    pass


UNSATISFIABLE = _Unsatisfiable()


def parse_range(header: str, size: int) -> tuple[int, int] | _Unsatisfiable | None:
    """One ``bytes`` range resolved against ``size``: (first, last) inclusive, UNSATISFIABLE, or
    None when the header is to be ignored (another unit, bad syntax, several ranges)."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    # Empty list elements are allowed and ignored (RFC 9110 §5.6.1).
    specs = [s.strip() for s in spec.split(",") if s.strip()]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.fullmatch(specs[0])
    if not match:
        return None
    first_text, last_text = match.groups()
    try:
        if first_text:
            first = int(first_text)
            last = int(last_text) if last_text else None
            if last is not None and last < first:
                return None  # invalid, not unsatisfiable (§14.1.1)
            if first >= size:
                return UNSATISFIABLE
            return first, size - 1 if last is None else min(last, size - 1)
        if not last_text:
            return None  # "-" alone
        suffix = int(last_text)
    except ValueError:  # more digits than int() accepts: not a range anyone means
        return None
    if suffix == 0 or size == 0:
        return UNSATISFIABLE
    return max(0, size - suffix), size - 1


def etag_matches(header: str, etag: str) -> bool:
    """If-None-Match: weak comparison of every listed tag against ours (``*`` matches any)."""
    if header.strip() == "*":
        return True
    ours = _opaque(etag)
    return any(m.group(2) == ours for m in _ENTITY_TAG.finditer(header))


def _opaque(etag: str) -> str:
    match = _ENTITY_TAG.fullmatch(etag.strip())
    return match.group(2) if match else etag.strip()


def if_range_allows(header: str | None, etag: str, last_modified: datetime) -> bool:
    """If-Range: ranges apply only while the representation is the one the client holds part
    of. An entity tag is compared strongly (a weak one never matches); a date must equal
    Last-Modified exactly."""
    if header is None:
        return True
    value = header.strip()
    if value.startswith('"'):
        return not etag.startswith("W/") and _opaque(value) == _opaque(etag)
    if value.startswith("W/"):
        return False
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when == last_modified


def content_disposition(filename: str, disposition: str = "inline") -> str:
    """``inline; filename="ascii"; filename*=UTF-8''percent-encoded`` (RFC 6266 + 8187).

    The quoted ``filename`` is a plain-ASCII stand-in for old clients: anything outside
    printable ASCII, and the quote, backslash and percent sign that clients unescape
    differently, become ``_``. ``filename*`` carries the real name, percent-encoded, so no
    character of it (CR and LF included) can reach the header raw."""
    name = "".join(ch for ch in filename if ch.isprintable()).replace("/", "_").strip()
    name = name or "download"
    fallback = "".join(ch if " " <= ch <= "~" and ch not in '"\\%' else "_" for ch in name)
    header = f'{disposition}; filename="{fallback}"'
    if fallback != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(timezone.utc), usegmt=True)


def _quoted(etag: str) -> str:
    etag = etag.strip()
    return etag if etag.startswith(('"', 'W/"')) else f'"{etag}"'


def stored_object_response(
    storage: Storage, key: str, *, mime: str, filename: str, method: str,
    range_header: str | None, if_none_match: str | None, etag: str | None = None,
    cache_control: str = "public, max-age=31536000, immutable", if_range: str | None = None,
) -> Response:
    """The response for a GET or HEAD of a stored object (see the module docstring).

    Blocking (a stat, and for S3 a HEAD and the GET that opens the stream), like the storage
    it calls: run it with ``await asyncio.to_thread(stored_object_response, ...)``. The body
    it returns then streams on worker threads by itself.

    ``etag`` overrides the storage's ETag (e.g. a content hash kept in the database);
    ``if_range`` is the request's If-Range header. Raises ObjectMissing when the object is not
    stored; the caller answers 404."""
    method = method.upper()
    if method not in ("GET", "HEAD"):
        raise ValueError(f"stored objects are served to GET and HEAD, not {method}")
    stat: ObjectStat | None = storage.stat(key)
    if stat is None:
        raise ObjectMissing(key)
    tag = _quoted(etag or stat.etag)
    validators = {
        "ETag": tag,
        "Last-Modified": _http_date(stat.last_modified),
        "Cache-Control": cache_control,
    }
    if if_none_match is not None and etag_matches(if_none_match, tag):
        # A 304 repeats the validators and caching headers a 200 would send (§15.4.5).
        return Response(status_code=304, headers=validators)

    size = stat.size
    headers = {
        **validators,
        "Accept-Ranges": "bytes",
        "Content-Type": mime if _MIME.fullmatch(mime or "") else "application/octet-stream",
        "Content-Disposition": content_disposition(filename),
        # Uploaded bytes are served from the API's own origin: never let a browser sniff them
        # into HTML, and run anything it renders anyway (an SVG's scripts) in a sandbox.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }

    wanted = None
    if method == "GET" and range_header and if_range_allows(if_range, tag, stat.last_modified):
        wanted = parse_range(range_header, size)
    if wanted is UNSATISFIABLE:
        # No Cache-Control: a year-long "immutable" on an error answer is asking for trouble.
        return Response(status_code=416, headers={
            "ETag": tag, "Last-Modified": validators["Last-Modified"], "Accept-Ranges": "bytes",
            "Content-Range": f"bytes */{size}", "Content-Length": "0"})

    if isinstance(wanted, tuple):
        first, last = wanted
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    else:
        first, last = 0, size - 1
        status = 200
    headers["Content-Length"] = str(last - first + 1)

    if method == "HEAD" or size == 0:
        return Response(status_code=status, headers=headers)

    # Opened here, not inside the response: a missing object or an unreachable bucket still
    # becomes an error status instead of a 200 whose body breaks off.
    chunks = storage.iter_range(key, first, last, CHUNK_SIZE)
    return StreamingResponse(_in_threadpool(chunks), status_code=status, headers=headers)


async def _in_threadpool(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Each blocking next() on a worker thread. Unlike starlette's iterate_in_threadpool this
    closes the iterator when the client goes away, releasing the file or the S3 connection
    now rather than whenever the garbage collector gets to it."""
    done = object()
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, done)
            if chunk is done:
                return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(close)
