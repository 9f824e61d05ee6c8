"""The provider sandbox: an ASGI app that answers like Discord's webhook API and Telegram's Bot
API, records what it received, and injects faults on demand.

    /discord/api/v10/...  /discord/api/...     see sandbox/discord.py
    /telegram/bot<token>/<method>              see sandbox/telegram.py
    GET    /_sandbox/health                    {"ok": true}
    GET    /_sandbox/deliveries[?provider=&target=]
    GET    /_sandbox/faults                    pending faults
    POST   /_sandbox/faults                    {"provider","kind","count"?,"retryAfter"?,"delaySeconds"?,"target"?,"message"?}
    DELETE /_sandbox/faults                    drop pending faults
    DELETE /_sandbox                           reset everything

Serve with ``uvicorn sandbox.app:app`` or ``python -m sandbox``. ``receivedAt`` is stamped at the
very start of the ASGI call (``SandboxApp.__call__``) because publish-lateness benchmarks read it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox import discord, telegram
from sandbox.state import PROVIDERS, SandboxState


class SandboxApp(Starlette):
    """Starlette whose outermost step records the arrival time in ``scope["state"]``."""

    state_store: SandboxState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["received_at"] = time.time()
        await super().__call__(scope, receive, send)


def create_app() -> SandboxApp:
    state = SandboxState()

    async def health(request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def deliveries(request: Request) -> Response:
        provider = request.query_params.get("provider")
        if provider is not None and provider not in PROVIDERS:
            return JSONResponse({"error": f"provider must be one of {', '.join(PROVIDERS)}"}, status_code=400)
        target = request.query_params.get("target")
        return JSONResponse({"deliveries": state.list_deliveries(provider, target)})

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"faults": [f.to_json() for f in state.faults]})
        if request.method == "DELETE":
            state.faults.clear()
            return JSONResponse({"ok": True})
        try:
            body: Any = json.loads(await request.body() or b"null")
        except ValueError:
            return JSONResponse({"error": "the body must be valid JSON"}, status_code=400)
        try:
            fault = state.add_fault(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"fault": fault.to_json()}, status_code=201)

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    app = SandboxApp(
        routes=[
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/deliveries", deliveries, methods=["GET"]),
            Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox", reset, methods=["DELETE"]),
            *discord.routes(state),
            *telegram.routes(state),
        ]
    )
    app.state_store = state
    return app


app = create_app()


# --- running it in-process (tests, local tools) -----------------------------------------------------


class SandboxServer:
    """A real uvicorn server on a loopback port, in a background thread.

    >>> server = SandboxServer().start(); server.url  # 'http://127.0.0.1:54321'
    >>> server.stop()
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, asgi_app: Any = None):
        import uvicorn

        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP, and without it every response waits ~40 ms for the client's delayed ACK.
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = self.sock.getsockname()[:2]
        self.app = asgi_app or create_app()
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="herald-sandbox", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "SandboxServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()
