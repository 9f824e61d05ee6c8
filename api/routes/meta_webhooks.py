"""Meta's deauthorize and data-deletion callbacks (Facebook, Instagram and Threads apps).

Meta POSTs a form field ``signed_request`` = ``<base64url HMAC-SHA256 signature>.<base64url JSON
payload>``, signed with the app secret; the payload carries ``user_id`` (app-scoped),
``algorithm`` ("HMAC-SHA256") and ``issued_at``
(https://developers.facebook.com/docs/development/create-an-app/app-dashboard/data-deletion-callback).

- deauthorize: the person removed the app; their accounts are disconnected (credentials erased).
- data-deletion: the person asks for their data to be deleted; their accounts are disconnected and
  what identifies them (name, ids, profile metadata) is erased. The answer is
  ``{"url", "confirmation_code"}``: a status page the person can open, and its code.

A person's accounts are those of a Meta network whose ``metadata.metaUserId`` (the user who
connected them) or ``externalId`` is the payload's ``user_id``. No API key: the signature is the
authentication, and a request without a valid one changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import datetime, timezone
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlmodel import Session, select

from api import account_lifecycle
from api.deps import SessionDep, SettingsDep
from api.errors import ApiError
from herald.settings import Settings
from store.models import Account, DataDeletionRequest

router = APIRouter(prefix="/webhooks/meta", tags=["webhooks"])

META_PROVIDERS = ("facebook", "instagram", "instagram_business", "threads")
MAX_SIGNED_REQUEST = 8192


def _b64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def parse_signed_request(signed_request: str, app_secrets: list[str]) -> dict:
    """The verified payload; ApiError(400) for anything malformed or signed with another secret."""
    bad = ApiError(400, "invalid_signed_request", "signed_request is malformed or its signature is invalid")
    if not signed_request or len(signed_request) > MAX_SIGNED_REQUEST or signed_request.count(".") != 1:
        raise bad
    encoded_sig, payload = signed_request.split(".", 1)
    try:
        signature = _b64url(encoded_sig)
        data = json.loads(_b64url(payload))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not isinstance(data, dict) or str(data.get("algorithm", "")).upper() != "HMAC-SHA256":
        raise bad
    # The signature is over the base64url payload text exactly as sent.
    if not any(hmac.compare_digest(hmac.new(s.encode(), payload.encode(), hashlib.sha256).digest(), signature)
               for s in app_secrets):
        raise bad
    if not isinstance(data.get("user_id"), (str, int)) or not str(data["user_id"]).strip():
        raise bad
    return data


async def _payload(request: Request, settings: Settings) -> dict:
    app_secrets = [s.strip() for s in (settings.meta_app_secret or "").split(",") if s.strip()]
    if not app_secrets:
        raise ApiError(400, "not_configured", "Meta callbacks need HERALD_META_APP_SECRET")
    try:
        form = await request.form()
    except Exception:  # noqa: BLE001 - not a form body
        form = {}
    return parse_signed_request(str(form.get("signed_request") or ""), app_secrets)


def _person_accounts(session: Session, user_id: str) -> list[Account]:
    rows = session.exec(select(Account).where(Account.provider.in_(META_PROVIDERS))).all()  # type: ignore[attr-defined]
    return [a for a in rows if a.external_id == user_id or str((a.meta or {}).get("metaUserId", "")) == user_id]


def _user_hash(user_id: str) -> str:
    return hashlib.sha256(f"meta:{user_id}".encode()).hexdigest()


@router.post("/deauthorize")
async def deauthorize(request: Request, session: SessionDep, settings: SettingsDep) -> dict:
    """The person removed Herald's Meta app: disconnect their accounts (credentials erased)."""
    user_id = str((await _payload(request, settings))["user_id"])
    accounts = _person_accounts(session, user_id)
    for account in accounts:
        if account.status != "disconnected":
            account_lifecycle.disconnect(session, account, settings.secret_key)
    session.commit()
    return {"ok": True, "disconnected": len(accounts)}


@router.post("/data-deletion")
async def data_deletion(request: Request, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """The person asks for their data to be deleted: done at once; answers the status URL and
    confirmation code Meta shows them."""
    user_id = str((await _payload(request, settings))["user_id"])
    accounts = _person_accounts(session, user_id)
    for account in accounts:
        account_lifecycle.forget_person(session, account, settings.secret_key)
    now = datetime.now(timezone.utc)
    code = "del_" + secrets.token_hex(10)
    session.add(DataDeletionRequest(id=code, network="meta", user_id_hash=_user_hash(user_id), status="completed",
                                    accounts=len(accounts), created_at=now, completed_at=now))
    session.commit()
    return JSONResponse({"url": f"{settings.api_base}/webhooks/meta/data-deletion/{code}", "confirmation_code": code})


@router.get("/data-deletion/{code}")
def data_deletion_status(code: str, request: Request, session: SessionDep):  # noqa: ANN201
    """The status page of a deletion request (HTML for people; JSON with Accept: application/json)."""
    row = session.get(DataDeletionRequest, code) if len(code) <= 40 else None
    if row is None:
        raise ApiError(404, "not_found", "no deletion request with this confirmation code")
    done = row.completed_at.strftime("%Y-%m-%d %H:%M UTC") if row.completed_at else None
    message = (f"Your data was deleted on {done}: {row.accounts} connected account(s) were disconnected and "
               "their credentials, names and profile details erased." if row.status == "completed"
               else "Your request was received and is being processed.")
    if "application/json" in request.headers.get("accept", ""):
        return {"ok": True, "confirmationCode": row.id, "status": row.status, "accounts": row.accounts,
                "completedAt": row.completed_at.isoformat() if row.completed_at else None, "message": message}
    return HTMLResponse(f"<!doctype html><title>Data deletion {escape(row.id)}</title>"
                        f"<h1>Data deletion request {escape(row.id)}</h1><p>Status: {escape(row.status)}</p>"
                        f"<p>{escape(message)}</p>")
