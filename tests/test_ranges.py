"""Range serving of stored objects: a tiny FastAPI app under a real uvicorn on loopback, asked
by a real HTTP client, over local storage and over S3 (moto) alike."""

from __future__ import annotations

import asyncio
import hashlib
import os
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api.ranges import (
    UNSATISFIABLE,
    content_disposition,
    etag_matches,
    parse_range,
    stored_object_response,
)
from storage import LocalStorage, ObjectMissing, Storage
from tests.s3_server import s3_endpoint, s3_storage  # noqa: F401  (fixtures)
from tests.support import serve_in_thread

KEY = "ws_1/asset_1/original.mp4"
# Not a multiple of the 64 KiB chunk, so the last chunk is a short one.
DATA = os.urandom(300_001)
SIZE = len(DATA)


def build_app(storages: dict[str, Storage]) -> FastAPI:
    app = FastAPI()

    @app.api_route("/objects/{backend}/{key:path}", methods=["GET", "HEAD"])
    async def serve(backend: str, key: str, request: Request):  # noqa: ANN202
        params = request.query_params
        try:
            # As api/routes/media.py calls it: blocking, so on a worker thread.
            return await asyncio.to_thread(
                stored_object_response, storages[backend], key, mime=params.get("mime", "video/mp4"),
                filename=params.get("name", "clip.mp4"), method=request.method,
                range_header=request.headers.get("range"),
                if_none_match=request.headers.get("if-none-match"),
                if_range=request.headers.get("if-range"))
        except ObjectMissing as exc:
            return JSONResponse({"ok": False, "code": "not_found", "message": exc.message}, 404)

    return app


@pytest.fixture(scope="module")
def server() -> tuple[str, dict[str, Storage]]:
    storages: dict[str, Storage] = {}
    with serve_in_thread(build_app(storages)) as url:
        yield url, storages


@pytest.fixture(params=["local", "s3"])
def served(request, server, tmp_path: Path):  # noqa: ANN201
    """(client whose base URL is the stored object's folder, storage) with DATA stored at KEY."""
    url, storages = server
    storage = LocalStorage(tmp_path / "objects") if request.param == "local" \
        else request.getfixturevalue("s3_storage")
    storage.put_bytes(KEY, DATA, "video/mp4")
    storages[request.param] = storage
    with httpx.Client(base_url=f"{url}/objects/{request.param}/", timeout=10) as client:
        yield client, storage


def get(client: httpx.Client, path: str = KEY, **headers: str | bytes) -> httpx.Response:
    return client.get(path, headers={k.replace("_", "-"): v for k, v in headers.items()})


# --- over HTTP, for both backends ----------------------------------------------------------


def test_full_get(served):
    client, storage = served
    stat = storage.stat(KEY)

    answer = get(client)

    assert answer.status_code == 200
    assert answer.content == DATA
    assert answer.headers["content-type"] == "video/mp4"
    assert answer.headers["content-length"] == str(SIZE)
    assert answer.headers["etag"] == stat.etag == f'"{hashlib.md5(DATA).hexdigest()}"'
    assert answer.headers["accept-ranges"] == "bytes"
    assert parsedate_to_datetime(answer.headers["last-modified"]) == stat.last_modified
    assert answer.headers["content-disposition"] == 'inline; filename="clip.mp4"'
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "content-range" not in answer.headers


def test_head_has_the_headers_and_no_body(served):
    client, _ = served
    full = get(client)

    head = client.head(KEY)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(SIZE)
    for name in ("etag", "last-modified", "accept-ranges", "content-type", "content-disposition"):
        assert head.headers[name] == full.headers[name]

    # Range handling is defined for GET only (RFC 9110 §14.2): HEAD ignores it.
    ranged_head = client.head(KEY, headers={"range": "bytes=0-99"})
    assert ranged_head.status_code == 200
    assert ranged_head.headers["content-length"] == str(SIZE)


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, SIZE - 1),
    ("bytes=-500", SIZE - 500, SIZE - 1),
    ("bytes=65530-200000", 65530, 200000),  # crosses chunk boundaries
    ("bytes=7-7", 7, 7),
    ("bytes=299000-999999999", 299000, SIZE - 1),  # end past the object: clamped
    ("bytes=-999999999", 0, SIZE - 1),  # suffix longer than the object: all of it
    ("Bytes = 10-19", 10, 19),  # the unit is case-insensitive; whitespace tolerated
    ("bytes=0-99,", 0, 99),  # an empty list element is ignored, leaving one range
])
def test_single_range_is_206(served, header: str, first: int, last: int):
    client, _ = served
    answer = get(client, range=header)
    assert answer.status_code == 206, answer.text
    assert answer.content == DATA[first:last + 1]
    assert answer.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert answer.headers["content-length"] == str(last - first + 1)
    assert answer.headers["content-type"] == "video/mp4"


@pytest.mark.parametrize("header", [f"bytes={SIZE}-", "bytes=999999999-", "bytes=-0",
                                    f"bytes={SIZE}-{SIZE + 10}"])
def test_unsatisfiable_range_is_416(served, header: str):
    client, _ = served
    answer = get(client, range=header)
    assert answer.status_code == 416
    assert answer.headers["content-range"] == f"bytes */{SIZE}"
    assert answer.content == b""
    assert "cache-control" not in answer.headers


@pytest.mark.parametrize("header", [
    "bytes=0-1,5-6",  # several ranges: the whole object instead of multipart/byteranges
    "bytes=0-1, -5",
    "bytes=5-2",  # last < first is invalid, not unsatisfiable
    "items=0-1",
    "bytes=abc",
    "bytes=-",
    "bytes 0-1",
    "bytes=\u0661-5".encode(),  # non-ASCII bytes (servers decode headers as Latin-1)
])
def test_ignored_range_is_the_whole_object(served, header: str | bytes):
    client, _ = served
    answer = get(client, range=header)
    assert answer.status_code == 200
    assert answer.content == DATA
    assert "content-range" not in answer.headers


def test_if_none_match(served):
    client, storage = served
    etag = storage.stat(KEY).etag

    for header in (etag, "*", f"W/{etag}", f'"other", {etag}'):
        answer = get(client, if_none_match=header)
        assert answer.status_code == 304, header
        assert answer.content == b""
        assert answer.headers["etag"] == etag
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"

    # Evaluated before Range: a client that holds the object gets 304, not a part of it.
    assert get(client, if_none_match=etag, range="bytes=0-9").status_code == 304
    assert client.head(KEY, headers={"if-none-match": etag}).status_code == 304

    changed = get(client, if_none_match='"something-else"')
    assert changed.status_code == 200 and changed.content == DATA


def test_if_range(served):
    client, storage = served
    stat = storage.stat(KEY)
    last_modified = get(client).headers["last-modified"]

    # Still the same object: the range applies.
    assert get(client, range="bytes=0-9", if_range=stat.etag).status_code == 206
    assert get(client, range="bytes=0-9", if_range=last_modified).status_code == 206
    # Changed since the client's first part, or a weak tag: the whole current object.
    for stale in ('"an-older-etag"', f"W/{stat.etag}", "Mon, 01 Jan 2001 00:00:00 GMT"):
        answer = get(client, range="bytes=0-9", if_range=stale)
        assert answer.status_code == 200 and answer.content == DATA, stale


def test_missing_object_is_404(served):
    client, _ = served
    assert get(client, "ws_1/asset_1/nothing.mp4").status_code == 404
    assert client.head("ws_1/asset_1/nothing.mp4").status_code == 404


def test_empty_object(served):
    client, storage = served
    storage.put_bytes("ws_1/asset_2/empty.txt", b"", "text/plain")

    answer = get(client, "ws_1/asset_2/empty.txt")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["content-length"] == "0"
    # Nothing in an empty object can be a first byte.
    ranged = get(client, "ws_1/asset_2/empty.txt", range="bytes=0-0")
    assert ranged.status_code == 416 and ranged.headers["content-range"] == "bytes */0"


def test_unicode_filename_and_header_injection(served):
    client, _ = served
    answer = client.get(KEY, params={"name": "Été 2024 «clip».mp4"})
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('inline; filename="_t_ 2024 _clip_.mp4"; filename*=UTF-8\'\'')
    assert unquote(disposition.split("UTF-8''", 1)[1]) == "Été 2024 «clip».mp4"

    sneaky = client.get(KEY, params={"name": "a\r\nSet-Cookie: session=stolen\r\n.mp4",
                                     "mime": "text/html\r\nX-Evil: 1"})
    assert sneaky.status_code == 200
    assert "set-cookie" not in sneaky.headers and "x-evil" not in sneaky.headers
    assert "\r" not in sneaky.headers["content-disposition"]
    # A type that is not a plain type/subtype is not echoed back.
    assert sneaky.headers["content-type"] == "application/octet-stream"


# --- the response object itself ------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "objects")
    return request.getfixturevalue("s3_storage")


async def test_body_is_streamed_in_chunks(storage: Storage):
    storage.put_bytes(KEY, DATA, "video/mp4")
    response = stored_object_response(
        storage, KEY, mime="video/mp4", filename="clip.mp4", method="GET",
        range_header="bytes=1-", if_none_match=None)

    sizes = []
    body = b""
    async for chunk in response.body_iterator:
        sizes.append(len(chunk))
        body += chunk
    assert body == DATA[1:]
    # 64 KiB at a time: the object is never read whole.
    assert max(sizes) == 65536 and len(sizes) == -(-(SIZE - 1) // 65536)


def _open_fds_to(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            pass
    return count


async def test_abandoned_stream_releases_the_file(tmp_path: Path):
    # A client that disconnects mid-body must not leave the file open until some later
    # garbage collection (with S3 it would be a pooled connection held hostage).
    storage = LocalStorage(tmp_path / "objects")
    storage.put_bytes(KEY, DATA, "video/mp4")
    path = storage.local_path(KEY)
    response = stored_object_response(
        storage, KEY, mime="video/mp4", filename="clip.mp4", method="GET",
        range_header=None, if_none_match=None)
    stream = response.body_iterator
    await stream.__anext__()
    assert _open_fds_to(path) == 1
    # Something else still referencing the storage iterator (as a traceback of the cancelled
    # request often does): closing the response stream must release the file regardless,
    # rather than relying on the last reference going away.
    still_referenced = stream.ag_frame.f_locals["chunks"]
    await stream.aclose()
    assert _open_fds_to(path) == 0
    del still_referenced


def test_missing_object_raises(storage: Storage):
    with pytest.raises(ObjectMissing):
        stored_object_response(storage, "ws/none/x.jpg", mime="image/jpeg",
                                     filename="x.jpg", method="GET", range_header=None,
                                     if_none_match=None)


def test_etag_override(storage: Storage):
    storage.put_bytes(KEY, b"0123456789", "video/mp4")
    response = stored_object_response(
        storage, KEY, mime="video/mp4", filename="clip.mp4", method="GET", range_header=None,
        if_none_match='"sha256-abc"', etag="sha256-abc")
    assert response.status_code == 304
    assert response.headers["etag"] == '"sha256-abc"'


# --- pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-0", 1, (0, 0)),
    ("bytes=0-", 10, (0, 9)),
    ("bytes=-3", 10, (7, 9)),
    ("bytes=-3", 0, UNSATISFIABLE),
    ("bytes=0-", 0, UNSATISFIABLE),
    ("bytes=10-", 10, UNSATISFIABLE),
    ("bytes=9-", 10, (9, 9)),
    ("bytes=" + "9" * 5000 + "-", 10, None),  # beyond int()'s digit limit: ignored, no crash
    ("bytes=1-2,3-4", 10, None),
    ("bytes=\u0661-5", 10, None),  # an Arabic-Indic digit: int() would take it, HTTP does not
    ("bytes=", 10, None),
    ("", 10, None),
])
def test_parse_range(header: str, size: int, expected):
    assert parse_range(header, size) == expected


def test_etag_matches():
    assert etag_matches('"a"', '"a"')
    assert etag_matches('W/"a"', '"a"')
    assert etag_matches('"x", W/"a"', '"a"')
    assert etag_matches('"a,b"', '"a,b"')  # a comma inside a tag is part of it
    assert not etag_matches('"a"', '"b"')
    assert not etag_matches('"ab"', '"a"')
    assert not etag_matches("a", '"a"')  # unquoted is not an entity tag


@pytest.mark.parametrize(("name", "expected"), [
    ("photo.jpg", 'inline; filename="photo.jpg"'),
    ('say "hi".png', 'inline; filename="say _hi_.png"; filename*=UTF-8\'\'say%20%22hi%22.png'),
    ("../../etc/passwd", 'inline; filename=".._.._etc_passwd"'),  # no separators at all
    ("100%.gif", "inline; filename=\"100_.gif\"; filename*=UTF-8''100%25.gif"),
    ("\r\n", 'inline; filename="download"'),
    ("日本.mp4", "inline; filename=\"__.mp4\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.mp4"),
])
def test_content_disposition(name: str, expected: str):
    assert content_disposition(name) == expected
