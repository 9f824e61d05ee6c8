"""Keeping OAuth accounts' access tokens alive: refresh before expiry and once after a 401.

Three callers share this one place: the publisher (a token about to expire, or a 401 from the
network), the safety-net sweep (tokens expiring within ``token_refresh_ahead_seconds``) and the
API (``/v1/connections/health``, discovery actions).

Refreshing is serialised per account: an asyncio lock inside a process, and across processes a
compare-and-swap on the stored ciphertext. That matters for networks that rotate refresh tokens
(X): two publishers refreshing with the same refresh token would otherwise make the second one
fail ``invalid_grant`` and wrongly mark a healthy account ``needs_reauth``. When a refresh is
refused, the account is re-read first: if someone else stored new credentials meanwhile, those
are used instead.

A refused refresh marks the account ``needs_reauth`` with a readable ``status_reason``; its due
posts then fail ``account_reauth_required`` (activities/publishing.py). Tokens never reach a log
line or an error message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlmodel import select

from herald.crypto import CredentialCipher
from herald.settings import Settings
from providers import get_adapter_class
from providers.base import AuthExpired, ProviderError, ProviderUnavailable
from providers.oauth import OAuthAdapter
from store.db import Database
from store.models import Account

log = logging.getLogger("herald.tokens")

# Refresh when the access token has less than this left, so a post never goes out on a token
# that dies in flight (X tokens live 2 h; Meta's 60 days).
EXPIRY_MARGIN_SECONDS = 120.0


@dataclass
class Refreshed:
    credentials: dict[str, Any]
    refreshed: bool


def expires_at_of(credentials: dict[str, Any]) -> datetime | None:
    value = credentials.get("expires_at")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    return None


class TokenKeeper:
    def __init__(self, settings: Settings, db: Database, http: httpx.AsyncClient):
        self.settings = settings
        self.db = db
        self.http = http
        self.cipher = CredentialCipher(settings.secret_key)
        self._locks: dict[str, asyncio.Lock] = {}

    def adapter(self, provider: str) -> Any:
        return get_adapter_class(provider)(self.http, self.settings.provider_base(provider))

    def _read(self, account_id: str) -> Account:
        with self.db.session() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise LookupError(f"account {account_id} no longer exists")
            s.expunge(account)
            return account

    async def credentials(self, account: Account) -> dict[str, Any]:
        """The account's credentials, refreshed first when the access token is about to end."""
        creds = self.cipher.decrypt(account.credentials_encrypted)
        expires = creds.get("expires_at")
        if isinstance(expires, (int, float)) and expires - time.time() < EXPIRY_MARGIN_SECONDS:
            return (await self.refresh(account.id, stale=account.credentials_encrypted)).credentials
        return creds

    async def refresh(self, account_id: str, *, stale: str | None = None, after_401: bool = False) -> Refreshed:
        """Refresh the account's token. ``stale`` is the ciphertext the caller found wanting: when
        the stored one differs, another caller already refreshed and that result is returned.

        Raises AuthExpired (the account is marked ``needs_reauth``) when the network refuses, or
        when it cannot refresh at all and the token was refused (``after_401``); ProviderUnavailable
        when the network could not be asked (nothing is marked)."""
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        async with lock:
            account = await asyncio.to_thread(self._read, account_id)
            creds = self.cipher.decrypt(account.credentials_encrypted)
            if stale is not None and account.credentials_encrypted != stale:
                return Refreshed(creds, False)
            adapter = self.adapter(account.provider)
            app = self.settings.oauth_app(account.provider)
            if not isinstance(adapter, OAuthAdapter) or app is None:
                if after_401:
                    await self._mark(account_id, "needs_reauth", "the network refused the stored credentials")
                    raise AuthExpired("the network refused the stored credentials; reconnect the account")
                return Refreshed(creds, False)
            try:
                new = await adapter.refresh(app, creds)
            except AuthExpired as exc:
                # Did another process refresh (and rotate) while we asked? Then theirs is good.
                current = await asyncio.to_thread(self._read, account_id)
                if current.credentials_encrypted != account.credentials_encrypted:
                    return Refreshed(self.cipher.decrypt(current.credentials_encrypted), False)
                await self._mark(account_id, "needs_reauth", f"token refresh refused: {exc.message}")
                raise
            except ProviderError as exc:
                raise ProviderUnavailable(f"could not refresh the token: {exc.message}") from None
            if new is None:
                if after_401:
                    reason = "the network refused the token and offers no refresh; reconnect the account"
                    await self._mark(account_id, "needs_reauth", reason)
                    raise AuthExpired(reason)
                return Refreshed(creds, False)
            saved = await asyncio.to_thread(self._store, account_id, account.credentials_encrypted, new)
            if saved is not None:  # lost the race: another process stored newer credentials
                return Refreshed(saved, False)
            log.info("refreshed the token of account %s (%s)", account_id, account.provider)
            return Refreshed(new, True)

    def _store(self, account_id: str, expected: str, credentials: dict[str, Any]) -> dict[str, Any] | None:
        """Save when the stored ciphertext is still ``expected``; else return what is stored."""
        with self.db.write_session() as s:
            account = s.get(Account, account_id)
            if account is None:
                raise LookupError(f"account {account_id} no longer exists")
            if account.credentials_encrypted != expected:
                return self.cipher.decrypt(account.credentials_encrypted)
            account.credentials_encrypted = self.cipher.encrypt(credentials)
            account.token_expires_at = expires_at_of(credentials)
            if account.status == "needs_reauth":
                account.status = "connected"
            account.status_reason = None
            account.updated_at = datetime.now(timezone.utc)
            s.add(account)
            s.commit()
            return None

    async def _mark(self, account_id: str, status: str, reason: str) -> None:
        def write() -> None:
            with self.db.write_session() as s:
                account = s.get(Account, account_id)
                if account is None or account.status == "disconnected":
                    return
                account.status = status
                account.status_reason = reason[:500]
                account.updated_at = datetime.now(timezone.utc)
                s.add(account)
                s.commit()

        await asyncio.to_thread(write)

    async def refresh_expiring(self, within_seconds: float, limit: int = 200) -> dict[str, int]:
        """The sweep's pass: refresh every connected account whose token ends within the window.
        Returns counts (refreshed, failed, unchanged)."""
        horizon = datetime.now(timezone.utc) + timedelta(seconds=within_seconds)

        def due() -> list[tuple[str, str]]:
            with self.db.session() as s:
                rows = s.exec(select(Account).where(
                    Account.status == "connected", Account.token_expires_at.is_not(None),  # type: ignore[union-attr]
                    Account.token_expires_at < horizon,  # type: ignore[operator]
                ).order_by(Account.token_expires_at).limit(limit)).all()
                return [(a.id, a.credentials_encrypted) for a in rows]

        counts = {"refreshed": 0, "failed": 0, "unchanged": 0}
        for account_id, stale in await asyncio.to_thread(due):
            try:
                result = await self.refresh(account_id, stale=stale)
            except (AuthExpired, ProviderUnavailable, LookupError) as exc:
                log.warning("token refresh of account %s failed: %s", account_id, getattr(exc, "message", exc))
                counts["failed"] += 1
                continue
            counts["refreshed" if result.refreshed else "unchanged"] += 1
        return counts
