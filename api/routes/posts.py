"""Posts: list, detail, attempts, cancel, retry, reconcile."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Body, Query, Request
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import CallerDep, SessionDep, SettingsDep, TemporalDep, get_temporal
from api.errors import ApiError, not_found
from api.serializers import attempt_json, post_json
from herald import temporal as t
from herald.contracts import CancelRequest, PostWorkflowInput, ReconcileOutput, ReconcileWorkflowInput
from herald.ids import new_id
from herald.timeparse import parse_iso_datetime
from store.models import Job, Post, PostAttempt

router = APIRouter(prefix="/v1/posts", tags=["posts"])

MAX_PAGE = 500
CANCEL_FIND_SECONDS = 10.0


def _time_filter(name: str, value: Optional[str]) -> Optional[datetime]:
    if value is None:
        return None
    try:
        dt = parse_iso_datetime(value)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", f"{name}: {exc}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


@router.get("")
def list_posts(
    caller: CallerDep, session: SessionDep, settings: SettingsDep,
    runId: Optional[str] = None, run_id: Optional[str] = None,
    status: Optional[str] = None, account: Optional[str] = None, provider: Optional[str] = None,
    campaignId: Optional[str] = None, campaign_id: Optional[str] = None,
    from_: Annotated[Optional[str], Query(alias="from")] = None,
    publishFrom: Optional[str] = None, publish_from: Optional[str] = None,
    to: Optional[str] = None, publishTo: Optional[str] = None, publish_to: Optional[str] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Posts of the workspace, ordered by publish time then id (stable across pages)."""
    q = select(Post).where(Post.workspace_id == caller.workspace.id)
    if runId or run_id:
        q = q.where(Post.run_id == (runId or run_id))
    if status:
        q = q.where(Post.status.in_(status.split(",")))  # type: ignore[attr-defined]
    if account:
        q = q.where((Post.account_handle == account) | (Post.account_id == account))
    if provider:
        q = q.where(Post.provider == provider)
    if campaignId or campaign_id:
        q = q.where(func.false())  # campaign runs do not exist yet; a filter on one matches nothing
    lower = _time_filter("from", from_ or publishFrom or publish_from)
    upper = _time_filter("to", to or publishTo or publish_to)
    if lower:
        q = q.where(Post.publish_at >= lower)
    if upper:
        q = q.where(Post.publish_at <= upper)
    total = session.exec(select(func.count()).select_from(q.subquery())).one()
    rows = session.exec(q.order_by(Post.publish_at, Post.id).offset(offset).limit(limit)).all()
    return {"ok": True, "total": total, "limit": limit, "offset": offset,
            "posts": [post_json(p, settings) for p in rows]}


def load_post(session, caller, post_id: str) -> Post:  # noqa: ANN001
    post = session.get(Post, post_id)
    if post is None or post.workspace_id != caller.workspace.id:
        raise not_found("post", post_id)
    return post


def _attempts(session, post_id: str) -> list[PostAttempt]:  # noqa: ANN001
    return list(session.exec(select(PostAttempt).where(PostAttempt.post_id == post_id).order_by(PostAttempt.attempt_no)).all())


@router.get("/{post_id}")
def get_post(post_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """One post with its attempts."""
    post = load_post(session, caller, post_id)
    body = post_json(post, settings)
    body["attemptHistory"] = [attempt_json(a) for a in _attempts(session, post.id)]
    return {"ok": True, "post": body}


@router.get("/{post_id}/attempts")
def get_attempts(post_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """Every publish attempt of one post, oldest first."""
    post = load_post(session, caller, post_id)
    return {"ok": True, "post": post_json(post, settings), "attempts": [attempt_json(a) for a in _attempts(session, post.id)]}


@router.delete("/{post_id}")
async def cancel_post(post_id: str, request: Request, caller: CallerDep, session: SessionDep,
                      settings: SettingsDep) -> dict:
    """Cancel a draft or scheduled post. Refused (409) once publishing has started."""
    post = load_post(session, caller, post_id)
    if post.status == "canceled":
        return {"ok": True, "post": post_json(post, settings)}
    if post.status == "draft":
        post.status = "canceled"
        post.updated_at = datetime.now(timezone.utc)
        session.add(post)
        session.commit()
        return {"ok": True, "post": post_json(post, settings)}
    if post.status in ("published", "failed"):
        raise ApiError(409, "post_not_cancelable", f"post is already {post.status}")
    # Only a scheduled post has a workflow; drafts and finished posts never need Temporal.
    await _cancel_workflow(await get_temporal(request), session, post)
    session.refresh(post)
    if post.status != "canceled":
        raise ApiError(409, "post_not_cancelable", f"post is {post.status}; it can no longer be canceled")
    return {"ok": True, "post": post_json(post, settings)}


async def _cancel_workflow(temporal, session, post: Post) -> None:  # noqa: ANN001
    """Cancel through the post's workflow (its update validator decides). Right after apply the
    child workflow may not exist yet, so a missing workflow is retried briefly; if it still does
    not exist, the projection is marked canceled and the workflow, should it start later, sees
    that before doing anything (prepare_media reads the status)."""
    handle = temporal.get_workflow_handle(t.post_workflow_id(post.id))
    deadline = asyncio.get_running_loop().time() + CANCEL_FIND_SECONDS
    while True:
        try:
            await handle.execute_update("cancel", CancelRequest(), rpc_timeout=timedelta(seconds=30))
            return
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise ApiError(409, "post_not_cancelable", message) from None
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise ApiError(503, "temporal_unavailable", "could not reach the post's workflow; try again") from None
        session.refresh(post)
        if post.status != "scheduled":
            return  # the workflow finished meanwhile; the caller reads the outcome
        if asyncio.get_running_loop().time() > deadline:
            post.status = "canceled"
            post.updated_at = datetime.now(timezone.utc)
            session.add(post)
            session.commit()
            return
        await asyncio.sleep(0.2)


@router.post("/{post_id}/retry")
async def retry_post(post_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                     temporal: TemporalDep, body: Annotated[Any, Body()] = None) -> dict:
    """Publish a failed post again, now. An `outcome_unknown` failure needs {"force": true}."""
    post = load_post(session, caller, post_id)
    if post.status != "failed":
        raise ApiError(409, "post_not_retryable", f"only failed posts can be retried; this one is {post.status}")
    force = isinstance(body, dict) and body.get("force") is True
    if post.error_code == "outcome_unknown" and not force:
        raise ApiError(409, "outcome_unknown",
                       "the last attempt may have been published; check the destination, then retry with "
                       '{"force": true} if it is not there', {"postId": post.id})
    now = datetime.now(timezone.utc)
    job = Job(id=new_id("job"), workspace_id=post.workspace_id, kind="retry", run_id=post.run_id, post_id=post.id,
              provider=post.provider, account_handle=post.account_handle, workflow_id=t.post_workflow_id(post.id))
    inp = PostWorkflowInput(
        post_id=post.id, workspace_id=post.workspace_id, run_id=post.run_id, provider=post.provider,
        account_handle=post.account_handle, publish_at=now, lead_seconds=settings.publish_lead_seconds,
        deadline_seconds=settings.publish_deadline_seconds, job_id=job.id, is_retry=True,
        has_media=bool(post.media), publish_task_queue=settings.publish_task_queue,
    )
    try:
        await temporal.start_workflow(
            "PostWorkflow", inp, id=t.post_workflow_id(post.id), task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=t.post_search_attributes(inp),
        )
    except WorkflowAlreadyStartedError:
        raise ApiError(409, "post_not_retryable", "a publish workflow for this post is still running") from None
    except RPCError:
        raise ApiError(503, "temporal_unavailable", "could not start the retry; try again") from None
    post.status = "scheduled"
    post.publish_at = now
    post.error = post.error_code = None
    post.updated_at = now
    session.add(post)
    session.add(job)
    session.commit()
    return {"ok": True, "post": post_json(post, settings)}


@router.post("/{post_id}/reconcile")
async def reconcile_post(post_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                         temporal: TemporalDep) -> dict:
    """Ask the provider about this post and update the projection with what it says."""
    post = load_post(session, caller, post_id)
    if post.status not in ("published", "failed"):
        raise ApiError(409, "post_not_reconcilable", f"post is {post.status}; only published or failed posts can be reconciled")
    try:
        result: ReconcileOutput = await temporal.execute_workflow(
            "ReconcilePostWorkflow", ReconcileWorkflowInput(post_id=post.id, workspace_id=post.workspace_id),
            id=f"reconcile-{post.id}-{new_id('r')[2:]}", task_queue=settings.task_queue, result_type=ReconcileOutput,
            execution_timeout=timedelta(minutes=2),
        )
    except WorkflowFailureError as exc:
        raise ApiError(502, "reconcile_failed", f"the provider could not be asked: {exc.cause}") from None
    session.refresh(post)
    return {"ok": True, "post": post_json(post, settings),
            "reconcile": {"state": result.state, "providerPostId": result.provider_post_id, "detail": result.detail}}
