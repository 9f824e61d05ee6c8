"""The provider sandbox: an ASGI app that answers like each network's API (Discord, Telegram, X,
LinkedIn, Facebook, Instagram, Threads), records what it received, and injects faults on demand.

    /discord/api/v10/...  /discord/api/...     see sandbox/discord.py
    /telegram/bot<token>/<method>              see sandbox/telegram.py
    /x/api/2/...  /x/www/i/oauth2/authorize    see sandbox/x.py
    /linkedin/api/...  /linkedin/www/oauth/v2/* see sandbox/linkedin.py
    /facebook/graph/...  /facebook/www/...     see sandbox/facebook.py (Graph helpers: sandbox/graph.py)
    /instagram_business/graph/...  /instagram/{graph,api,www}/...   see sandbox/instagram.py
    /threads/graph/...  /threads/www/...       see sandbox/threads.py
    shared OAuth codes and tokens              see sandbox/oauth.py
    GET    /_sandbox/health                    {"ok": true}
    GET    /_sandbox/deliveries[?provider=&target=]
    GET    /_sandbox/faults                    pending faults
    POST   /_sandbox/faults                    {"provider","kind","count"?,"retryAfter"?,"delaySeconds"?,"target"?,"message"?}
                                               kinds: rate_limit server_error timeout drop_after_accept
                                               auth_error reject_content slow (discord, telegram)
    POST   /_sandbox/oauth                     {"network","action"} deny_next|expire_access|revoke|fail_refresh
    GET    /_sandbox/oauth/authorizations      what each consent request asked for (scopes, PKCE)
    DELETE /_sandbox/faults                    drop pending faults
    DELETE /_sandbox                           reset everything

Serve with ``herald sandbox``. ``receivedAt`` is stamped at the
very start of the ASGI call (``SandboxApp.__call__``) because publish-lateness benchmarks read it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from sandbox import discord, facebook, instagram, linkedin, telegram, threads, x
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

    async def oauth_switch(request: Request) -> Response:
        try:
            body: Any = json.loads(await request.body() or b"null")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object {network, action}")
            state.oauth.act(body.get("network"), body.get("action"))
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    async def oauth_authorizations(request: Request) -> Response:
        return JSONResponse({"authorizations": state.oauth.authorizations})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    app = SandboxApp(
        routes=[
            Route("/_sandbox/health", health, methods=["GET"]),
            Route("/_sandbox/deliveries", deliveries, methods=["GET"]),
            Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
            Route("/_sandbox/oauth", oauth_switch, methods=["POST"]),
            Route("/_sandbox/oauth/authorizations", oauth_authorizations, methods=["GET"]),
            Route("/_sandbox", reset, methods=["DELETE"]),
            *discord.routes(state),
            *telegram.routes(state),
            *x.routes(state),
            *linkedin.routes(state),
            *facebook.routes(state),
            *instagram.routes(state),
            *threads.routes(state),
        ]
    )
    app.state_store = state
    return app


app = create_app()
