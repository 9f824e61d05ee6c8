"""Request dependencies: the database session, the caller's workspace, the Temporal client."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Iterator

from fastapi import Depends, Header, Request
from sqlmodel import Session
from temporalio.client import Client

from api.errors import ApiError
from herald.settings import Settings
from store import keys as key_store
from store.models import ApiKey, Workspace

# Writing last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.db.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[Session, Depends(get_session)]


@dataclass
class Caller:
    workspace: Workspace
    key: ApiKey


def _secret_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None


def get_caller(
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    secret = _secret_from_headers(authorization, x_api_key)
    if not secret:
        raise ApiError(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    key = key_store.find_key(session, secret)
    if key is None:
        raise ApiError(401, "invalid_api_key", "the API key is invalid or revoked")
    workspace = session.get(Workspace, key.workspace_id)
    if workspace is None:
        raise ApiError(401, "invalid_api_key", "the API key is invalid or revoked")
    now = datetime.now(timezone.utc)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key_store.touch(session, key)
        session.commit()
    return Caller(workspace=workspace, key=key)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_temporal(request: Request) -> Client:
    """One client per process, connected lazily so the API starts even while Temporal is down."""
    state = request.app.state
    if state.temporal is None:
        async with state.temporal_lock:
            if state.temporal is None:
                from herald import temporal as t

                try:
                    state.temporal = await t.connect(state.settings.temporal_target, state.settings.temporal_namespace,
                                                     state.settings.temporal_grpc_compression)
                except Exception:  # noqa: BLE001 - any connect failure means the same to a caller
                    raise ApiError(503, "temporal_unavailable", "the Temporal server is unreachable; try again shortly",
                                   headers={"Retry-After": "5"}) from None
    return state.temporal


TemporalDep = Annotated[Client, Depends(get_temporal)]
