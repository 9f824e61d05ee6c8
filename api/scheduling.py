"""From a schedule document to stored posts and started workflows.

validate: parse (herald.schedule) -> resolve accounts in the caller's workspace -> provider checks.
apply:    validate -> one transaction writing Run + Posts + Jobs (unique per idempotency key)
          -> start RunWorkflow (id run-<runId>, USE_EXISTING) -> mark the run started.
Bad input raises ApiError(422) before anything is written.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from api.errors import ApiError
from herald import temporal as t
from herald.contracts import PostWorkflowInput, RunWorkflowInput
from herald.ids import new_id
from herald.schedule import NormalizedPost, Schedule, ScheduleProblem, check_posts_against_providers, parse_schedule
from herald.settings import Settings
from herald.timeparse import iso_ms
from store.models import Account, Job, Post, Run


def _problem_error(problems: list[ScheduleProblem]) -> ApiError:
    shown = "; ".join(str(p) for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return ApiError(
        422, "validation_failed", f"{len(problems)} problem(s): {shown}{more}",
        {"problems": [{"path": p.path, "message": p.message} for p in problems]},
    )


def resolve_accounts(session: Session, workspace_id: str, schedule: Schedule) -> tuple[dict[int, Account], list[ScheduleProblem]]:
    """Map each post to a connected account of this workspace (by handle or id)."""
    refs = {p.account for p in schedule.posts}
    rows = session.exec(
        select(Account).where(Account.workspace_id == workspace_id,
                              (Account.handle.in_(refs)) | (Account.id.in_(refs)))  # type: ignore[attr-defined]
    ).all()
    by_ref = {a.handle: a for a in rows} | {a.id: a for a in rows}
    resolved: dict[int, Account] = {}
    problems: list[ScheduleProblem] = []
    for post in schedule.posts:
        path = f"posts[{post.index}].account"
        account = by_ref.get(post.account)
        if account is None or account.status == "disconnected":
            problems.append(ScheduleProblem(path=path, message=f"no connected account {post.account!r} in this workspace"))
            continue
        if account.status != "connected":
            problems.append(ScheduleProblem(path=path, message=f"account {account.handle!r} is {account.status}; reconnect it"))
            continue
        if post.provider and post.provider != account.provider:
            problems.append(ScheduleProblem(
                path=f"posts[{post.index}].provider",
                message=f"{post.provider!r} does not match account {account.handle!r} ({account.provider})"))
            continue
        post.provider = account.provider
        resolved[post.index] = account
    return resolved, problems


def validate(session: Session, workspace_id: str, body: Any, settings: Settings) -> tuple[Schedule, dict[int, Account]]:
    schedule, problems = parse_schedule(
        body, now=datetime.now(timezone.utc), max_posts=settings.max_posts_per_run,
        past_grace_seconds=settings.past_grace_seconds,
    )
    if schedule is None:
        raise _problem_error(problems)
    # parse_schedule keeps the posts it could read, so one answer lists every problem:
    # structure, accounts and provider limits together.
    accounts, account_problems = resolve_accounts(session, workspace_id, schedule)
    problems += account_problems + check_posts_against_providers(schedule)
    if problems:
        problems.sort(key=lambda p: _path_key(p.path))
        raise _problem_error(problems)
    return schedule, accounts


def _path_key(path: str) -> tuple:
    # posts[10] sorts after posts[9].
    head, _, rest = path.partition("]")
    idx = head.rpartition("[")[2]
    return (int(idx) if idx.isdigit() else -1, rest)


def normalized_post_json(post: NormalizedPost, account: Account | None) -> dict[str, Any]:
    return {
        "index": post.index, "account": account.handle if account else post.account,
        "accountId": account.id if account else None, "provider": post.provider, "name": post.name,
        "description": post.description,
        "publishAtUtc": iso_ms(post.publish_at) if post.publish_at else None,
        "assets": [m.model_dump(exclude_none=True) for m in post.media], "settings": post.settings,
    }


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def build_rows(workspace_id: str, schedule: Schedule, accounts: dict[int, Account], body_hash: str) -> tuple[Run, list[Post], list[Job]]:
    draft = schedule.mode == "draft"
    run = Run(
        id=new_id("run"), workspace_id=workspace_id, status="draft" if draft else "created", mode=schedule.mode,
        source_model=schedule.source_model, timezone=schedule.timezone,
        idempotency_key=schedule.idempotency_key, request_hash=body_hash, total_posts=len(schedule.posts),
    )
    posts, jobs = [], []
    for p in schedule.posts:
        account = accounts[p.index]
        post = Post(
            id=new_id("post"), workspace_id=workspace_id, run_id=run.id, position=p.index, account_id=account.id,
            account_handle=account.handle, provider=account.provider, name=p.name, description=p.description,
            publish_at=p.publish_at, timezone=schedule.timezone,
            media=[_media_item(m) for m in p.media], settings=p.settings,
            status="draft" if draft else "scheduled",
        )
        posts.append(post)
        if not draft:
            jobs.append(Job(id=new_id("job"), workspace_id=workspace_id, kind="publish", run_id=run.id, post_id=post.id,
                            provider=post.provider, account_handle=post.account_handle,
                            workflow_id=t.post_workflow_id(post.id)))
    return run, posts, jobs


def _media_item(m: Any) -> dict[str, Any]:
    item = {"url": m.url, "kind": m.kind, "mime": m.mime, "size": m.size, "filename": m.filename}
    if m.alt_text:
        item["altText"] = m.alt_text
    return {k: v for k, v in item.items() if v is not None}


def post_inputs(run: Run, posts: list[Post], jobs: list[Job], settings: Settings) -> list[PostWorkflowInput]:
    job_by_post = {j.post_id: j.id for j in jobs}
    return [
        PostWorkflowInput(
            post_id=p.id, workspace_id=p.workspace_id, run_id=run.id, provider=p.provider,
            account_handle=p.account_handle, publish_at=p.publish_at, lead_seconds=settings.publish_lead_seconds,
            deadline_seconds=settings.publish_deadline_seconds, job_id=job_by_post.get(p.id),
            has_media=bool(p.media), publish_task_queue=settings.publish_task_queue,
        )
        for p in posts
    ]


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


def find_run_by_key(session: Session, workspace_id: str, key: str) -> Run | None:
    return session.exec(select(Run).where(Run.workspace_id == workspace_id, Run.idempotency_key == key)).first()


def insert_run(session: Session, run: Run, posts: list[Post], jobs: list[Job]) -> Run | None:
    """Write the run in one transaction; None when a concurrent request with the same
    idempotency key won the race (the caller then answers with that run)."""
    try:
        session.add(run)
        session.flush()  # the run first: posts and jobs reference it
        session.add_all(posts)
        session.flush()
        session.add_all(jobs)
        session.commit()
    except IntegrityError:
        session.rollback()
        return None
    return run


def delete_run(session: Session, run_id: str) -> None:
    """Undo an insert whose workflow could not be started: a failed request changes nothing."""
    for model in (Job, Post):
        for row in session.exec(select(model).where(model.run_id == run_id)).all():
            session.delete(row)
        session.flush()
    run = session.get(Run, run_id)
    if run is not None:
        session.delete(run)
    session.commit()
