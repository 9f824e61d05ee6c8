"""Shared test helpers: free ports, real servers on loopback, databases, seeded accounts."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


async def async_wait_for(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")


def sandbox_deliveries(sandbox_url: str, provider: str | None = None) -> list[dict]:
    params = {"provider": provider} if provider else None
    return httpx.get(f"{sandbox_url}/_sandbox/deliveries", params=params).json()["deliveries"]


TELEGRAM_TOKEN = "123456:" + "A" * 35
DISCORD_WEBHOOK = "https://discord.com/api/webhooks/111222333/tok-abcdefghijklmnop"
