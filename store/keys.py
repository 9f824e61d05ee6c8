"""API keys: the secret is shown once; only its sha256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timezone

from sqlmodel import Session, select

from herald.ids import new_id
from store.models import ApiKey, Workspace

SECRET_PREFIX = "hk_live_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def visible_prefix(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + 6]


def generate_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def ensure_workspace(session: Session, name: str) -> Workspace:
    ws = session.exec(select(Workspace).where(Workspace.name == name)).first()
    if ws is None:
        ws = Workspace(id=new_id("ws"), name=name)
        session.add(ws)
        session.flush()
    return ws


def create_key(session: Session, workspace_id: str, label: str | None, secret: str | None = None) -> tuple[ApiKey, str]:
    secret = secret or generate_secret()
    key = ApiKey(
        id=new_id("key"),
        workspace_id=workspace_id,
        prefix=visible_prefix(secret),
        secret_hash=hash_secret(secret),
        label=label,
    )
    session.add(key)
    session.flush()
    return key, secret


def find_key(session: Session, secret: str) -> ApiKey | None:
    """The active key for this secret, or None. The hash lookup is exact; the final
    compare_digest keeps the comparison constant-time regardless of the database."""
    digest = hash_secret(secret)
    key = session.exec(select(ApiKey).where(ApiKey.secret_hash == digest)).first()
    if key is None or key.revoked_at is not None:
        return None
    if not hmac.compare_digest(key.secret_hash, digest):
        return None
    return key


def ensure_bootstrap_key(session: Session, secret: str, workspace_name: str = "default") -> ApiKey:
    """HERALD_BOOTSTRAP_KEY: a workspace `default` holding exactly this key (idempotent)."""
    ws = ensure_workspace(session, workspace_name)
    existing = session.exec(select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret))).first()
    if existing is not None:
        if existing.workspace_id != ws.id:
            raise ValueError("HERALD_BOOTSTRAP_KEY already belongs to another workspace")
        if existing.revoked_at is not None:
            existing.revoked_at = None  # the operator asked for this key to work
            session.add(existing)
        return existing
    key, _ = create_key(session, ws.id, label="bootstrap", secret=secret)
    return key


def touch(session: Session, key: ApiKey) -> None:
    key.last_used_at = datetime.now(timezone.utc)
    session.add(key)
