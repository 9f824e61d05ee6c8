"""API keys: validate, list, create (secret shown once), revoke."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import select

from api.deps import CallerDep, SessionDep
from api.errors import ApiError, not_found
from api.rate_limits import limited
from api.serializers import key_json
from store import keys as key_store
from store.models import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreateRequest(BaseModel):
    label: Optional[str] = Field(default=None, max_length=200)
    kind: Optional[str] = Field(default=None, max_length=40)


@router.post("/validate", dependencies=[limited("auth")])
def validate_key(caller: CallerDep) -> dict:
    """Check the bearer key and return its workspace."""
    ws = caller.workspace
    return {
        "ok": True,
        "tenant": {"id": ws.id, "name": ws.name, "plan": ws.plan},
        "apiKey": {"id": caller.key.id, "prefix": caller.key.prefix, "label": caller.key.label},
    }


@router.get("")
def list_keys(caller: CallerDep, session: SessionDep) -> dict:
    """List the workspace's keys (never their secrets)."""
    rows = session.exec(
        select(ApiKey).where(ApiKey.workspace_id == caller.workspace.id).order_by(ApiKey.created_at, ApiKey.id)
    ).all()
    return {"ok": True, "keys": [key_json(k) for k in rows]}


@router.post("", status_code=201)
def create_key(caller: CallerDep, session: SessionDep, body: Optional[KeyCreateRequest] = None) -> dict:
    """Create another key; its secret is in this response only."""
    body = body or KeyCreateRequest()
    key, secret = key_store.create_key(session, caller.workspace.id, body.label)
    if body.kind:
        key.kind = body.kind
    session.commit()
    return {"ok": True, "key": key_json(key, secret=secret)}


@router.delete("/{key_id}")
def revoke_key(key_id: str, caller: CallerDep, session: SessionDep) -> dict:
    """Revoke a key. A key cannot revoke itself."""
    key = session.get(ApiKey, key_id)
    if key is None or key.workspace_id != caller.workspace.id:
        raise not_found("API key", key_id)
    if key.id == caller.key.id:
        raise ApiError(409, "cannot_revoke_self", "a key cannot revoke itself; use another key of this workspace")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(timezone.utc)
        session.add(key)
        session.commit()
    return {"ok": True, "key": key_json(key)}
