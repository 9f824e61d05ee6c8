"""Connections and accounts. Discord (webhook URL) and Telegram (bot token + chat id) are manual
connections, verified with the network before anything is stored."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Body, Request
from sqlmodel import select

from api import account_lifecycle
from api.deps import CallerDep, SessionDep
from api.errors import ApiError, not_found
from api.routes.workspace import account_health
from api.serializers import account_json, connection_json
from herald.crypto import CredentialCipher
from herald.ids import new_id
from providers import ADAPTERS, UnknownProvider, get_adapter_class
from providers.base import AuthExpired, ProviderError, ProviderUnavailable, RateLimited
from providers.capabilities import COMMON_FIELDS, SETTINGS_FIELDS, capability
from store.models import Account, Connection

router = APIRouter(prefix="/v1", tags=["connections"])

MANUAL_PROVIDERS = ("discord", "telegram")
ALIASES = {"bot_token": "botToken", "chat_id": "chatId", "webhook_url": "webhookUrl", "callback_scheme": "callbackScheme"}


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
    """Start a connection. Telegram: botToken + chatId. Discord: webhookUrl. Verified at once."""
    params = _normalize(body)
    provider = params.get("provider")
    if not isinstance(provider, str) or not provider:
        raise ApiError(400, "invalid_request", "provider is required", {"supported": sorted(ADAPTERS)})
    try:
        adapter_cls = get_adapter_class(provider)
    except UnknownProvider as exc:
        raise ApiError(400, "provider_not_supported", exc.message, {"supported": sorted(ADAPTERS)}) from None
    if provider not in MANUAL_PROVIDERS:
        raise ApiError(400, "provider_not_supported", f"{provider} connections are not available yet")
    params = {k: (str(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in params.items()}
    settings = request.app.state.settings
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


@router.get("/connections/health")
def connections_health(caller: CallerDep, session: SessionDep, provider: Optional[str] = None) -> dict:
    """Connected accounts and those that need attention."""
    return {"ok": True, "health": account_health(session, caller.workspace.id, provider)}


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
def list_capabilities(caller: CallerDep, session: SessionDep, provider: Optional[str] = None) -> dict:
    """Publishing capabilities of every connected account."""
    q = select(Account).where(Account.workspace_id == caller.workspace.id, Account.status != "disconnected")
    if provider:
        q = q.where(Account.provider == provider)
    rows = session.exec(q.order_by(Account.created_at, Account.id)).all()
    return {"ok": True, "capabilities": [capability(a.provider, a.id, a.status) for a in rows if a.provider in ADAPTERS]}


@router.get("/accounts/{account_id}/capabilities")
def account_capabilities(account_id: str, caller: CallerDep, session: SessionDep) -> dict:
    """Publishing capabilities of one account."""
    a = _account(session, caller, account_id)
    return {"ok": True, "capabilities": [capability(a.provider, a.id, a.status)]}


@router.get("/accounts/{account_id}/settings")
def account_settings(account_id: str, caller: CallerDep, session: SessionDep) -> dict:
    """Provider settings fields a post to this account may carry."""
    a = _account(session, caller, account_id)
    fields = SETTINGS_FIELDS.get(a.provider, []) + COMMON_FIELDS
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
