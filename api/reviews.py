"""Approving and rejecting posts, one at a time or a whole run's: drafts in the store, waiting
posts through their workflow's `approve` / `reject` updates (whose validators decide)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fastapi import Request

from api.deps import get_temporal
from api.errors import ApiError
from api.post_workflow import WorkflowMissing, update_post_workflow
from herald.contracts import WAITING_POST_STATUSES, ReviewRequest
from store.models import Post


def reviewer_and_note(caller, body: Any) -> tuple[str, str | None]:  # noqa: ANN001
    """Who decides (a named reviewer, else the API key's label, else its id) and the note."""
    if body is not None and not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "body must be a JSON object: {\"note\"?, \"reviewer\"?}")
    body = body or {}
    unknown = sorted(set(body) - {"note", "reviewer"})
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(unknown)} (allowed: note, reviewer)")
    for name, limit in (("note", 2000), ("reviewer", 200)):
        value = body.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            raise ApiError(400, "invalid_request", f"{name} must be a string of at most {limit} characters")
    reviewer = body.get("reviewer") or caller.key.label or caller.key.id
    return f"{reviewer}", body.get("note")


async def review_post(request: Request, session, post: Post, decision: str, reviewer: str,  # noqa: ANN001
                      note: str | None) -> Post:
    """Approve or reject one post: drafts in the store, scheduled posts through their workflow's
    update (whose validator refuses a post that is publishing, published or canceled)."""
    if not post.requires_approval:
        raise ApiError(409, "approval_not_required", "post does not require approval", {"postId": post.id})
    if post.status == "draft":
        now = datetime.now(timezone.utc)
        post.review_state, post.reviewed_by, post.reviewed_at, post.review_note = (
            "approved" if decision == "approve" else "rejected", reviewer, now, note)
        if decision == "reject":
            post.status, post.error_code = "canceled", "approval_rejected"
            post.error = f"rejected by {reviewer}" + (f": {note}" if note else "")
        post.updated_at = now
        session.add(post)
        session.commit()
        return post
    if post.status not in WAITING_POST_STATUSES:
        verb = "approved" if decision == "approve" else "rejected"
        raise ApiError(409, "post_not_reviewable", f"post is {post.status}; it can no longer be {verb}", {"postId": post.id})
    try:
        await update_post_workflow(await get_temporal(request), session, post, decision,
                                   ReviewRequest(reviewer=reviewer, note=note), refused_code="post_not_reviewable")
    except WorkflowMissing:
        session.refresh(post)
        raise ApiError(409, "post_not_reviewable", f"post is {post.status}; its workflow is not running", {"postId": post.id}) from None
    session.refresh(post)
    return post
