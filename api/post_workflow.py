"""Talking to a post's workflow from the API: one place for updates (cancel, edit, approve,
reject), their refusals (409 with the validator's reason) and Temporal outages (503).

Right after apply or a draft's publish, the child workflow may not exist yet (the RunWorkflow
starts it): a missing workflow is retried for a few seconds before giving up.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from sqlmodel import Session

from api.errors import ApiError
from herald import temporal as t
from herald.contracts import WAITING_POST_STATUSES
from store.models import Post

FIND_SECONDS = 10.0


class WorkflowMissing(Exception):
    """The post's workflow did not appear within FIND_SECONDS (or has already closed)."""


def still_waiting(session: Session, post: Post) -> bool:
    """Re-read the post: is it still waiting to publish?"""
    session.refresh(post)
    return post.status in WAITING_POST_STATUSES


async def update_post_workflow(temporal: Client, session: Session, post: Post, update: str, arg: Any, *,
                               refused_code: str, result_type: type | None = None) -> Any:
    """Run `update` on the post's workflow; its validator's refusal becomes a 409 `refused_code`.
    While the workflow is missing the store is re-read: once the post is no longer waiting to
    publish, a missing workflow means a finished one and WorkflowMissing is raised at once."""
    post_id = post.id
    handle = temporal.get_workflow_handle(t.post_workflow_id(post_id))
    deadline = asyncio.get_running_loop().time() + FIND_SECONDS
    while True:
        try:
            return await handle.execute_update(update, arg, result_type=result_type, rpc_timeout=timedelta(seconds=30))
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise ApiError(409, refused_code, message, {"postId": post_id}) from None
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise ApiError(503, "temporal_unavailable", "could not reach the post's workflow; try again",
                               headers={"Retry-After": "5"}) from None
        if not still_waiting(session, post) or asyncio.get_running_loop().time() > deadline:
            raise WorkflowMissing(post_id)
        await asyncio.sleep(0.2)
