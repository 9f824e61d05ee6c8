"""Shared test helpers: free ports, real servers on loopback, databases, seeded accounts."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn

from herald.dev import free_port  # noqa: F401  (re-exported for the tests)


# Built once: every httpx client would otherwise build its own (~50 ms each).
SSL_CONTEXT = ssl.create_default_context()


@contextmanager
def serve_in_thread(app, port: int | None = None) -> Iterator[str]:  # noqa: ANN001
    """Run an ASGI app under a real uvicorn server on loopback; yields its base URL."""
    from herald.serve import tcp_listener

    sock = tcp_listener("127.0.0.1", port or 0)
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")


TELEGRAM_TOKEN = "123456:" + "A" * 35
DISCORD_WEBHOOK = "https://discord.com/api/webhooks/111222333/tok-abcdefghijklmnop"
