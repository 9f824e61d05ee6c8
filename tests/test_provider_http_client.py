"""The publishers' HTTP client: what keeps a burst of sends cheap and bounded.

Both properties were found by profiling the burst benchmark (docs/benchmarks.md), so they are
pinned here: losing either one does not break a feature, it only makes every burst late.
"""

from __future__ import annotations

import asyncio
import sys

import httpcore._synchronization as httpcore_sync
import pytest

from providers.base import GatedAsyncClient


class CountingFinder:
    """A meta-path finder that counts how often Python searches for a module."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - importlib's protocol
        self.calls.append(name)
        return None


async def test_httpcore_finds_the_async_library_without_an_import_search():
    # httpcore calls current_async_library() for every lock, event and cancel shield it makes.
    # With sniffio installed that is a dict lookup; without it, a failed `import sniffio`
    # that walks every sys.path entry, several times per request.
    finder = CountingFinder()
    sys.meta_path.insert(0, finder)
    try:
        for _ in range(50):
            assert httpcore_sync.current_async_library() == "asyncio"
    finally:
        sys.meta_path.remove(finder)
    assert finder.calls == [], f"httpcore searched for {sorted(set(finder.calls))} on every call"


@pytest.fixture
async def slow_server():
    """A plain HTTP/1.1 server that answers each request after 20 ms and records how many
    requests it was handling at once."""
    state = {"now": 0, "peak": 0, "served": 0, "cookies": []}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    if line.lower().startswith(b"cookie:"):
                        state["cookies"].append(line.decode())
                if length:
                    await reader.readexactly(length)
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
                await asyncio.sleep(0.02)
                state["now"] -= 1
                state["served"] += 1
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n"
                             b"Set-Cookie: session=account-a; Path=/\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", state
    server.close()
    await server.wait_closed()


async def test_gated_client_keeps_at_most_max_in_flight_requests_at_the_peer(slow_server):
    base, state = slow_server
    async with GatedAsyncClient(max_in_flight=3, timeout=10) as client:
        responses = await asyncio.gather(*(client.post(f"{base}/send", json={"i": i}) for i in range(40)))
    assert [r.status_code for r in responses] == [200] * 40
    assert state["served"] == 40
    # Bounded, and actually concurrent (a client that sent one at a time would also pass "<= 3").
    assert state["peak"] == 3


async def test_a_cookie_one_call_received_is_not_sent_with_the_next(slow_server):
    # One client serves every account of a network: cookies would leak between accounts.
    base, state = slow_server
    async with GatedAsyncClient(max_in_flight=2, timeout=10) as client:
        first = await client.post(f"{base}/account-a", json={})
        assert first.headers["set-cookie"].startswith("session=")
        await client.post(f"{base}/account-b", json={})
        assert not client.cookies
    assert state["cookies"] == []


def test_a_cookie_jar_is_refused_rather_than_ignored():
    with pytest.raises(ValueError, match="no cookies"):
        GatedAsyncClient(cookies={"session": "x"})
    client = GatedAsyncClient()
    with pytest.raises(ValueError, match="no cookies"):
        client.cookies = {"session": "x"}
