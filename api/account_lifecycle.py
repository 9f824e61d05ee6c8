"""Ending an account's life: disconnecting it (credentials erased, the connection marked) and
forgetting a person's data at their request (Meta's data-deletion callback). One place for both,
so the API route and the webhooks erase the same things."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlmodel import Session

from herald.crypto import CredentialCipher
from store.models import Account, Connection


def disconnect(session: Session, account: Account, secret_key: str) -> Connection | None:
    """Erase the credentials and mark the account and its connection disconnected (not committed).
    Its scheduled posts then fail clearly (`account_disconnected`)."""
    now = datetime.now(timezone.utc)
    account.status = "disconnected"
    account.credentials_encrypted = CredentialCipher(secret_key).encrypt({})
    account.updated_at = now
    session.add(account)
    conn = session.get(Connection, account.connection_id) if account.connection_id else None
    if conn is not None:
        conn.status = "disconnected"
        conn.updated_at = now
        session.add(conn)
    return conn


def forget_person(session: Session, account: Account, secret_key: str) -> None:
    """Disconnect, then remove what identifies the person on the network: display name, external
    id, profile metadata. The handle becomes an opaque placeholder (it is unique per workspace and
    posts keep referring to the account row)."""
    disconnect(session, account, secret_key)
    account.display_name = None
    account.external_id = None
    account.meta = {"forgotten": True}
    account.handle = f"{account.provider}:forgotten-{account.id}"
    session.add(account)
