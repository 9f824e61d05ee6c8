"""The OAuth 2.0 part every emulated network shares: an authorize page that approves the sandbox's
test user at once, authorization codes (single use, PKCE checked when the network requires it),
access tokens with lifetimes, refresh tokens (rotated or not, per network), and the inspection
switches tests use to deny consent, expire tokens or revoke a grant.

Each network's module (sandbox/x.py, sandbox/linkedin.py, ...) mounts the authorize and token
routes at its real paths and formats answers in the network's own shape; this module only keeps
the state and the rules.

    POST /_sandbox/oauth {"network", "action": "deny_next" | "expire_access" | "revoke" | "fail_refresh"}
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse

NETWORKS = ("x", "linkedin", "facebook", "instagram", "threads")
ACTIONS = ("deny_next", "expire_access", "revoke", "fail_refresh")
CODE_TTL_SECONDS = 30.0  # X: "the authorization code must be exchanged within 30 s" [C]; strictest


class OAuthFailure(Exception):
    """An RFC 6749 §5.2 error; networks render it in their own envelope."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


@dataclass
class Token:
    network: str
    user_id: str
    scope: str
    client_id: str
    expires_at: float | None
    kind: str = "user"  # networks may issue other kinds (a Facebook Page token: "page")
    extra: dict[str, Any] = field(default_factory=dict)

    def alive(self, now: float | None = None) -> bool:
        return self.expires_at is None or (now or time.time()) < self.expires_at


def client_credentials(request: Request, params: dict[str, str]) -> tuple[str | None, str | None]:
    """The client id and secret from HTTP Basic (RFC 6749 §2.3.1) or from the parameters."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            raw = base64.b64decode(auth[6:].strip()).decode()
        except (ValueError, UnicodeDecodeError):
            raise OAuthFailure("invalid_client", "malformed Basic credentials", 401) from None
        client_id, _, secret = raw.partition(":")
        return client_id, secret
    return params.get("client_id"), params.get("client_secret")


async def request_params(request: Request) -> dict[str, str]:
    """Query parameters merged with a form or JSON body (token endpoints accept both)."""
    params = dict(request.query_params)
    ctype = request.headers.get("content-type", "")
    if "application/x-www-form-urlencoded" in ctype or "multipart/form-data" in ctype:
        form = await request.form()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    elif "json" in ctype:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.update({k: str(v) for k, v in body.items() if v is not None})
    return params


class OAuthServer:
    def __init__(self) -> None:
        self.codes: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        self.switches: dict[str, set[str]] = {}  # network -> pending one-shot actions
        self.authorizations: list[dict[str, Any]] = []  # what each authorize request asked for

    # --- inspection -------------------------------------------------------------------------

    def act(self, network: str, action: str) -> None:
        if network not in NETWORKS:
            raise ValueError(f"network must be one of {', '.join(NETWORKS)}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if action == "expire_access":
            for t in self.tokens.values():
                if t.network == network:
                    t.expires_at = time.time() - 1
        elif action == "revoke":
            for store in (self.tokens, self.refresh_tokens):
                for key in [k for k, t in store.items() if t.network == network]:
                    del store[key]
        else:
            self.switches.setdefault(network, set()).add(action)

    def take_switch(self, network: str, action: str) -> bool:
        """Consume a pending one-shot switch (networks may define their own, e.g. quota ones)."""
        return self._take(network, action)

    def _take(self, network: str, action: str) -> bool:
        pending = self.switches.get(network, set())
        if action in pending:
            pending.discard(action)
            return True
        return False

    # --- the consent page -------------------------------------------------------------------

    def authorize(self, network: str, params: dict[str, str], user_id: str, *,
                  require_pkce: bool = False, extra: dict[str, Any] | None = None) -> RedirectResponse:
        """Approve ``user_id`` at once and redirect back with a code (or with the error the
        network would send when the user says no: ``error=access_denied``)."""
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise OAuthFailure("invalid_request", "redirect_uri must be an absolute http(s) URL")
        if not params.get("client_id"):
            raise OAuthFailure("invalid_request", "client_id is required")
        if params.get("response_type", "code") != "code":
            raise OAuthFailure("unsupported_response_type", "only response_type=code is supported")
        challenge = params.get("code_challenge")
        if require_pkce and (not challenge or params.get("code_challenge_method") not in ("S256", "plain")):
            raise OAuthFailure("invalid_request", "code_challenge and code_challenge_method are required")
        self.authorizations.append({"network": network, **{k: v for k, v in params.items() if k != "state"}})
        state = params.get("state")
        sep = "&" if parts.query else "?"
        if self._take(network, "deny_next"):
            query = {"error": "access_denied", "error_description": "The user denied the request"}
            if state is not None:
                query["state"] = state
            return RedirectResponse(redirect_uri + sep + urlencode(query), status_code=302)
        code = secrets.token_urlsafe(24)
        self.codes[code] = {
            "network": network, "client_id": params["client_id"], "redirect_uri": redirect_uri,
            "scope": params.get("scope", ""), "challenge": challenge,
            "method": params.get("code_challenge_method"), "user_id": user_id,
            "created": time.time(), "extra": extra or {},
        }
        query = {"code": code}
        if state is not None:
            query["state"] = state
        return RedirectResponse(redirect_uri + sep + urlencode(query), status_code=302)

    # --- the token endpoint -----------------------------------------------------------------

    def redeem_code(self, network: str, params: dict[str, str], client_id: str | None,
                    client_secret: str | None, *, require_secret: bool = True) -> dict[str, Any]:
        """Check a code grant; the code's record (user id, scope, extra) once, else OAuthFailure."""
        if not client_id:
            raise OAuthFailure("invalid_client", "client authentication failed", 401)
        if require_secret and not client_secret:
            raise OAuthFailure("invalid_client", "client_secret is required", 401)
        code = params.get("code") or ""
        record = self.codes.pop(code, None)
        if record is None or record["network"] != network:
            raise OAuthFailure("invalid_grant", "authorization code is invalid or was already used")
        if time.time() - record["created"] > CODE_TTL_SECONDS:
            raise OAuthFailure("invalid_grant", "authorization code expired")
        if record["client_id"] != client_id:
            raise OAuthFailure("invalid_grant", "authorization code was issued to another client")
        if params.get("redirect_uri") != record["redirect_uri"]:
            raise OAuthFailure("invalid_grant", "redirect_uri does not match the authorization request")
        if record["challenge"]:
            verifier = params.get("code_verifier") or ""
            expected = verifier if record["method"] == "plain" else base64.urlsafe_b64encode(
                hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not verifier or expected != record["challenge"]:
                raise OAuthFailure("invalid_grant", "code_verifier does not match the code_challenge")
        return record

    def issue(self, network: str, user_id: str, scope: str, client_id: str, *,
              expires_in: float | None, refresh: bool = False, refresh_expires_in: float | None = None,
              kind: str = "user", extra: dict[str, Any] | None = None, prefix: str = "") -> dict[str, Any]:
        """A new access token (and refresh token); the RFC 6749 §5.1 fields."""
        now = time.time()
        access = prefix + secrets.token_urlsafe(32)
        self.tokens[access] = Token(network, user_id, scope, client_id,
                                    None if expires_in is None else now + expires_in, kind, dict(extra or {}))
        out: dict[str, Any] = {"access_token": access, "token_type": "bearer"}
        if expires_in is not None:
            out["expires_in"] = int(expires_in)
        if refresh:
            rt = prefix + "r" + secrets.token_urlsafe(32)
            self.refresh_tokens[rt] = Token(network, user_id, scope, client_id,
                                            None if refresh_expires_in is None else now + refresh_expires_in,
                                            "refresh", dict(extra or {}))
            out["refresh_token"] = rt
            if refresh_expires_in is not None:
                out["refresh_token_expires_in"] = int(refresh_expires_in)
        return out

    def use_refresh_token(self, network: str, refresh_token: str, client_id: str | None, *,
                          rotate: bool) -> Token:
        """Check a refresh grant; with ``rotate`` the old refresh token stops working (X)."""
        if self._take(network, "fail_refresh"):
            raise OAuthFailure("invalid_grant", "refresh token is invalid")
        grant = self.refresh_tokens.get(refresh_token)
        if grant is None or grant.network != network or not grant.alive():
            raise OAuthFailure("invalid_grant", "refresh token is invalid or expired")
        if client_id is not None and grant.client_id != client_id:
            raise OAuthFailure("invalid_grant", "refresh token was issued to another client")
        if rotate:
            del self.refresh_tokens[refresh_token]
        return grant

    def check(self, network: str, access_token: str | None) -> Token | None:
        """The live token, or None (unknown, expired or revoked)."""
        if not access_token:
            return None
        token = self.tokens.get(access_token)
        if token is None or token.network != network or not token.alive():
            return None
        return token


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` (or ``OAuth``) header, or ``access_token`` param."""
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return request.query_params.get("access_token")
