"""Connections and accounts. Discord (webhook URL) and Telegram (bot token + chat id) are manual
connections, verified with the network before anything is stored; the other networks connect by
OAuth (api/oauth_flow.py: start here, finish at /oauth/{provider}/callback)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Body, Request
from sqlmodel import select

from api import account_lifecycle, oauth_flow
from api.deps import CallerDep, SessionDep
from api.rate_limits import limited
from api.errors import ApiError, not_found
from api.routes.workspace import account_health
from api.serializers import account_json, connection_json
from herald.account_tokens import TokenKeeper
from herald.crypto import CredentialCipher
from herald.ids import new_id
from providers import ADAPTERS, UnknownProvider, get_adapter_class
from providers.base import AuthExpired, ProviderError, ProviderUnavailable, RateLimited
from providers.capabilities import capability, settings_fields
from providers.oauth import OAuthAdapter
from store.models import Account, Connection

router = APIRouter(prefix="/v1", tags=["connections"])

MANUAL_PROVIDERS = ("discord", "telegram")
ALIASES = {"bot_token": "botToken", "chat_id": "chatId", "webhook_url": "webhookUrl", "callback_scheme": "callbackScheme"}
# How long /v1/connections/health waits for one network's answer about one account.
HEALTH_CHECK_TIMEOUT = 15.0


def _normalize(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object with a 'provider'")
    out = {ALIASES.get(k, k): v for k, v in body.items()}
    for k, v in out.items():
        if v is not None and not isinstance(v, (str, int, bool)):
            raise ApiError(400, "invalid_request", f"{k} must be a string")
        if isinstance(v, str) and len(v) > 2048:
            raise ApiError(400, "invalid_request", f"{k} is longer than 2,048 characters")
    return out


@router.post("/connections/start", status_code=201)
async def start_connection(
    request: Request, caller: CallerDep, session: SessionDep, body: Annotated[Any, Body()] = None
) -> dict:
    """Start a connection. Telegram: botToken + chatId. Discord: webhookUrl (both verified at once).
    OAuth networks (x, linkedin, linkedin_page, facebook, instagram_business, instagram, threads):
    only the provider (optional `client`, `callbackScheme`); the answer is a pending connection
    whose `authorizeUrl` the user opens within 10 minutes."""
    params = _normalize(body)
    provider = params.get("provider")
    if not isinstance(provider, str) or not provider:
        raise ApiError(400, "invalid_request", "provider is required", {"supported": sorted(ADAPTERS)})
    try:
        adapter_cls = get_adapter_class(provider)
    except UnknownProvider as exc:
        raise ApiError(400, "provider_not_supported", exc.message, {"supported": sorted(ADAPTERS)}) from None
    settings = request.app.state.settings
    if issubclass(adapter_cls, OAuthAdapter):
        oauth_adapter = adapter_cls(request.app.state.http, settings.provider_base(provider))
        connection = oauth_flow.start(session, settings, caller.workspace.id, oauth_adapter, params)
        session.commit()
        return {"ok": True, "connection": connection_json(connection)}
    if provider not in MANUAL_PROVIDERS:
        raise ApiError(400, "provider_not_supported", f"{provider} connections are not available yet")
    params = {k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in params.items()}
    adapter = adapter_cls(request.app.state.http, settings.provider_base(provider))
    try:
        identity = await adapter.connect(params)
    except ValueError as exc:
        raise ApiError(400, "invalid_credentials", str(exc)) from None
    except AuthExpired as exc:
        raise ApiError(400, "provider_auth_failed", exc.message) from None
    except (ProviderUnavailable, RateLimited) as exc:
        raise ApiError(502, "provider_unavailable", exc.message) from None
    except ProviderError as exc:
        raise ApiError(400, "provider_rejected", exc.message) from None

    now = datetime.now(timezone.utc)
    cipher = CredentialCipher(settings.secret_key)
    ws = caller.workspace.id
    account = session.exec(select(Account).where(Account.workspace_id == ws, Account.handle == identity.handle)).first()
    connection = Connection(id=new_id("conn"), workspace_id=ws, provider=provider, status="connected")
    if account is None:
        account = Account(id=new_id("acct"), workspace_id=ws, provider=provider, handle=identity.handle,
                          credentials_encrypted="")
    # Reconnecting updates the account in place: posts keep pointing at the same id.
    account.connection_id = connection.id
    account.display_name = identity.display_name
    account.external_id = identity.external_id
    account.account_type = identity.account_type
    account.meta = identity.metadata
    account.credentials_encrypted = cipher.encrypt(identity.credentials)
    account.status = "connected"
    account.status_reason = None
    account.updated_at = now
    connection.account_id = account.id
    session.add(account)
    session.add(connection)
    session.commit()
    return {"ok": True, "connection": connection_json(connection, account)}


@router.get("/connections")
def list_connections(caller: CallerDep, session: SessionDep) -> dict:
    """List connection handshakes, newest first."""
    rows = session.exec(
        select(Connection).where(Connection.workspace_id == caller.workspace.id)
        .order_by(Connection.created_at.desc(), Connection.id)  # type: ignore[attr-defined]
    ).all()
    return {"ok": True, "connections": [connection_json(c) for c in rows]}


@router.get("/connections/health", dependencies=[limited("reads")])
async def connections_health(caller: CallerDep, session: SessionDep, request: Request,
                             provider: Optional[str] = None) -> dict:
    """Connected accounts and those that need attention. Each connected account's token is checked
    with its network (a cheap identity call); a refused token is refreshed once, and an account
    whose token cannot be renewed becomes ``needs_reauth``."""
    health = account_health(session, caller.workspace.id, provider)
    ids = [a["id"] for a in health["accounts"] if a["status"] == "connected"]
    rows = {a.id: a for a in session.exec(select(Account).where(Account.id.in_(ids))).all()} if ids else {}  # type: ignore[attr-defined]
    session.expunge_all()
    checks = await asyncio.gather(*(_check_account(request, rows[i]) for i in ids if i in rows))
    results = {c["id"]: c for c in checks}
    for entry in health["accounts"]:
        check = results.get(entry["id"])
        if check is not None:
            entry.update(check)
    health["failingAccounts"] = sum(1 for a in health["accounts"] if a["status"] != "connected" or a.get("tokenOk") is False)
    return {"ok": True, "health": health}


async def _check_account(request: Request, account: Account) -> dict:
    keeper: TokenKeeper = request.app.state.token_keeper
    out: dict[str, Any] = {"id": account.id}
    if account.provider not in ADAPTERS:
        return out
    try:
        credentials = await keeper.credentials(account)
        adapter = keeper.adapter(account.provider)
        try:
            await asyncio.wait_for(adapter.check_credentials(credentials), HEALTH_CHECK_TIMEOUT)
        except AuthExpired:
            refreshed = await keeper.refresh(account.id, stale=account.credentials_encrypted, after_401=True)
            await asyncio.wait_for(adapter.check_credentials(refreshed.credentials), HEALTH_CHECK_TIMEOUT)
        out["tokenOk"] = True
    except AuthExpired as exc:
        out.update(tokenOk=False, status="needs_reauth", error=exc.message)
    except (ProviderError, asyncio.TimeoutError) as exc:
        # The network did not answer: that says nothing about the token.
        out.update(tokenOk=None, error=f"could not check: {getattr(exc, 'message', None) or type(exc).__name__}")
    if account.token_expires_at is not None:
        out["tokenExpiresAt"] = account.token_expires_at.isoformat().replace("+00:00", "Z")
    return out


@router.get("/connections/{connection_id}")
def get_connection(connection_id: str, caller: CallerDep, session: SessionDep) -> dict:
    """One connection handshake."""
    c = session.get(Connection, connection_id)
    if c is None or c.workspace_id != caller.workspace.id:
        raise not_found("connection", connection_id)
    account = session.get(Account, c.account_id) if c.account_id else None
    return {"ok": True, "connection": connection_json(c, account)}


def _account(session, caller, account_id: str) -> Account:  # noqa: ANN001
    a = session.get(Account, account_id)
    if a is None or a.workspace_id != caller.workspace.id:
        raise not_found("account", account_id)
    return a


@router.get("/accounts")
def list_accounts(caller: CallerDep, session: SessionDep, provider: Optional[str] = None) -> dict:
    """Connected accounts (disconnected ones are left out)."""
    q = select(Account).where(Account.workspace_id == caller.workspace.id, Account.status != "disconnected")
    if provider:
        q = q.where(Account.provider == provider)
    rows = session.exec(q.order_by(Account.created_at, Account.id)).all()
    return {"ok": True, "accounts": [account_json(a) for a in rows]}


@router.get("/accounts/capabilities")
def list_capabilities(caller: CallerDep, session: SessionDep, request: Request, provider: Optional[str] = None) -> dict:
    """Publishing capabilities of every connected account."""
    q = select(Account).where(Account.workspace_id == caller.workspace.id, Account.status != "disconnected")
    if provider:
        q = q.where(Account.provider == provider)
    rows = session.exec(q.order_by(Account.created_at, Account.id)).all()
    return {"ok": True, "capabilities": [capability(a.provider, a.id, a.status, request.app.state.settings, a.status_reason)
                                         for a in rows if a.provider in ADAPTERS]}


@router.get("/accounts/{account_id}/capabilities")
def account_capabilities(account_id: str, caller: CallerDep, session: SessionDep, request: Request) -> dict:
    """Publishing capabilities of one account."""
    a = _account(session, caller, account_id)
    return {"ok": True, "capabilities": [capability(a.provider, a.id, a.status, request.app.state.settings,
                                                    a.status_reason)]}


@router.get("/accounts/{account_id}/settings")
def account_settings(account_id: str, caller: CallerDep, session: SessionDep) -> dict:
    """Provider settings fields a post to this account may carry."""
    a = _account(session, caller, account_id)
    fields = settings_fields(a.provider)
    return {"ok": True, "publishSettings": {
        "supported": bool(fields), "target": {"provider": a.provider, "accountType": a.account_type},
        "fields": fields,
    }}


@router.delete("/accounts/{account_id}")
def disconnect_account(account_id: str, caller: CallerDep, session: SessionDep, request: Request) -> dict:
    """Disconnect an account: its credentials are erased; its scheduled posts will fail clearly."""
    a = _account(session, caller, account_id)
    conn = account_lifecycle.disconnect(session, a, request.app.state.settings.secret_key)
    session.commit()
    if conn is None:
        conn = Connection(id=a.connection_id or "", workspace_id=a.workspace_id, provider=a.provider, status="disconnected")
    return {"ok": True, "connection": connection_json(conn, a)}


@router.get("/accounts/{account_id}/actions")
def list_actions(account_id: str, caller: CallerDep, session: SessionDep) -> dict:
    """Discovery actions this account's network offers (sync_pages, sync_organizations, ...)."""
    a = _account(session, caller, account_id)
    adapter = ADAPTERS.get(a.provider)
    actions = getattr(adapter, "actions", ()) if adapter is not None else ()
    return {"ok": True, "actions": [{"id": i, "label": label} for i, label in actions]}


@router.post("/accounts/{account_id}/actions/{action_id}")
async def run_action(account_id: str, action_id: str, caller: CallerDep, session: SessionDep,
                     request: Request, body: Annotated[Any, Body()] = None) -> dict:
    """Run a discovery action. Sync actions re-read what the account's login reaches and create
    or update the accounts found (a new Page, a renamed organization)."""
    a = _account(session, caller, account_id)
    adapter_cls = ADAPTERS.get(a.provider)
    offered = dict(getattr(adapter_cls, "actions", ()) or ()) if adapter_cls is not None else {}
    if action_id not in offered:
        raise ApiError(404, "not_found", f"{a.provider} accounts have no action {action_id!r}",
                       {"actions": sorted(offered)})
    if a.status == "disconnected":
        raise ApiError(409, "account_disconnected", "the account is disconnected; reconnect it first")
    settings = request.app.state.settings
    keeper: TokenKeeper = request.app.state.token_keeper
    session.expunge(a)
    adapter = keeper.adapter(a.provider)
    app = settings.oauth_app(a.provider)
    try:
        credentials = await keeper.credentials(a)
        result = await adapter.run_action(app, credentials, action_id)
        # A sync re-reads what the login reaches and stores it: new Pages or organizations
        # become accounts, known ones get fresh names and tokens.
        identities = (await adapter.discover(app, adapter.login_credentials(credentials))
                      if action_id.startswith("sync_") and app is not None else [])
    except AuthExpired as exc:
        raise ApiError(409, "account_reauth_required", exc.message) from None
    except ProviderError as exc:
        raise ApiError(502, "provider_unavailable", exc.message) from None
    if identities:
        cipher = CredentialCipher(settings.secret_key)
        now = datetime.now(timezone.utc)
        accounts = [oauth_flow.upsert_account(session, cipher, caller.workspace.id, a.provider, identity,
                                              a.connection_id, now) for identity in identities]
        session.commit()
        result["accounts"] = [account_json(x) for x in accounts]
    return {"ok": True, "result": result}
