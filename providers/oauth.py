"""OAuth 2.0 for the networks that connect by consent (X, LinkedIn, Facebook, Instagram, Threads).

The flow (api/oauth_flow.py drives it)::

    connections/start  -> OAuthAdapter.authorize_url(app, state, code_challenge)
    browser            -> the network's consent page -> GET /oauth/{provider}/callback?code&state
    callback           -> OAuthAdapter.exchange_code(app, code, code_verifier)   -> credentials
                       -> OAuthAdapter.discover(app, credentials)                 -> accounts
    before expiry/401  -> OAuthAdapter.refresh(app, credentials)                  -> credentials

*Credentials* are the dict an account stores encrypted (``Account.credentials_encrypted``). For
OAuth accounts it always has ``access_token`` and, when the network says so, ``refresh_token``,
``expires_at`` (epoch seconds of the access token's end) and ``refresh_expires_at``. Adapters add
what they need to publish (a Facebook Page token, the user token it came from, ...). ``expires_at``
is copied to ``Account.token_expires_at`` so the refresher can find accounts by it.

Nothing here logs a token or puts one into an exception message.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from providers.base import (
    AccountIdentity,
    Adapter,
    AuthExpired,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
    send_classified,
    truncate,
)


@dataclass(frozen=True)
class OAuthSpec:
    """What a network's consent request looks like."""

    authorize_path: str  # appended to OAuthApp.auth_base
    scopes: tuple[str, ...]
    scope_separator: str = " "
    pkce: bool = False  # send code_challenge (S256) and code_verifier
    # Extra fixed authorize parameters (e.g. Reddit's duration=permanent).
    extra_params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OAuthApp:
    """A registered app on the network, from settings (``Settings.oauth_app``)."""

    app: str
    client_id: str
    client_secret: str
    redirect_uri: str
    auth_base: str  # the consent page's host (x.com, www.linkedin.com, www.facebook.com, ...)
    token_base: str  # the token endpoint's host (api.x.com, graph.facebook.com, ...)

    def basic_auth(self) -> str:
        raw = f"{self.client_id}:{self.client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def new_pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636."""
    verifier = secrets.token_urlsafe(48)  # 64 characters, inside RFC 7636's 43-128
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_credentials(body: dict[str, Any], now: float | None = None,
                      previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """A token endpoint's JSON -> the credential fields every OAuth account keeps.

    A refresh answer without a new ``refresh_token`` keeps the previous one: networks that do
    not rotate (LinkedIn, Meta's long-lived exchanges) must not lose the one that still works.
    """
    now = time.time() if now is None else now
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderError("the token endpoint answered without an access_token", code="oauth_bad_response")
    out: dict[str, Any] = dict(previous or {})
    out["access_token"] = access
    if body.get("refresh_token"):
        out["refresh_token"] = body["refresh_token"]
    expires_in = body.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        out["expires_at"] = now + float(expires_in)
    elif "expires_at" in out and previous is not None:
        out.pop("expires_at")  # the new token says nothing about its end: do not keep the old one
    refresh_in = body.get("refresh_token_expires_in")
    if isinstance(refresh_in, (int, float)) and not isinstance(refresh_in, bool) and refresh_in > 0:
        out["refresh_expires_at"] = now + float(refresh_in)
    if isinstance(body.get("scope"), str):
        out["scope"] = body["scope"]
    return out


def oauth_error(response: httpx.Response) -> ProviderError:
    """Classify a failed token-endpoint answer (RFC 6749 §5.2 ``{"error", "error_description"}``,
    or the network's own envelope). ``invalid_grant`` and 400/401 mean the grant is dead:
    the account must be reconnected."""
    status = response.status_code
    if status == 429:
        retry = response.headers.get("retry-after")
        return RateLimited("the token endpoint is rate limiting", retry_after=float(retry) if retry and retry.isdigit() else 60.0)
    if status >= 500:
        return ProviderUnavailable(f"the token endpoint failed with HTTP {status}", http_status=status)
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = ""
    message = ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, str):
            code, message = err, str(body.get("error_description") or err)
        elif isinstance(err, dict):  # Graph API envelope
            code, message = str(err.get("code") or err.get("type") or ""), str(err.get("message") or "")
        else:
            message = str(body.get("message") or body.get("detail") or "")
    text = f"token request refused ({code or status}): {truncate(message) or 'no detail'}"
    if status in (400, 401, 403):
        return AuthExpired(text, http_status=status)
    return ProviderError(text, http_status=status, code="oauth_error")


async def token_request(http: httpx.AsyncClient, method: str, url: str, *,
                        data: dict[str, str] | None = None, params: dict[str, str] | None = None,
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
    """One call to a token endpoint; the JSON body on 2xx, else the classified error."""
    request = http.build_request(method, url, data=data, params=params,
                                 headers={"Accept": "application/json", **(headers or {})})
    response = await send_classified(http, request)
    if response.status_code >= 300:
        raise oauth_error(response)
    try:
        body = response.json()
    except ValueError:
        raise ProviderError("the token endpoint answered with something other than JSON",
                            http_status=response.status_code, code="oauth_bad_response") from None
    if not isinstance(body, dict):
        raise ProviderError("the token endpoint answered with something other than an object",
                            code="oauth_bad_response")
    return body


class OAuthAdapter(Adapter):
    """An adapter whose accounts connect by OAuth. Subclasses set ``oauth`` and implement
    ``exchange_code`` and ``discover``; ``refresh`` defaults to "this network cannot refresh"."""

    oauth: ClassVar[OAuthSpec]
    # Discovery actions this network offers on an account (``/v1/accounts/{id}/actions``).
    actions: ClassVar[tuple[tuple[str, str], ...]] = ()

    def authorize_url(self, app: OAuthApp, state: str, code_challenge: str | None) -> str:
        params: list[tuple[str, str]] = [
            ("response_type", "code"),
            ("client_id", app.client_id),
            ("redirect_uri", app.redirect_uri),
            ("scope", self.oauth.scope_separator.join(self.oauth.scopes)),
            ("state", state),
        ]
        if self.oauth.pkce and code_challenge:
            params += [("code_challenge", code_challenge), ("code_challenge_method", "S256")]
        params += list(self.oauth.extra_params)
        return f"{app.auth_base}{self.oauth.authorize_path}?{urlencode(params)}"

    async def exchange_code(self, app: OAuthApp, code: str, code_verifier: str | None) -> dict[str, Any]:
        """The code -> credentials (``token_credentials`` shape, plus what the network needs)."""
        raise NotImplementedError

    async def discover(self, app: OAuthApp, credentials: dict[str, Any]) -> list[AccountIdentity]:
        """The publishable targets these credentials reach: the member, each managed Page or
        organization, each linked Instagram account. Each identity carries its own credentials."""
        raise NotImplementedError

    async def refresh(self, app: OAuthApp, credentials: dict[str, Any]) -> dict[str, Any] | None:
        """New credentials, or None when the network has no way to refresh (reconnect instead).
        Raises AuthExpired when the network refuses the refresh (the account needs re-auth)."""
        return None

    async def run_action(self, app: OAuthApp | None, credentials: dict[str, Any], action: str) -> dict[str, Any]:
        """Run a discovery action (``sync_pages``, ...); the result is JSON for the API."""
        raise ValueError(f"unknown action {action!r}")

    def login_credentials(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """The credentials ``discover`` takes (what ``exchange_code`` returned), rebuilt from one
        account's stored ones, so a sync action can re-discover. Networks whose accounts hold a
        derived token (a Facebook Page token) override this to return the login's own token."""
        return credentials

    # OAuth accounts are not connected with manual parameters.
    async def connect(self, params: dict[str, Any]) -> AccountIdentity:
        raise ValueError(f"{self.provider} connects by OAuth: start it with only the provider")
