"""Runs: detail, status summary, table, campaign graph, publishing a draft, reviewing a whole run."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from sqlmodel import select

from api import drafts, reviews
from api.deps import CallerDep, SessionDep, SettingsDep
from api.errors import ApiError, not_found
from api.rate_limits import limited
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


@router.get("/{run_id}", dependencies=[limited("reads")])
def get_run(run_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """A run with its posts and a summary by status."""
    run, posts = _load(session, caller, run_id)
    return {"ok": True, "duplicate": False, "mode": run.mode, "sourceModel": run.source_model,
            "run": run_json(run, settings), "posts": [post_json(p, settings) for p in posts], "summary": summary(posts)}


@router.get("/{run_id}/status", dependencies=[limited("reads")])
def run_status(run_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """Run status and counts of its posts by status."""
    run, posts = _load(session, caller, run_id)
    return {"ok": True, "run": run_json(run, settings),
            "posts": [{"id": p.id, "status": p.status, "account": p.account_handle, "provider": p.provider,
                       "publishAtUtc": ts(p.publish_at), "error": p.error} for p in posts],
            "summary": summary(posts)}


@router.get("/{run_id}/table", dependencies=[limited("reads")])
def run_table(run_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """A compact table of the run, sorted by publish time."""
    run, posts = _load(session, caller, run_id)
    posts.sort(key=lambda p: (p.publish_at is None, p.publish_at, p.position))
    rows = [{"time": ts(p.publish_at), "account": p.account_handle, "provider": p.provider, "status": p.status,
             "postId": p.id, "text": (p.description or "")[:80], "providerUrl": p.provider_url, "error": p.error}
            for p in posts]
    return {"ok": True, "run": run_json(run, settings), "rows": rows}


@router.get("/{run_id}/campaign", dependencies=[limited("reads")])
def run_campaign(run_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """The campaign graph the run was created from, each step with its posts as stored now."""
    run, posts = _load(session, caller, run_id)
    if not run.campaign:
        raise ApiError(409, "not_a_campaign_run", "this run was created from a flat posts[] schedule; it has no campaign graph",
                       {"runId": run.id, "sourceModel": run.source_model})
    by_id = {p.id: post_json(p, settings) for p in posts}
    campaigns = []
    for c in run.campaign["campaigns"]:
        targets = [{**{k: v for k, v in t_.items() if k != "steps"},
                    "steps": [{**{k: v for k, v in st.items() if k != "postIds"},
                               "posts": [by_id[i] for i in st["postIds"] if i in by_id]} for st in t_["steps"]]}
                   for t_ in c["targets"]]
        campaigns.append({"id": c["id"], "name": c["name"], "targets": targets})
    return {"ok": True, "duplicate": False, "mode": run.mode, "sourceModel": run.source_model,
            "run": run_json(run, settings), "campaigns": campaigns, "posts": list(by_id.values()), "summary": summary(posts)}


@router.post("/{run_id}/publish", dependencies=[limited("publishing")])
async def publish_run(run_id: str, request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                      body: Annotated[Any, Body()] = None) -> dict:
    """Turn a draft run into scheduled posts ({"startAt"?}: every time shifts by the same delta so
    the earliest post starts then). Publishing an already published run changes nothing."""
    run, posts = _load(session, caller, run_id)
    start_at = drafts.parse_start_at(body, run.timezone)
    snapshot = None
    if run.mode == "draft":
        before = drafts.snapshot(posts)
        run, posts, flipped = drafts.schedule_draft(session, run, posts, start_at, settings)
        snapshot = before if flipped else None
    duplicate = snapshot is None
    if not run.workflow_started:
        # Only the request that scheduled the draft may undo it; a retry after a crash just starts.
        await drafts.start(request, session, run, posts, settings, snapshot)
    return {"ok": True, "duplicate": duplicate, "mode": run.mode, "sourceModel": run.source_model,
            "run": run_json(run, settings), "posts": [post_json(p, settings) for p in posts], "summary": summary(posts)}


async def _review_run(run_id: str, decision: str, request: Request, caller, session, settings, body: Any) -> dict:  # noqa: ANN001
    reviewer, note = reviews.reviewer_and_note(caller, body)
    run, posts = _load(session, caller, run_id)
    waiting = [p for p in posts if p.requires_approval and p.review_state == "pending"
               and p.status in ("draft", "pending_approval")]
    results = []
    for post in waiting:
        try:
            post = await reviews.review_post(request, session, post, decision, reviewer, note)
            results.append({"postId": post.id, "ok": True, "status": post.status})
        except ApiError as exc:
            if exc.status >= 500:
                raise
            results.append({"postId": post.id, "ok": False, "code": exc.code, "message": exc.message})
    _, posts = _load(session, caller, run_id)
    return {"ok": True, "run": run_json(run, settings), "results": results, "summary": summary(posts),
            "posts": [post_json(p, settings) for p in posts]}


@router.post("/{run_id}/approve")
async def approve_run(run_id: str, request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                      body: Annotated[Any, Body()] = None) -> dict:
    """Approve every post of the run that waits for review ({"note"?, "reviewer"?}); `results` says
    what happened to each."""
    return await _review_run(run_id, "approve", request, caller, session, settings, body)


@router.post("/{run_id}/reject")
async def reject_run(run_id: str, request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                     body: Annotated[Any, Body()] = None) -> dict:
    """Reject every post of the run that waits for review."""
    return await _review_run(run_id, "reject", request, caller, session, settings, body)
