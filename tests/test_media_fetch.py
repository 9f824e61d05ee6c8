"""media.fetch against real HTTP servers on loopback: streaming, caps, redirects, errors,
cancellation, file names, Google Drive's interstitial; and media.share_links.

The servers are plain ``http.server`` threads (full control over framing: declared lengths that
lie, chunked bodies, trickles). Names such as ``media.example.test`` reach them through a scripted
resolver; ``FakeInternet`` stands in for the outside world when a test needs a *public* address
(see tests/test_ssrf.py, which imports these helpers).
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from media.fetch import (
    FetchError,
    fetch_to_file,
    find_drive_confirm_url,
    redact_url,
    sanitize_filename,
)
from media.share_links import normalize_share_link

MiB = 1 << 20


def payload(size: int) -> bytes:
    """Deterministic bytes that are not all the same, so a reordering or a lost chunk shows."""
    block = bytes(range(251))  # prime length: chunk boundaries never line up with the pattern
    return (block * (size // len(block) + 1))[:size]


# ---------------------------------------------------------------------------------------------
# A loopback HTTP server


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    """A real HTTP/1.1 server on one loopback address, in a thread. Routes are functions of the
    request handler, matched by longest path prefix; every request is recorded."""

    host: str = "127.0.0.1"
    port: int = 0
    name: str = "A"
    ssl_context: object | None = None
    routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)

    def start(self) -> "LoopbackServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                path = urlsplit(self.path).path
                for prefix in sorted(server.routes, key=len, reverse=True):
                    if path.startswith(prefix):
                        try:
                            server.routes[prefix](self)
                        except (BrokenPipeError, ConnectionResetError):
                            pass  # the fetcher hung up on purpose (cap, timeout, cancel)
                        return
                send(self, 404, b"no such route")

            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

        self.httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self.httpd.daemon_threads = True
        if self.ssl_context is not None:
            # Handshakes happen at accept; a failed one raises OSError there, which socketserver
            # swallows, so a client refusing our certificate does not stop the server.
            self.httpd.socket = self.ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def paths(self) -> list[str]:
        return [urlsplit(r.path).path for r in self.requests]


def send(req: BaseHTTPRequestHandler, status: int, body: bytes = b"", headers: list[tuple[str, str]] = ()) -> None:
    req.send_response(status)
    names = {k.lower() for k, _ in headers}
    for key, value in headers:
        req.send_header(key, value)
    if "content-length" not in names and "transfer-encoding" not in names:
        req.send_header("Content-Length", str(len(body)))
    req.end_headers()
    req.wfile.write(body)


def query(req: BaseHTTPRequestHandler) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(req.path).query).items()}


def _files(req: BaseHTTPRequestHandler) -> None:
    """/files/<name>?size=N&type=T: N deterministic bytes with a Content-Length."""
    q = query(req)
    body = payload(int(q.get("size", "1000")))
    send(req, 200, body, [("Content-Type", q.get("type", "image/jpeg"))])


def _chunked(req: BaseHTTPRequestHandler) -> None:
    """/chunked?size=N: no Content-Length, so only counting the bytes can enforce a cap."""
    body = payload(int(query(req)["size"]))
    req.send_response(200)
    req.send_header("Content-Type", "video/mp4")
    req.send_header("Transfer-Encoding", "chunked")
    req.end_headers()
    for i in range(0, len(body), 64 * 1024):
        piece = body[i:i + 64 * 1024]
        req.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    req.wfile.write(b"0\r\n\r\n")


def _trickle(req: BaseHTTPRequestHandler, declared: int, step: bytes, pause: float, for_seconds: float) -> None:
    req.send_response(200)
    req.send_header("Content-Type", "video/mp4")
    req.send_header("Content-Length", str(declared))
    req.end_headers()
    deadline = time.monotonic() + for_seconds
    while time.monotonic() < deadline:
        req.wfile.write(step)
        req.wfile.flush()
        time.sleep(pause)


def _hops(req: BaseHTTPRequestHandler) -> None:
    """/hops/<n>: n more redirects, then a small file."""
    n = int(urlsplit(req.path).path.rsplit("/", 1)[1])
    if n == 0:
        send(req, 200, payload(100), [("Content-Type", "image/png")])
    else:
        send(req, 302, b"", [("Location", f"/hops/{n - 1}")])


def _go(req: BaseHTTPRequestHandler) -> None:
    """/go?to=<url>: redirect anywhere (the attacker's open redirect)."""
    q = query(req)
    send(req, int(q.get("status", "302")), b"", [("Location", q["to"])])


def _named(req: BaseHTTPRequestHandler) -> None:
    send(req, 200, payload(10), [("Content-Type", "image/jpeg"), ("Content-Disposition", query(req)["cd"])])


# Google Drive, as far as the download flow goes (page shapes as served in 2024-2025).
DRIVE_ID = "1AbCdEfGhIjKlMnOpQ"
OLD_STYLE_ID = "1OldStyleFile0123"  # this id gets the older cookie + confirm-link page
DRIVE_TOKEN = "xYz_12-ab"
OLD_INTERSTITIAL = (
    "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
    "<p>Google Drive can't scan this file for viruses.</p>"
    '<a id="uc-download-link" href="/uc?export=download&amp;confirm={token}&amp;id={id}">Download anyway</a>'
    "</body></html>"
)
NEW_INTERSTITIAL = (
    "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>"
    '<form id="download-form" action="{action}" method="get">'
    '<input type="submit" id="uc-download-link" value="Download anyway"/>'
    '<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">'
    '<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="0a1b2c">'
    "</form></body></html>"
)


def _drive_uc(req: BaseHTTPRequestHandler) -> None:
    """drive.google.com/uc: OLD_STYLE_ID gets the cookie+confirm page; others are handed over to
    drive.usercontent.google.com like Drive does today."""
    q = query(req)
    host = req.headers["Host"]
    if q.get("id") == "missing":
        send(req, 200, b"<html><body>Too many users have viewed or downloaded this file recently.</body></html>",
             [("Content-Type", "text/html; charset=utf-8")])
    elif "confirm" in q:
        # The old flow checks the token against the cookie it set.
        if f"download_warning_1_{OLD_STYLE_ID}={DRIVE_TOKEN}" not in req.headers.get("Cookie", ""):
            send(req, 403, b"no cookie")
        else:
            send(req, 200, payload(5000), [("Content-Type", "video/mp4"),
                                           ("Content-Disposition", 'attachment; filename="holiday.mp4"')])
    elif q.get("id") == OLD_STYLE_ID:
        send(req, 200, OLD_INTERSTITIAL.format(token=DRIVE_TOKEN, id=q["id"]).encode(),
             [("Content-Type", "text/html; charset=utf-8"),
              ("Set-Cookie", f"download_warning_1_{OLD_STYLE_ID}={DRIVE_TOKEN}; Path=/; HttpOnly")])
    else:
        port = host.rsplit(":", 1)[1]
        send(req, 303, b"", [("Location", f"http://drive.usercontent.google.com:{port}/download?id={q['id']}&export=download")])


def _drive_usercontent(req: BaseHTTPRequestHandler) -> None:
    q = query(req)
    if q.get("confirm") == "t" and q.get("uuid") == "0a1b2c":
        send(req, 200, payload(7000), [("Content-Type", "video/mp4"),
                                       ("Content-Disposition", "attachment; filename=\"big video.mp4\"")])
    else:
        action = f"http://{req.headers['Host']}/download"
        send(req, 200, NEW_INTERSTITIAL.format(action=action, id=q["id"]).encode(),
             [("Content-Type", "text/html; charset=utf-8")])


def media_server(host: str = "127.0.0.1", port: int = 0, name: str = "A", ssl_context=None) -> LoopbackServer:  # noqa: ANN001
    server = LoopbackServer(host=host, port=port, name=name, ssl_context=ssl_context)
    server.routes.update({
        "/files/": _files,
        "/chunked": _chunked,
        "/hops/": _hops,
        "/go": _go,
        "/named": _named,
        "/empty": lambda req: send(req, 200, b"", [("Content-Type", "image/jpeg")]),
        "/status/": lambda req: send(req, int(req.path.rsplit("/", 1)[1]), b"nope"),
        "/whoami": lambda req: send(req, 200, server.name.encode(), [("Content-Type", "text/plain")]),
        # Declares 50 MB, sends 10 bytes, then stalls: only a check on the header can answer fast.
        "/huge-declared": lambda req: _trickle(req, 50_000_000, b"x" * 10, 0.1, 5),
        # 1 KiB every 50 ms of a declared 1 MB: slow enough for the time cap and for cancelling.
        "/trickle": lambda req: _trickle(req, 1_000_000, payload(1024), 0.05, 8),
        "/uc": _drive_uc,
        "/download": _drive_usercontent,
    })
    return server.start()


class ScriptedResolver:
    """DNS for tests: each name has a list of successive answers (the last one repeats), and every
    question is recorded, so a test can count lookups and change the answer between them."""

    def __init__(self, answers: dict[str, list[list[str]]]):
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        script = self.answers.get(host)
        if script is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        seen = sum(1 for h, _ in self.calls if h == host)
        return script[min(seen, len(script)) - 1]


def loopback_dns(*names: str) -> ScriptedResolver:
    return ScriptedResolver({name: [["127.0.0.1"]] for name in names})


class FakeInternet:
    """The outside world: public addresses (never really dialled from tests) lead to loopback
    ports. Pass ``transport`` as the fetcher's transport factory. It records every connection the
    fetcher asked for as (address, Host header, SNI name), which is what proves pinning."""

    def __init__(self, hosts: dict[str, int]):
        self.hosts = hosts
        self.connections: list[tuple[str, str, str | None]] = []

    def transport(self) -> httpx.AsyncBaseTransport:
        return _FakeInternetTransport(self)


class _FakeInternetTransport(httpx.AsyncBaseTransport):
    def __init__(self, internet: FakeInternet):
        self.internet = internet
        self.wire = httpx.AsyncHTTPTransport(trust_env=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        address = request.url.host
        self.internet.connections.append((address, request.headers["host"], request.extensions.get("sni_hostname")))
        if address not in self.internet.hosts:
            raise httpx.ConnectError(f"no route to {address}", request=request)
        request.url = request.url.copy_with(host="127.0.0.1", port=self.internet.hosts[address])
        return await self.wire.handle_async_request(request)

    async def aclose(self) -> None:
        await self.wire.aclose()


# ---------------------------------------------------------------------------------------------
# Tests


@pytest.fixture(scope="module")
def server():
    s = media_server()
    yield s
    s.stop()


@pytest.fixture
def dns() -> ScriptedResolver:
    return loopback_dns("media.example.test", "drive.google.com", "drive.usercontent.google.com")


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def fetch(url: str, dest: Path, resolver, **kw):  # noqa: ANN001, ANN003
    options = {"max_bytes": 10 * MiB, "timeout_seconds": 10, "allow_private": True, "resolver": resolver}
    return await fetch_to_file(url, dest, **(options | kw))


async def test_streams_to_disk_with_heartbeats(server: LoopbackServer, dns: ScriptedResolver, tmp_path: Path):
    size = 3 * MiB + 12345
    beats: list[tuple[int, int | None]] = []
    url = f"http://media.example.test:{server.port}/files/clip.mp4?size={size}&type=video/mp4"
    result = await fetch(url, tmp_path / "clip.mp4", dns, heartbeat=lambda done, total: beats.append((done, total)))

    body = (tmp_path / "clip.mp4").read_bytes()
    assert body == payload(size)
    assert (result.size, result.sha256) == (size, hashlib.sha256(body).hexdigest())
    assert (result.content_type, result.filename) == ("video/mp4", "clip.mp4")
    assert result.final_url == url  # the host name, not the pinned 127.0.0.1
    assert files_in(tmp_path) == ["clip.mp4"]  # the .part was renamed, not copied
    # Heartbeats: start, at least one per MiB, the exact end; never going backwards.
    assert beats[0] == (0, size) and beats[-1] == (size, size)
    assert len(beats) >= 4 and all(a[0] <= b[0] for a, b in zip(beats, beats[1:]))
    assert all(b[0] - a[0] <= MiB + 64 * 1024 for a, b in zip(beats, beats[1:]))
    seen = server.requests[-1].headers
    assert seen["host"] == f"media.example.test:{server.port}"
    assert seen["user-agent"] == "HeraldMediaFetcher/1.0" and seen["accept-encoding"] == "identity"
    assert dns.calls == [("media.example.test", server.port)]


async def test_declared_length_over_the_cap_is_refused_before_reading(server, dns, tmp_path):
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/huge-declared", tmp_path / "x.mp4", dns,
                    max_bytes=MiB, timeout_seconds=8)
    # The server stalls after 10 bytes: only refusing on the header can answer this quickly.
    assert time.monotonic() - started < 2
    assert caught.value.code == "too_large" and not caught.value.retryable
    assert "50,000,000" in caught.value.message
    assert files_in(tmp_path) == []


async def test_chunked_body_over_the_cap_aborts_mid_stream(server, dns, tmp_path):
    beats: list[int] = []
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/chunked?size={2 * MiB}", tmp_path / "x.mp4", dns,
                    max_bytes=MiB, heartbeat=lambda done, total: beats.append(done))
    assert caught.value.code == "too_large" and not caught.value.retryable
    assert max(beats) <= MiB  # nothing past the cap was accepted
    assert files_in(tmp_path) == []  # the partial file is gone


async def test_chunked_body_under_the_cap_is_fetched(server, dns, tmp_path):
    beats: list[tuple[int, int | None]] = []
    result = await fetch(f"http://media.example.test:{server.port}/chunked?size=300000", tmp_path / "x.mp4", dns,
                         heartbeat=lambda done, total: beats.append((done, total)))
    assert (tmp_path / "x.mp4").read_bytes() == payload(300000) and result.size == 300000
    assert beats[-1] == (300000, None)  # no Content-Length, so no total


async def test_overall_time_cap(server, dns, tmp_path):
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/trickle", tmp_path / "x.mp4", dns, timeout_seconds=0.6)
    # Every read succeeds quickly (1 KiB / 50 ms), so only the whole-fetch cap can stop it.
    assert 0.5 < time.monotonic() - started < 2
    assert caught.value.code == "timeout" and caught.value.retryable
    assert files_in(tmp_path) == []


async def test_cancellation_removes_the_partial_file(server, dns, tmp_path):
    got_bytes = asyncio.Event()
    dest = tmp_path / "x.mp4"
    task = asyncio.create_task(fetch(f"http://media.example.test:{server.port}/trickle", dest, dns,
                                     heartbeat=lambda done, total: done and got_bytes.set()))
    await asyncio.wait_for(got_bytes.wait(), 5)
    assert files_in(tmp_path) == ["x.mp4.part"]  # mid-download, the bytes are in the .part
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert files_in(tmp_path) == []


async def test_five_redirects_are_followed_and_six_refused(server, dns, tmp_path):
    result = await fetch(f"http://media.example.test:{server.port}/hops/5", tmp_path / "a.png", dns)
    assert result.final_url == f"http://media.example.test:{server.port}/hops/0"
    assert (tmp_path / "a.png").read_bytes() == payload(100)
    assert len(dns.calls) == 6  # one lookup per hop: each hop's address is checked afresh

    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/hops/6", tmp_path / "b.png", dns)
    assert caught.value.code == "too_many_redirects" and not caught.value.retryable
    assert "/hops/0" not in server.paths()[-6:]  # the 7th request was never made
    assert not (tmp_path / "b.png").exists()

    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/hops/2", tmp_path / "c.png", dns, max_redirects=1)
    assert caught.value.code == "too_many_redirects"


@pytest.mark.parametrize("status, retryable", [(404, False), (403, False), (410, False), (503, True),
                                               (500, True), (429, True), (408, True)])
async def test_http_errors(server, dns, tmp_path, status, retryable):
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/status/{status}", tmp_path / "x", dns)
    assert (caught.value.code, caught.value.status, caught.value.retryable) == ("http_error", status, retryable)
    assert files_in(tmp_path) == []


async def test_empty_body(server, dns, tmp_path):
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/empty", tmp_path / "x.jpg", dns)
    assert caught.value.code == "empty" and not caught.value.retryable
    assert files_in(tmp_path) == []


async def test_connection_refused_is_retryable(dns, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{port}/x.jpg", tmp_path / "x.jpg", dns)
    assert caught.value.code == "connect_failed" and caught.value.retryable


async def test_dns_failures(tmp_path):
    async def no_such_name(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    async def try_again(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    async def nothing(host: str, port: int) -> list[str]:
        return []

    for resolver, retryable in ((no_such_name, False), (try_again, True), (nothing, True)):
        with pytest.raises(FetchError) as caught:
            await fetch("http://nowhere.example.test/x.jpg", tmp_path / "x.jpg", resolver)
        assert (caught.value.code, caught.value.retryable) == ("dns_failed", retryable)


async def test_userinfo_is_refused_and_never_repeated(server, dns, tmp_path):
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://alice:s3cret@media.example.test:{server.port}/files/a.jpg", tmp_path / "a.jpg", dns)
    assert caught.value.code == "bad_url"
    assert "s3cret" not in caught.value.message and "alice" not in caught.value.message
    assert "s3cret" not in repr(caught.value) and dns.calls == []  # refused before any lookup

    # The same from a redirect: the server could otherwise make us send credentials anywhere.
    location = quote(f"http://bob:hunter2@media.example.test:{server.port}/files/a.jpg", safe="")
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/go?to={location}", tmp_path / "a.jpg", dns)
    assert caught.value.code == "bad_url" and "hunter2" not in caught.value.message


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://media.example.test/x.jpg",
                                      "gopher://127.0.0.1:6379/_FLUSHALL", "dict://127.0.0.1:11211/stat",
                                      "javascript:alert(1)"])
async def test_redirect_to_another_scheme_is_refused(server, dns, tmp_path, location):
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://media.example.test:{server.port}/go?to={quote(location, safe='')}", tmp_path / "x", dns)
    assert caught.value.code == "bad_url" and not caught.value.retryable
    assert files_in(tmp_path) == []


async def test_relative_and_303_redirects_keep_the_host_name(server, dns, tmp_path):
    result = await fetch(f"http://media.example.test:{server.port}/go?status=303&to=/files/p.jpg%3Fsize%3D50",
                         tmp_path / "p.jpg", dns)
    assert result.final_url == f"http://media.example.test:{server.port}/files/p.jpg?size=50"
    assert server.requests[-1].headers["host"] == f"media.example.test:{server.port}"


@pytest.mark.parametrize("disposition, expected", [
    ("attachment; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.JPG; filename=\"fallback.jpg\"", "resume_final.JPG"),
    ('attachment; filename="../../etc/passwd"', "passwd.jpg"),  # no extension: the declared type's
    ('attachment; filename="C:\\\\Users\\\\me\\\\photo 1.png"', "photo_1.png"),
    ("inline; filename=-rf.jpg", "rf.jpg"),
    ("inline", "named.jpg"),  # no name given: the URL path, plus the type's extension
])
async def test_file_name_from_content_disposition(server, dns, tmp_path, disposition, expected):
    result = await fetch(f"http://media.example.test:{server.port}/named?cd={quote(disposition)}", tmp_path / "n", dns)
    assert result.filename == expected


def test_sanitize_filename():
    assert sanitize_filename(".htaccess") == "htaccess"
    assert sanitize_filename("..") == "download"
    assert sanitize_filename("a/b/../../c.jpg") == "c.jpg"
    assert sanitize_filename("x" * 300 + ".jpeg") == "x" * 95 + ".jpeg"
    assert sanitize_filename("名前.png") == "png"  # nothing ASCII left of the stem; still no dot file


def test_redact_url():
    shown = redact_url("https://u:p4ss@bucket.example/k.jpg?X-Amz-Signature=abc123&X-Amz-Credential=AKIA&w=1")
    assert shown == "https://bucket.example/k.jpg?X-Amz-Signature=***&X-Amz-Credential=***&w=1"
    assert len(redact_url("https://example.com/" + "a" * 500)) == 200
    assert "pw" not in redact_url("http://user:pw@[::1")  # unparseable, still scrubbed


# --- Google Drive


async def test_drive_share_link_through_the_new_interstitial(server, dns, tmp_path):
    share = f"http://drive.google.com:{server.port}/file/d/{DRIVE_ID}/view?usp=sharing"
    result = await fetch(share, tmp_path / "v.mp4", dns)
    assert (tmp_path / "v.mp4").read_bytes() == payload(7000)
    assert (result.content_type, result.filename) == ("video/mp4", "big_video.mp4")
    assert result.final_url.startswith(f"http://drive.usercontent.google.com:{server.port}/download?")
    # share link -> uc?export=download -> 303 usercontent -> form page -> confirmed download
    assert server.paths()[-3:] == ["/uc", "/download", "/download"]
    assert query_of(server.requests[-3].path) == {"export": "download", "id": DRIVE_ID}


async def test_drive_old_interstitial_carries_its_cookie(server, dns, tmp_path):
    result = await fetch(f"http://drive.google.com:{server.port}/open?id={OLD_STYLE_ID}",
                         tmp_path / "v.mp4", dns)
    assert (tmp_path / "v.mp4").read_bytes() == payload(5000) and result.filename == "holiday.mp4"
    assert server.paths()[-2:] == ["/uc", "/uc"]
    assert query_of(server.requests[-1].path) == {"export": "download", "confirm": DRIVE_TOKEN, "id": OLD_STYLE_ID}
    assert f"download_warning_1_{OLD_STYLE_ID}={DRIVE_TOKEN}" in server.requests[-1].headers["cookie"]


async def test_drive_page_without_a_download_is_returned_as_html(server, dns, tmp_path):
    # Quota / permission pages have no confirm link: the caller gets the HTML, labelled as such,
    # and the pipeline's sniffing refuses it as media.
    result = await fetch(f"http://drive.google.com:{server.port}/uc?export=download&id=missing", tmp_path / "v", dns)
    assert result.content_type == "text/html"
    assert b"Too many users" in (tmp_path / "v").read_bytes()


async def test_interstitial_counts_against_the_redirect_budget(server, dns, tmp_path):
    with pytest.raises(FetchError) as caught:
        await fetch(f"http://drive.google.com:{server.port}/uc?export=download&id={OLD_STYLE_ID}",
                    tmp_path / "v.mp4", dns, max_redirects=0)
    assert caught.value.code == "too_many_redirects" and files_in(tmp_path) == []


async def test_html_from_other_hosts_is_not_treated_as_an_interstitial(server, dns, tmp_path):
    page = NEW_INTERSTITIAL.format(action=f"http://drive.usercontent.google.com:{server.port}/download", id=DRIVE_ID)
    server.routes["/page.html"] = lambda req: send(req, 200, page.encode(), [("Content-Type", "text/html")])
    result = await fetch(f"http://media.example.test:{server.port}/page.html", tmp_path / "p", dns)
    assert result.content_type == "text/html" and server.paths()[-1] == "/page.html"


def test_find_drive_confirm_url():
    page = "https://drive.google.com/uc?export=download&id=X"
    assert find_drive_confirm_url(OLD_INTERSTITIAL.format(token="T0k", id=DRIVE_ID), page) == (
        f"https://drive.google.com/uc?export=download&confirm=T0k&id={DRIVE_ID}")
    new = NEW_INTERSTITIAL.format(action="https://drive.usercontent.google.com/download", id=DRIVE_ID)
    assert find_drive_confirm_url(new, page) == (
        f"https://drive.usercontent.google.com/download?id={DRIVE_ID}&export=download&confirm=t&uuid=0a1b2c")
    # A page pointing the "download" elsewhere is not followed.
    evil = NEW_INTERSTITIAL.format(action="http://169.254.169.254/latest", id=DRIVE_ID)
    assert find_drive_confirm_url(evil, page) is None
    assert find_drive_confirm_url("<html><body>Quota exceeded</body></html>", page) is None


def query_of(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


# --- share links


@pytest.mark.parametrize("given, expected", [
    ("https://drive.google.com/file/d/1AbCdEfGhIjKlMnOp/view?usp=sharing",
     "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp"),
    ("https://drive.google.com/file/d/1AbCdEfGhIjKlMnOp/view", "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp"),
    ("https://drive.google.com/file/u/1/d/1AbCdEfGhIjKlMnOp/edit",
     "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp"),
    ("https://drive.google.com/open?id=1AbCdEfGhIjKlMnOp", "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp"),
    ("https://drive.google.com/uc?id=1AbCdEfGhIjKlMnOp", "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp"),
    ("https://drive.google.com/uc?id=1AbCdEfGhIjKlMnOp&export=view",
     "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp"),
    ("https://docs.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp",
     "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp"),
    ("https://drive.google.com/file/d/1AbCdEfGhIjKlMnOp/view?usp=sharing&resourcekey=0-AbC",
     "https://drive.google.com/uc?export=download&id=1AbCdEfGhIjKlMnOp&resourcekey=0-AbC"),
    ("https://www.dropbox.com/s/a1b2c3/photo.jpg?dl=0", "https://www.dropbox.com/s/a1b2c3/photo.jpg?dl=1"),
    ("https://www.dropbox.com/s/a1b2c3/photo.jpg", "https://www.dropbox.com/s/a1b2c3/photo.jpg?dl=1"),
    ("https://www.dropbox.com/scl/fi/xyz789/clip.mp4?rlkey=k3y&dl=0",
     "https://www.dropbox.com/scl/fi/xyz789/clip.mp4?rlkey=k3y&dl=1"),
    ("https://www.dropbox.com/scl/fi/xyz789/clip.mp4?rlkey=k3y&st=abc&dl=0",
     "https://www.dropbox.com/scl/fi/xyz789/clip.mp4?rlkey=k3y&st=abc&dl=1"),
    ("https://dropbox.com/s/a1b2c3/photo.jpg?dl=0", "https://dropbox.com/s/a1b2c3/photo.jpg?dl=1"),
])
def test_share_links_become_download_links(given, expected):
    assert normalize_share_link(given) == expected


@pytest.mark.parametrize("given", [
    "https://example.com/photo.jpg?dl=0",
    "https://docs.google.com/document/d/1AbCdEfGhIjKlMnOp/edit",  # a Doc, not a file
    "https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOp",
    "https://drive.google.com/open?id=short",  # not an id
    "https://drive.google.com/open?id=1AbCdEfGhIjKlMnOp%26export%3Dx",  # smuggled parameters
    "https://www.dropbox.com/sh/abc/folder?dl=0",  # a folder would download as a zip
    "https://www.dropbox.com/s/a1b2c3/photo.jpg?raw=1",
    "https://drive.google.com.evil.test/file/d/1AbCdEfGhIjKlMnOp/view",
    "ftp://drive.google.com/file/d/1AbCdEfGhIjKlMnOp/view",
    "not a url",
])
def test_other_links_are_left_alone(given):
    assert normalize_share_link(given) == given
