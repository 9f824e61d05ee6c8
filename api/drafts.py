"""POST /v1/runs/{id}/publish: a draft run becomes scheduled posts, once.

Draft posts start no workflows. Publishing moves every time by one delta when `startAt` is given
(the earliest post lands on startAt; campaign posts drafted without a base time land on
startAt + their step offset), writes the posts and their jobs in one transaction guarded by the
run's mode (two concurrent publishes: one wins, the other answers with the result), then starts
the RunWorkflow. If Temporal cannot be reached the transaction is undone: nothing changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import Request
from sqlalchemy import update
from sqlmodel import Session, select

from api import scheduling
from api.deps import get_temporal
from api.errors import ApiError
from herald.schedule import ScheduleProblem
from herald.settings import Settings
from herald.timeparse import iso_ms, localize, parse_iso_datetime, resolve_timezone
from herald.workflow_inputs import start_run_workflow
from store.models import Job, Post, Run


def parse_start_at(body: Any, run_timezone: str) -> datetime | None:
    if body is None or body == {}:
        return None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "body must be a JSON object: {\"startAt\"?: date-time}")
    unknown = sorted(set(body) - {"startAt", "start_at"})
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown field(s): {', '.join(unknown)} (allowed: startAt)")
    value = body.get("startAt", body.get("start_at"))
    if value is None:
        return None
    problem = None
    if not isinstance(value, str):
        problem = "must be a date-time string"
    else:
        try:
            parsed = parse_iso_datetime(value)
            return parsed.astimezone(timezone.utc) if parsed.tzinfo else localize(parsed, resolve_timezone(run_timezone))
        except ValueError as exc:
            problem = str(exc)
    raise scheduling.problem_error([ScheduleProblem(path="startAt", message=problem)])


def _new_times(posts: list[Post], start_at: datetime | None) -> dict[str, datetime]:
    live = [p for p in posts if p.status == "draft"]
    if start_at is None:
        missing = [p for p in live if p.publish_at is None]
        if missing:
            raise scheduling.problem_error([
                ScheduleProblem(path="startAt", message=f"required: post {p.id} has no publish time") for p in missing])
        return {p.id: p.publish_at for p in live}  # type: ignore[misc]
    timed = [p.publish_at for p in live if p.publish_at is not None]
    delta = start_at - min(timed) if timed else timedelta(0)
    return {p.id: p.publish_at + delta if p.publish_at is not None else start_at + timedelta(seconds=p.offset_seconds or 0)
            for p in live}


def schedule_draft(session: Session, run: Run, posts: list[Post], start_at: datetime | None,
                   settings: Settings) -> tuple[Run, list[Post], bool]:
    """Schedule the draft's posts; the flag says whether this call did it (False: another won)."""
    times = _new_times(posts, start_at)
    now = datetime.now(timezone.utc)
    late = [(p, times[p.id]) for p in posts if p.id in times and times[p.id] < now - timedelta(seconds=settings.past_grace_seconds)]
    if late:
        raise scheduling.problem_error([ScheduleProblem(
            path="startAt", message=f"post {p.id} would publish at {iso_ms(at)}, in the past (now is {iso_ms(now)}); "
                                    "give a later startAt") for p, at in late])
    # The one guarded transition: only the request that flips mode draft -> scheduled goes on.
    flipped = session.exec(update(Run).where(Run.id == run.id, Run.mode == "draft")  # type: ignore[call-overload]
                           .values(mode="scheduled", status="created", published_at=now, updated_at=now))
    if flipped.rowcount != 1:
        session.rollback()
        session.refresh(run)
        return run, _posts(session, run), False
    # Replies whose parent is not being published (canceled in the draft) fail with the reason.
    going = set(times)
    changed = True
    while changed:
        changed = False
        for p in posts:
            if p.id in going and p.parent_post_id and p.parent_post_id not in going:
                going.discard(p.id)
                changed = True
    for p in posts:
        if p.status != "draft":
            continue
        p.updated_at = now
        if p.id in going:
            p.publish_at = times[p.id]
            p.status = "pending_approval" if p.requires_approval and p.review_state != "approved" else "scheduled"
            session.add(scheduling.publish_job(p))
        else:
            p.status, p.error_code = "failed", "parent_not_published"
            p.error = f"not published: the post it replies to ({p.parent_post_id}) was canceled in the draft"
        session.add(p)
    session.commit()
    session.refresh(run)
    return run, _posts(session, run), True


def _posts(session: Session, run: Run) -> list[Post]:
    return list(session.exec(select(Post).where(Post.run_id == run.id).order_by(Post.position)).all())


def _undo(session: Session, run: Run, snapshot: dict[str, tuple]) -> None:
    for job in session.exec(select(Job).where(Job.run_id == run.id)).all():
        session.delete(job)
    for p in _posts(session, run):
        if p.id in snapshot:
            p.status, p.publish_at, p.error_code, p.error = snapshot[p.id]
            session.add(p)
    run.mode, run.status, run.published_at = "draft", "draft", None
    session.add(run)
    session.commit()


async def start(request: Request, session: Session, run: Run, posts: list[Post], settings: Settings,
                snapshot: dict[str, tuple] | None = None) -> None:
    """Start the run's workflow (USE_EXISTING: a second start is harmless) and mark it started."""
    jobs = list(session.exec(select(Job).where(Job.run_id == run.id)).all())
    try:
        client = await get_temporal(request)
        await start_run_workflow(client, settings, run, posts, jobs)
    except Exception:
        if snapshot is not None:
            _undo(session, run, snapshot)
        raise ApiError(503, "temporal_unavailable", "the run could not be started because Temporal is unavailable; "
                       + ("it is still a draft" if snapshot is not None else "try again"),
                       headers={"Retry-After": "5"}) from None
    run.workflow_started = True
    run.updated_at = datetime.now(timezone.utc)
    session.add(run)
    session.commit()


def snapshot(posts: list[Post]) -> dict[str, tuple]:
    return {p.id: (p.status, p.publish_at, p.error_code, p.error) for p in posts if p.status == "draft"}
