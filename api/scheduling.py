"""From a schedule document to stored posts and started workflows.

validate: parse (herald.schedule) -> resolve accounts in the caller's workspace -> provider checks.
apply:    validate -> one transaction writing Run + Posts + Jobs (unique per idempotency key)
          -> start RunWorkflow (id run-<runId>, USE_EXISTING) -> mark the run started.
Bad input raises ApiError(422) before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from typing import Any, Callable

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from api.errors import ApiError
from herald import temporal as t
from herald.ids import new_id
from api.media_checks import media_problems
from herald.schedule import NormalizedPost, Schedule, ScheduleProblem, check_posts_against_providers, parse_schedule
from herald.settings import Settings
from herald.timeparse import iso_ms
from store.models import Account, Job, Post, Run


def problem_error(problems: list[ScheduleProblem]) -> ApiError:
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
        # Campaign posts take their account from the target: report it there (once).
        owner = post.path.split(".steps[")[0]
        path = f"{owner}.account"
        account = by_ref.get(post.account)
        if account is None or account.status == "disconnected":
            problems.append(ScheduleProblem(path=path, message=f"no connected account {post.account!r} in this workspace"))
            continue
        if account.status != "connected":
            problems.append(ScheduleProblem(path=path, message=f"account {account.handle!r} is {account.status}; reconnect it"))
            continue
        if post.provider and post.provider != account.provider:
            problems.append(ScheduleProblem(
                path=f"{owner}.provider",
                message=f"{post.provider!r} does not match account {account.handle!r} ({account.provider})"))
            continue
        post.provider = account.provider
        resolved[post.index] = account
    unique = {(p.path, p.message): p for p in problems}
    return resolved, list(unique.values())


def validate(session: Session, workspace_id: str, body: Any, settings: Settings, *,
             past_grace_seconds: float | None = None,
             adjust: Callable[[Schedule], None] | None = None) -> tuple[Schedule, dict[int, Account]]:
    """Parse, resolve accounts and check provider limits; ApiError(422) with every problem.
    `adjust` may amend the parsed posts before the provider checks (edits: a reply stays a reply)."""
    schedule, problems = parse_schedule(
        body, now=datetime.now(timezone.utc), max_posts=settings.max_posts_per_run,
        past_grace_seconds=settings.past_grace_seconds if past_grace_seconds is None else past_grace_seconds,
    )
    if schedule is None:
        raise problem_error(problems)
    if adjust is not None:
        adjust(schedule)
    # parse_schedule keeps the posts it could read, so one answer lists every problem:
    # structure, accounts and provider limits together.
    accounts, account_problems = resolve_accounts(session, workspace_id, schedule)
    problems += account_problems + check_posts_against_providers(schedule)
    problems += media_problems(session, settings, workspace_id, schedule)
    if problems:
        problems.sort(key=lambda p: _path_key(p.path))
        raise problem_error(problems)
    return schedule, accounts


def _path_key(path: str) -> tuple:
    # posts[10] sorts after posts[9]; campaigns[0].targets[10] after targets[9].
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"[\[\]]", path))


def requires_approval(schedule: Schedule, post: NormalizedPost) -> bool:
    return schedule.require_approval if post.require_approval is None else post.require_approval


def normalized_post_json(post: NormalizedPost, account: Account | None, schedule: Schedule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": post.index, "path": post.path, "account": account.handle if account else post.account,
        "accountId": account.id if account else None, "provider": post.provider, "name": post.name,
        "description": post.description,
        "publishAtUtc": iso_ms(post.publish_at) if post.publish_at else None,
        "assets": [m.model_dump(exclude_none=True) for m in post.media], "settings": post.settings,
        "postType": post.post_type, "requireApproval": requires_approval(schedule, post),
    }
    if schedule.source_model == "campaigns_v2":
        out |= {"campaignId": post.campaign_id, "stepId": post.step_id, "interactionType": post.interaction_type,
                "parentIndex": post.parent_index, "offsetSeconds": post.offset_seconds}
    return out


def validate_response(workspace_id: str, schedule: Schedule, accounts: dict[int, Account]) -> dict[str, Any]:
    posts = [normalized_post_json(p, accounts.get(p.index), schedule) for p in schedule.posts]
    out = {
        "ok": True, "tenantId": workspace_id, "timezone": schedule.timezone, "mode": schedule.mode,
        "sourceModel": schedule.source_model, "totalCampaigns": len(schedule.campaigns), "totalPosts": len(posts),
        "idempotencyKey": schedule.idempotency_key, "requireApproval": schedule.require_approval,
        "approval": {"onLate": schedule.approval.on_late, "graceSeconds": schedule.approval.grace_seconds},
        "posts": posts,
    }
    if schedule.campaigns:
        out["campaigns"] = campaigns_json(schedule, posts)
    return out


def campaigns_json(schedule: Schedule, posts: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The campaign graph; each step lists its concrete posts (validate: normalized, run: stored)."""
    out = []
    for c in schedule.campaigns:
        targets = []
        for t_ in c.targets:
            steps = [{
                "stepId": st.step_id, "name": st.name, "interactionType": st.interaction_type,
                "parentStepId": st.parent_step_id,
                "posts": [posts[i] for i in st.post_indexes] if posts is not None else st.post_indexes,
            } for st in t_.steps]
            targets.append({"account": t_.account, "provider": t_.provider,
                            "publishAtUtc": iso_ms(t_.publish_at) if t_.publish_at else None, "steps": steps})
        out.append({"id": c.id, "name": c.name, "targets": targets})
    return out


def request_hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def build_rows(workspace_id: str, schedule: Schedule, accounts: dict[int, Account], body_hash: str) -> tuple[Run, list[Post], list[Job]]:
    draft = schedule.mode == "draft"
    run = Run(
        id=new_id("run"), workspace_id=workspace_id, status="draft" if draft else "created", mode=schedule.mode,
        source_model=schedule.source_model, timezone=schedule.timezone,
        idempotency_key=schedule.idempotency_key, request_hash=body_hash, total_posts=len(schedule.posts),
        options={"requireApproval": schedule.require_approval,
                 "approval": {"onLate": schedule.approval.on_late, "graceSeconds": schedule.approval.grace_seconds}},
    )
    # Campaign ids the caller left out are generated here, so validate stays deterministic.
    campaign_ids = {c.index: c.id or new_id("cmp") for c in schedule.campaigns}
    post_ids = {p.index: new_id("post") for p in schedule.posts}
    posts, jobs = [], []
    for position, p in enumerate(schedule.posts):
        account = accounts[p.index]
        approval = requires_approval(schedule, p)
        post = Post(
            id=post_ids[p.index], workspace_id=workspace_id, run_id=run.id, position=position, account_id=account.id,
            account_handle=account.handle, provider=account.provider, name=p.name, description=p.description,
            publish_at=p.publish_at, timezone=schedule.timezone,
            media=[media_item(m) for m in p.media], settings=p.settings,
            status="draft" if draft else ("pending_approval" if approval else "scheduled"),
            campaign_id=campaign_ids.get(p.campaign_index) if p.campaign_index is not None else None,
            step_id=p.step_id, interaction_type=p.interaction_type, post_type=p.post_type,
            parent_post_id=post_ids[p.parent_index] if p.parent_index is not None else None,
            offset_seconds=p.offset_seconds, requires_approval=approval, review_state="pending" if approval else None,
        )
        posts.append(post)
        if not draft:
            jobs.append(publish_job(post))
    if schedule.campaigns:
        run.campaign = {"campaigns": [
            {"id": campaign_ids[c.index], "name": c.name, "targets": [
                {"account": t_.account, "provider": t_.provider,
                 "publishAt": iso_ms(t_.publish_at) if t_.publish_at else None,
                 "steps": [{"stepId": st.step_id, "name": st.name, "interactionType": st.interaction_type,
                            "parentStepId": st.parent_step_id, "postIds": [post_ids[i] for i in st.post_indexes]}
                           for st in t_.steps]}
                for t_ in c.targets]}
            for c in schedule.campaigns]}
    return run, posts, jobs


def publish_job(post: Post) -> Job:
    return Job(id=new_id("job"), workspace_id=post.workspace_id, kind="publish", run_id=post.run_id, post_id=post.id,
               provider=post.provider, account_handle=post.account_handle, workflow_id=t.post_workflow_id(post.id))


def media_item(m: Any) -> dict[str, Any]:
    item = {"url": m.url, "kind": m.kind, "mime": m.mime, "size": m.size, "filename": m.filename}
    if m.alt_text:
        item["altText"] = m.alt_text
    return {k: v for k, v in item.items() if v is not None}


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
