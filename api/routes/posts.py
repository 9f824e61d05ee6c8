"""Posts: list, detail, attempts, cancel, retry, reconcile, delete from the network."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Optional

from fastapi import APIRouter, Body, Query, Request
from sqlalchemy import func
from sqlmodel import select
from temporalio.client import WorkflowFailureError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api import post_edit, reviews
from api.deps import CallerDep, SessionDep, SettingsDep, get_temporal
from api.errors import ApiError, not_found
from api.post_workflow import WorkflowMissing, still_waiting, update_post_workflow
from api.rate_limits import limited
from api.serializers import attempt_json, post_json
from herald import temporal as t
from herald import failures
from herald.contracts import (WAITING_POST_STATUSES, CancelRequest, DeleteRemoteInput, DeleteRemoteOutput,
                              ReconcileOutput, ReconcileWorkflowInput)
from herald.ids import new_id
from herald.timeparse import parse_iso_datetime
from herald.workflow_inputs import post_input
from providers import UnknownProvider, get_adapter_class
from store.models import Job, Post, PostAttempt, Run

router = APIRouter(prefix="/v1/posts", tags=["posts"])

MAX_PAGE = 500
# Beyond any real table, and inside a 64-bit integer on every database.
MAX_OFFSET = 1_000_000_000


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


@router.get("", dependencies=[limited("reads")])
def list_posts(
    caller: CallerDep, session: SessionDep, settings: SettingsDep,
    runId: Optional[str] = None, run_id: Optional[str] = None,
    status: Optional[str] = None, account: Optional[str] = None, provider: Optional[str] = None,
    campaignId: Optional[str] = None, campaign_id: Optional[str] = None,
    from_: Annotated[Optional[str], Query(alias="from")] = None,
    publishFrom: Optional[str] = None, publish_from: Optional[str] = None,
    to: Optional[str] = None, publishTo: Optional[str] = None, publish_to: Optional[str] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
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
        q = q.where(Post.campaign_id == (campaignId or campaign_id))
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


@router.get("/{post_id}", dependencies=[limited("reads")])
def get_post(post_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep) -> dict:
    """One post with its attempts."""
    post = load_post(session, caller, post_id)
    body = post_json(post, settings)
    body["attemptHistory"] = [attempt_json(a) for a in _attempts(session, post.id)]
    return {"ok": True, "post": body}


@router.get("/{post_id}/attempts", dependencies=[limited("reads")])
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
    if post.status not in WAITING_POST_STATUSES:
        raise ApiError(409, "post_not_cancelable", f"post is {post.status}; it can no longer be canceled")
    # Only a scheduled post has a workflow; drafts and finished posts never need Temporal.
    await _cancel_workflow(await get_temporal(request), session, post)
    session.refresh(post)
    if post.status != "canceled":
        raise ApiError(409, "post_not_cancelable", f"post is {post.status}; it can no longer be canceled")
    return {"ok": True, "post": post_json(post, settings)}


async def _cancel_workflow(temporal, session, post: Post) -> None:  # noqa: ANN001
    """Cancel through the post's workflow (its update validator decides). If the workflow does
    not exist yet (right after apply) the projection is marked canceled, and the workflow, should
    it start later, sees that before doing anything (its first store write returns `canceled`)."""
    try:
        await update_post_workflow(temporal, session, post, "cancel", CancelRequest(), refused_code="post_not_cancelable")
    except WorkflowMissing:
        if still_waiting(session, post):
            post.status = "canceled"
            post.updated_at = datetime.now(timezone.utc)
            session.add(post)
            session.commit()


@router.post("/{post_id}/approve")
async def approve_post(post_id: str, request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                       body: Annotated[Any, Body()] = None) -> dict:
    """Approve a post waiting for review ({"note"?, "reviewer"?}); it publishes at its time, or at
    once if that has passed. Approving twice is harmless."""
    reviewer, note = reviews.reviewer_and_note(caller, body)
    post = await reviews.review_post(request, session, load_post(session, caller, post_id), "approve", reviewer, note)
    return {"ok": True, "post": post_json(post, settings)}


@router.post("/{post_id}/reject")
async def reject_post(post_id: str, request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                      body: Annotated[Any, Body()] = None) -> dict:
    """Reject a post waiting for review: it is canceled with errorCode approval_rejected and the note."""
    reviewer, note = reviews.reviewer_and_note(caller, body)
    post = await reviews.review_post(request, session, load_post(session, caller, post_id), "reject", reviewer, note)
    return {"ok": True, "post": post_json(post, settings)}


@router.patch("/{post_id}")
async def edit_post(post_id: str, request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                    body: Annotated[Any, Body()] = None) -> dict:
    """Edit a post that has not started publishing: text/description, name/title, assets,
    media_link, settings, account, publishAt/publish_at, timezone, postType. Re-validated against
    the provider; a scheduled post's workflow applies the change (a moved time moves its timer).
    409 once publishing has started."""
    post = load_post(session, caller, post_id)
    post = await post_edit.edit(request, session, caller.workspace.id, post, body, settings)
    return {"ok": True, "post": post_json(post, settings)}


@router.post("/{post_id}/retry", dependencies=[limited("publishing")])
async def retry_post(post_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                     request: Request, body: Annotated[Any, Body()] = None) -> dict:
    """Publish a failed post again, now. An `outcome_unknown` failure needs {"force": true}."""
    post = load_post(session, caller, post_id)
    if post.status != "failed":
        raise ApiError(409, "post_not_retryable", f"only failed posts can be retried; this one is {post.status}")
    force = isinstance(body, dict) and body.get("force") is True
    if post.error_code == "outcome_unknown" and not force:
        raise ApiError(409, "outcome_unknown",
                       "the last attempt may have been published; check the destination, then retry with "
                       '{"force": true} if it is not there', {"postId": post.id})
    reply_to = None
    if post.parent_post_id:
        parent = session.get(Post, post.parent_post_id)
        if parent is None or parent.status != "published" or not parent.provider_post_id:
            raise ApiError(409, "parent_not_published",
                           f"this post replies to {post.parent_post_id}, which is "
                           f"{parent.status if parent else 'gone'}; publish (or retry) the parent first",
                           {"postId": post.id, "parentPostId": post.parent_post_id})
        reply_to = parent.provider_thread_id or parent.provider_post_id
    now = datetime.now(timezone.utc)
    job = Job(id=new_id("job"), workspace_id=post.workspace_id, kind="retry", run_id=post.run_id, post_id=post.id,
              provider=post.provider, account_handle=post.account_handle, workflow_id=t.post_workflow_id(post.id))
    run = session.get(Run, post.run_id)
    # A retry is an operator's explicit "publish now": no second approval, no waiting on the parent.
    inp = post_input(run, post, settings, job.id, publish_at=now, is_retry=True, parent_post_id=None,
                                reply_to=reply_to, requires_approval=False)
    try:
        await (await get_temporal(request)).start_workflow(
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
                         request: Request) -> dict:
    """Ask the provider about this post and update the projection with what it says."""
    post = load_post(session, caller, post_id)
    if post.status not in ("published", "failed"):
        raise ApiError(409, "post_not_reconcilable", f"post is {post.status}; only published or failed posts can be reconciled")
    try:
        # Temporal is reached only after the post was found: another workspace's id is a 404.
        result: ReconcileOutput = await (await get_temporal(request)).execute_workflow(
            "ReconcilePostWorkflow", ReconcileWorkflowInput(post_id=post.id, workspace_id=post.workspace_id),
            id=f"reconcile-{post.id}-{new_id('r')[2:]}", task_queue=settings.task_queue, result_type=ReconcileOutput,
            execution_timeout=timedelta(minutes=2),
        )
    except WorkflowFailureError as exc:
        raise ApiError(502, "reconcile_failed", f"the provider could not be asked: {exc.cause}") from None
    session.refresh(post)
    return {"ok": True, "post": post_json(post, settings),
            "reconcile": {"state": result.state, "providerPostId": result.provider_post_id, "detail": result.detail}}


@router.post("/{post_id}/delete")
async def delete_published_post(post_id: str, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                                request: Request) -> dict:
    """Delete a published post from its network (where the network allows it). To stop a post
    that has not been published yet, use DELETE /v1/posts/{postId} (cancel)."""
    post = load_post(session, caller, post_id)
    if post.status != "published":
        raise ApiError(409, "post_not_deletable",
                       f"post is {post.status}; only published posts can be deleted from the network"
                       + ("" if post.status == "deleted" else " (cancel a scheduled post with DELETE /v1/posts/{postId})"))
    try:
        adapter_cls = get_adapter_class(post.provider)
    except UnknownProvider as exc:
        raise ApiError(409, "delete_not_supported", exc.message) from None
    if not getattr(adapter_cls, "can_delete", True):
        raise ApiError(409, "delete_not_supported",
                       f"{post.provider} offers no way to delete a post through its API; delete it in the app",
                       {"provider": post.provider})
    try:
        result: DeleteRemoteOutput = await (await get_temporal(request)).execute_workflow(
            "DeleteRemotePostWorkflow", DeleteRemoteInput(post_id=post.id, workspace_id=post.workspace_id),
            id=f"delete-{post.id}", task_queue=settings.task_queue, result_type=DeleteRemoteOutput,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            execution_timeout=timedelta(minutes=2),
        )
    except WorkflowFailureError as exc:
        cause = exc.cause
        while getattr(cause, "cause", None) is not None and not isinstance(cause, ApplicationError):
            cause = cause.cause
        kind = getattr(cause, "type", None)
        message = getattr(cause, "message", None) or str(cause)
        if kind == failures.AUTH_EXPIRED:
            raise ApiError(409, "account_reauth_required", message) from None
        if kind in (failures.CONTENT_REJECTED, "NotDeletable"):
            raise ApiError(409, "delete_refused", message) from None
        raise ApiError(502, "provider_unavailable", f"the network could not delete it now: {message}") from None
    except RPCError:
        raise ApiError(503, "temporal_unavailable", "could not start the deletion; try again") from None
    session.refresh(post)
    return {"ok": True, "post": post_json(post, settings), "delete": {"state": result.state, "detail": result.detail}}
