"""GET /oauth/{provider}/callback: where a network sends the user back after consent.

No API key here (the network's redirect carries none); the signed ``state`` identifies the
workspace and the connection (api/oauth_flow.py). With ``HERALD_OAUTH_SUCCESS_URL`` set, or a
``callbackScheme`` given at start, the browser is redirected there with ``connectionId``,
``status`` and on failure ``error``; otherwise the answer is JSON.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api import oauth_flow
from api.errors import ApiError, error_body
from api.serializers import account_json, connection_json
from providers import ADAPTERS
from providers.oauth import OAuthAdapter

router = APIRouter(tags=["connections"])


@router.get("/oauth/{provider}/callback")
async def oauth_callback(provider: str, request: Request) -> Response:
    """Complete an OAuth connection: check the state, exchange the code, store the accounts."""
    adapter_cls = ADAPTERS.get(provider)
    if adapter_cls is None or not issubclass(adapter_cls, OAuthAdapter):
        raise ApiError(404, "not_found", f"no OAuth callback for provider {provider!r}")
    settings = request.app.state.settings
    adapter = adapter_cls(request.app.state.http, settings.provider_base(provider))
    query = {k: v[:2048] for k, v in request.query_params.items()}
    try:
        result = await oauth_flow.Callback(request.app.state.db, settings, adapter).run(query)
    except oauth_flow.CallbackFailed as exc:
        target = oauth_flow.return_url(settings, exc.connection, "failed", exc.code, exc.callback_scheme) \
            if exc.connection is not None else None
        if target:
            return RedirectResponse(target, status_code=303)
        details = {"connectionId": exc.connection.id} if exc.connection is not None else None
        return JSONResponse(error_body(exc.code, exc.message, details), status_code=exc.status)
    target = oauth_flow.return_url(settings, result.connection, "connected", None, result.callback_scheme)
    if target:
        return RedirectResponse(target, status_code=303)
    return JSONResponse({
        "ok": True,
        "connection": connection_json(result.connection, result.accounts[0]),
        "accounts": [account_json(a) for a in result.accounts],
    })
