"""OAuth connections: start (an authorize URL bound to the workspace and the connection) and the
callback (check the state, exchange the code, discover the accounts, store them).

The ``state`` parameter is ``<connection id>.<expiry>.<signature>``: an HMAC over the workspace,
the connection, the provider, the expiry and a random nonce that only the database knows (kept,
encrypted, with the PKCE verifier in ``Connection.oauth_secret_encrypted``). A state is good once:
the callback moves the connection from ``pending`` to ``authorizing`` with a conditional UPDATE, so
a double-submitted callback (a browser refresh) cannot exchange the code twice.

Reconnecting updates accounts in place (same ids, so scheduled posts keep pointing at them) and
never drops a refresh token the network did not replace.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlmodel import Session, select

from api.errors import ApiError
from herald.account_tokens import expires_at_of
from herald.crypto import CredentialCipher
from herald.ids import new_id
from herald.settings import Settings
from providers.base import AccountIdentity, AuthExpired, ProviderError
from providers.oauth import OAuthAdapter, OAuthApp, new_pkce_pair
from store.db import Database
from store.models import Account, Connection

log = logging.getLogger("herald.oauth")

CALLBACK_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]{1,40}$")
CLIENT_HINT = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
# Schemes a mobile callback may not use: they would turn the callback into an open redirect
# or script execution.
FORBIDDEN_SCHEMES = {"http", "https", "javascript", "data", "file", "vbscript", "blob", "about"}


def _sign(secret_key: str, *parts: str) -> str:
    key = hashlib.sha256(b"herald-oauth-state-v1:" + secret_key.split(",")[0].strip().encode()).digest()
    mac = hmac.new(key, "\n".join(parts).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).rstrip(b"=").decode()


def oauth_app_or_400(settings: Settings, provider: str) -> OAuthApp:
    app = settings.oauth_app(provider)
    if app is None:
        id_name, secret_name = settings.oauth_setting_names(provider)
        raise ApiError(400, "provider_not_configured",
                       f"{provider} is not configured on this server: set {id_name} and {secret_name} "
                       "(README: Registering the network apps)", {"settings": [id_name, secret_name]})
    return app


def start(session: Session, settings: Settings, workspace_id: str, adapter: OAuthAdapter,
          params: dict[str, Any]) -> Connection:
    """A pending connection with its authorize URL (committed by the caller)."""
    provider = adapter.provider
    app = oauth_app_or_400(settings, provider)
    scheme = params.get("callbackScheme")
    if scheme is not None:
        if not isinstance(scheme, str) or not CALLBACK_SCHEME.match(scheme) or scheme in FORBIDDEN_SCHEMES:
            raise ApiError(400, "invalid_request", "callbackScheme must be an app's URL scheme such as "
                           "'myapp' (letters, digits, + . -; not http, https, javascript, data or file)")
    client = params.get("client")  # a hint such as "ios" (spec); kept with the flow, not acted on
    if client is not None and (not isinstance(client, str) or not CLIENT_HINT.match(client)):
        raise ApiError(400, "invalid_request", "client must be a short name such as ios, android or web")
    now = datetime.now(timezone.utc)
    expires = now + timedelta(seconds=settings.oauth_state_ttl_seconds)
    connection = Connection(id=new_id("conn"), workspace_id=workspace_id, provider=provider, status="pending",
                            expires_at=expires)
    verifier, challenge = new_pkce_pair() if adapter.oauth.pkce else (None, None)
    nonce = secrets.token_urlsafe(16)
    exp = str(int(expires.timestamp()))
    state = f"{connection.id}.{exp}.{_sign(settings.secret_key, workspace_id, connection.id, provider, exp, nonce)}"
    connection.oauth_secret_encrypted = CredentialCipher(settings.secret_key).encrypt(
        {"nonce": nonce, "verifier": verifier, "callbackScheme": scheme, "client": client})
    connection.authorize_url = adapter.authorize_url(app, state, challenge)
    session.add(connection)
    return connection


@dataclass
class CallbackResult:
    connection: Connection
    accounts: list[Account]
    callback_scheme: str | None = None


class CallbackFailed(Exception):
    def __init__(self, status: int, code: str, message: str, connection: Connection | None = None,
                 callback_scheme: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.connection = connection
        self.callback_scheme = callback_scheme


class Callback:
    """One callback request. The network calls happen outside any transaction."""

    def __init__(self, db: Database, settings: Settings, adapter: OAuthAdapter):
        self.db = db
        self.settings = settings
        self.adapter = adapter
        self.cipher = CredentialCipher(settings.secret_key)

    async def run(self, query: dict[str, str]) -> CallbackResult:
        import asyncio

        connection, secret = await asyncio.to_thread(self._claim, query.get("state") or "")
        scheme = secret.get("callbackScheme")
        if query.get("error"):
            detail = query.get("error_description") or query.get("error_reason") or ""
            message = f"consent was not given: {query['error'][:100]}" + (f" ({detail[:200]})" if detail else "")
            await asyncio.to_thread(self._fail, connection.id, message)
            raise CallbackFailed(400, "oauth_denied", message, connection, scheme)
        code = query.get("code")
        if not code:
            message = "the network sent neither a code nor an error"
            await asyncio.to_thread(self._fail, connection.id, message)
            raise CallbackFailed(400, "oauth_failed", message, connection, scheme)
        app = self.settings.oauth_app(self.adapter.provider)
        if app is None:
            await asyncio.to_thread(self._fail, connection.id, "the network's app is no longer configured")
            raise CallbackFailed(400, "provider_not_configured", "the network's app is no longer configured",
                                 connection, scheme)
        try:
            credentials = await self.adapter.exchange_code(app, code, secret.get("verifier"))
            identities = await self.adapter.discover(app, credentials)
        except AuthExpired as exc:
            message = f"the network refused the authorization: {exc.message}"
            await asyncio.to_thread(self._fail, connection.id, message)
            raise CallbackFailed(400, "oauth_exchange_failed", message, connection, scheme) from None
        except ProviderError as exc:
            message = f"could not complete the connection with {self.adapter.provider}: {exc.message}"
            await asyncio.to_thread(self._fail, connection.id, message)
            raise CallbackFailed(502, "oauth_exchange_failed", message, connection, scheme) from None
        if not identities:
            message = (f"the {self.adapter.provider} login worked, but it gives access to nothing Herald can "
                       "publish to (no Page, organization or professional account)")
            await asyncio.to_thread(self._fail, connection.id, message)
            raise CallbackFailed(400, "oauth_no_accounts", message, connection, scheme)
        connection, accounts = await asyncio.to_thread(self._store, connection.id, identities)
        return CallbackResult(connection, accounts, scheme)

    def _claim(self, state: str) -> tuple[Connection, dict[str, Any]]:
        """Check the state and move its connection pending -> authorizing (exactly once)."""
        parts = state.split(".")
        if len(parts) != 3 or not parts[0].startswith("conn_") or not parts[1].isdigit():
            raise CallbackFailed(400, "oauth_state_invalid", "the state parameter is missing or malformed")
        connection_id, exp, signature = parts
        with self.db.write_session() as s:
            connection = s.get(Connection, connection_id)
            if connection is None or connection.provider != self.adapter.provider or not connection.oauth_secret_encrypted:
                raise CallbackFailed(400, "oauth_state_invalid", "the state does not belong to a connection in progress")
            try:
                secret = self.cipher.decrypt(connection.oauth_secret_encrypted)
            except ValueError:  # HERALD_SECRET_KEY changed since the flow started
                raise CallbackFailed(400, "oauth_state_invalid", "the state can no longer be checked; start again") from None
            expected = _sign(self.settings.secret_key, connection.workspace_id, connection.id,
                             connection.provider, exp, secret["nonce"])
            if not hmac.compare_digest(expected, signature):
                raise CallbackFailed(400, "oauth_state_invalid", "the state signature is not valid")
            if connection.status != "pending":
                raise CallbackFailed(409, "oauth_state_used",
                                     f"this connection is already {connection.status}; start a new one",
                                     connection, secret.get("callbackScheme"))
            if int(exp) < time.time():
                connection.status, connection.error = "failed", "the connection request expired; start again"
                connection.oauth_secret_encrypted = self._spent(connection)
                connection.updated_at = datetime.now(timezone.utc)
                s.add(connection)
                s.commit()
                raise CallbackFailed(400, "oauth_state_expired", connection.error, connection, secret.get("callbackScheme"))
            claimed = s.execute(
                sa.update(Connection).where(Connection.id == connection.id, Connection.status == "pending")
                .values(status="authorizing", updated_at=datetime.now(timezone.utc))
            ).rowcount
            s.commit()
            if claimed != 1:
                raise CallbackFailed(409, "oauth_state_used", "this connection is already being completed", connection)
            s.refresh(connection)
            s.expunge(connection)
            return connection, secret

    def _spent(self, connection: Connection) -> str | None:
        """The flow's secret without the PKCE verifier: the nonce stays, so a replayed state is
        still recognised as this connection's (409), never taken for a forgery."""
        if not connection.oauth_secret_encrypted:
            return None
        secret = self.cipher.decrypt(connection.oauth_secret_encrypted)
        return self.cipher.encrypt({"nonce": secret["nonce"], "callbackScheme": secret.get("callbackScheme")})

    def _fail(self, connection_id: str, message: str) -> None:
        with self.db.write_session() as s:
            connection = s.get(Connection, connection_id)
            if connection is None:
                return
            connection.status, connection.error = "failed", message[:1000]
            connection.oauth_secret_encrypted = self._spent(connection)
            connection.updated_at = datetime.now(timezone.utc)
            s.add(connection)
            s.commit()

    def _store(self, connection_id: str, identities: list[AccountIdentity]) -> tuple[Connection, list[Account]]:
        now = datetime.now(timezone.utc)
        with self.db.write_session() as s:
            connection = s.get(Connection, connection_id)
            assert connection is not None
            accounts = [upsert_account(s, self.cipher, connection.workspace_id, self.adapter.provider, identity,
                                       connection.id, now) for identity in identities]
            connection.status = "connected"
            connection.error = None
            connection.account_id = accounts[0].id
            connection.account_ids = [a.id for a in accounts]
            connection.oauth_secret_encrypted = self._spent(connection)
            connection.updated_at = now
            s.add(connection)
            s.commit()
            s.refresh(connection)
            for a in accounts:
                s.refresh(a)
                s.expunge(a)
            s.expunge(connection)
            return connection, accounts


def upsert_account(session: Session, cipher: CredentialCipher, workspace_id: str, provider: str,
                   identity: AccountIdentity, connection_id: str | None, now: datetime) -> Account:
    """Create the account or update it in place. A refresh token the network did not send again
    is kept (reconnecting must never throw away a grant that still works)."""
    account = session.exec(select(Account).where(Account.workspace_id == workspace_id,
                                                 Account.handle == identity.handle)).first()
    credentials = dict(identity.credentials)
    if account is None:
        account = Account(id=new_id("acct"), workspace_id=workspace_id, provider=provider, handle=identity.handle,
                          credentials_encrypted="")
    elif account.credentials_encrypted and "refresh_token" not in credentials:
        try:
            old = cipher.decrypt(account.credentials_encrypted)
        except ValueError:
            old = {}
        still_valid = old.get("refresh_token") and (
            not old.get("refresh_expires_at") or old["refresh_expires_at"] > time.time())
        if still_valid:
            credentials["refresh_token"] = old["refresh_token"]
            if old.get("refresh_expires_at"):
                credentials["refresh_expires_at"] = old["refresh_expires_at"]
    if connection_id is not None:
        account.connection_id = connection_id
    account.display_name = identity.display_name
    account.external_id = identity.external_id
    account.account_type = identity.account_type
    account.meta = identity.metadata
    account.credentials_encrypted = cipher.encrypt(credentials)
    account.token_expires_at = expires_at_of(credentials)
    account.status = "connected"
    account.status_reason = None
    account.updated_at = now
    session.add(account)
    session.flush()
    return account


def return_url(settings: Settings, result_connection: Connection | None, status: str,
               code: str | None, callback_scheme: str | None) -> str | None:
    """Where the browser goes after the callback: the mobile app's scheme, the configured
    success URL, or nowhere (JSON)."""
    query: dict[str, str] = {"status": status}
    if result_connection is not None:
        query["connectionId"] = result_connection.id
        query["provider"] = result_connection.provider
    if code:
        query["error"] = code
    if callback_scheme:
        return f"{callback_scheme}://oauth/callback?{urlencode(query)}"
    if settings.oauth_success_url:
        sep = "&" if "?" in settings.oauth_success_url else "?"
        return f"{settings.oauth_success_url}{sep}{urlencode(query)}"
    return None
