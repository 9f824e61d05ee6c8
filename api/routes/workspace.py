"""Workspace usage, workspace health and the jobs list."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Optional

from fastapi import APIRouter, Query
from sqlalchemy import func
from sqlmodel import select

from api.deps import CallerDep, SessionDep, SettingsDep
from api.rate_limits import limited
from api.routes.posts import MAX_OFFSET
from api.serializers import job_json
from store.models import Account, Job, Post

router = APIRouter(prefix="/v1", tags=["workspace"])


@router.get("/me/usage")
def usage(caller: CallerDep, session: SessionDep) -> dict:
    """Usage counters for the workspace (posts published in the last 30 days, accounts)."""
    ws = caller.workspace.id
    since = datetime.now(timezone.utc) - timedelta(days=30)
    published = session.exec(
        select(func.count()).select_from(Post).where(Post.workspace_id == ws, Post.status == "published",
                                                     Post.published_at >= since)
    ).one()
    scheduled = session.exec(
        select(func.count()).select_from(Post).where(Post.workspace_id == ws, Post.status == "scheduled")
    ).one()
    accounts = session.exec(
        select(func.count()).select_from(Account).where(Account.workspace_id == ws, Account.status != "disconnected")
    ).one()
    return {"ok": True, "usage": {"postsThisPeriod": published, "scheduledPosts": scheduled,
                                   "connectedAccounts": accounts, "periodDays": 30}}


def account_health(session, workspace_id: str, provider: str | None = None) -> dict:  # noqa: ANN001
    q = select(Account).where(Account.workspace_id == workspace_id, Account.status != "disconnected")
    if provider:
        q = q.where(Account.provider == provider)
    accounts = session.exec(q).all()
    failing = [a for a in accounts if a.status != "connected"]
    return {
        "connectedAccounts": len(accounts),
        "failingAccounts": len(failing),
        "accounts": [{"id": a.id, "handle": a.handle, "provider": a.provider, "status": a.status} for a in accounts],
    }


@router.get("/workspace/health")
def workspace_health(caller: CallerDep, session: SessionDep) -> dict:
    """Accounts that need attention and posts that are overdue or failed."""
    ws = caller.workspace.id
    health = account_health(session, ws)
    overdue_before = datetime.now(timezone.utc) - timedelta(minutes=5)
    health["overduePosts"] = session.exec(
        select(func.count()).select_from(Post).where(
            Post.workspace_id == ws, Post.status.in_(("scheduled", "publishing", "retry_pending")),  # type: ignore[union-attr]
            Post.publish_at < overdue_before)
    ).one()
    health["failedPosts"] = session.exec(
        select(func.count()).select_from(Post).where(Post.workspace_id == ws, Post.status == "failed")
    ).one()
    return {"ok": True, "health": health}


@router.get("/jobs", dependencies=[limited("reads")])
def list_jobs(
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    status: Optional[str] = None,
    provider: Optional[str] = None,
    account: Optional[str] = None,
    runId: Optional[str] = None,
    run_id: Optional[str] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """Background jobs (one per publish workflow execution), newest first."""
    q = select(Job).where(Job.workspace_id == caller.workspace.id)
    if status:
        q = q.where(Job.status == status)
    if provider:
        q = q.where(Job.provider == provider)
    if account:
        q = q.where(Job.account_handle == account)
    if runId or run_id:
        q = q.where(Job.run_id == (runId or run_id))
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(Job.created_at.desc(), Job.id.desc()).offset(offset).limit(limit)).all()  # type: ignore[attr-defined]
    return {"ok": True, "jobs": [job_json(j, settings) for j in rows], "total": total, "limit": limit, "offset": offset}
