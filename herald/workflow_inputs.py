"""Workflow inputs from stored rows, and starting a run's workflow: shared by the API (apply,
publish, retry) and the sweeper, so a run started late is started exactly as the API would."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from herald import temporal as t
from herald.contracts import TERMINAL_POST_STATUSES, PostWorkflowInput, RunWorkflowInput
from herald.settings import Settings
from store.models import Job, Post, Run


def post_input(run: Run, p: Post, settings: Settings, job_id: str | None, **extra: Any) -> PostWorkflowInput:
    approval = run.options.get("approval") or {}
    expires = float(approval.get("graceSeconds") or 0.0) if approval.get("onLate") == "expire" else None
    publish_at = extra.pop("publish_at", p.publish_at)
    assert publish_at is not None, "a post starts its workflow only with a publish time"
    fields: dict[str, Any] = dict(
        post_id=p.id, workspace_id=p.workspace_id, run_id=run.id, provider=p.provider,
        account_handle=p.account_handle, publish_at=publish_at, lead_seconds=settings.publish_lead_seconds,
        deadline_seconds=settings.publish_deadline_seconds, job_id=job_id,
        has_media=bool(p.media), publish_task_queue=settings.publish_task_queue,
        parent_post_id=p.parent_post_id,
        requires_approval=p.requires_approval and p.review_state != "approved",
        approval_expires_after_seconds=expires,
    )
    fields.update(extra)
    return PostWorkflowInput(**fields)


def post_inputs(run: Run, posts: list[Post], jobs: list[Job], settings: Settings) -> list[PostWorkflowInput]:
    """Workflow inputs for the posts still to publish (a post canceled in a draft stays out)."""
    job_by_post = {j.post_id: j.id for j in jobs}
    return [post_input(run, p, settings, job_by_post.get(p.id)) for p in posts if p.status not in TERMINAL_POST_STATUSES]


async def start_run_workflow(client: Client, settings: Settings, run: Run, posts: list[Post], jobs: list[Job]) -> None:
    from workflows.run import RunWorkflow

    await client.start_workflow(
        RunWorkflow.run,
        RunWorkflowInput(run_id=run.id, workspace_id=run.workspace_id, posts=post_inputs(run, posts, jobs, settings)),
        id=t.run_workflow_id(run.id),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=t.run_search_attributes(run.workspace_id, run.id),
    )
