"""Runs: detail, status summary, table."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import select

from api.deps import CallerDep, SessionDep, SettingsDep
from api.errors import not_found
from api.serializers import post_json, run_json, ts
from store.models import Post, Run

router = APIRouter(prefix="/v1/runs", tags=["runs"])


def _load(session, caller, run_id: str) -> tuple[Run, list[Post]]:  # noqa: ANN001
    run = session.get(Run, run_id)
    if run is None or run.workspace_id != caller.workspace.id:
        raise not_found("run", run_id)
    posts = session.exec(select(Post).where(Post.run_id == run.id).order_by(Post.position)).all()
    return run, list(posts)


def summary(posts: list[Post]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for p in posts:
        counts[p.status] = counts.get(p.status, 0) + 1
    return counts


@router.get("/{run_id}")
def get_run(run_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """A run with its posts and a summary by status."""
    run, posts = _load(session, caller, run_id)
    return {"ok": True, "duplicate": False, "mode": run.mode, "sourceModel": run.source_model,
            "run": run_json(run, settings), "posts": [post_json(p, settings) for p in posts], "summary": summary(posts)}


@router.get("/{run_id}/status")
def run_status(run_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """Run status and counts of its posts by status."""
    run, posts = _load(session, caller, run_id)
    return {"ok": True, "run": run_json(run, settings),
            "posts": [{"id": p.id, "status": p.status, "account": p.account_handle, "provider": p.provider,
                       "publishAtUtc": ts(p.publish_at), "error": p.error} for p in posts],
            "summary": summary(posts)}


@router.get("/{run_id}/table")
def run_table(run_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """A compact table of the run, sorted by publish time."""
    run, posts = _load(session, caller, run_id)
    posts.sort(key=lambda p: (p.publish_at is None, p.publish_at, p.position))
    rows = [{"time": ts(p.publish_at), "account": p.account_handle, "provider": p.provider, "status": p.status,
             "postId": p.id, "text": (p.description or "")[:80], "providerUrl": p.provider_url, "error": p.error}
            for p in posts]
    return {"ok": True, "run": run_json(run, settings), "rows": rows}
