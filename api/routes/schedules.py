"""POST /v1/posts/validate and /v1/posts/apply: the schedule document in, a run out."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from api import scheduling
from api.deps import CallerDep, SessionDep, SettingsDep, get_temporal
from api.errors import ApiError
from api.rate_limits import limited
from api.serializers import post_json, run_json
from herald.workflow_inputs import start_run_workflow
from store.models import Job, Post, Run

router = APIRouter(prefix="/v1/posts", tags=["schedules"])


@router.post("/validate")
def validate_schedule(caller: CallerDep, session: SessionDep, settings: SettingsDep,
                      body: Annotated[Any, Body()] = None) -> dict:
    """Validate and normalize a posts[] or campaigns[] schedule without creating anything: the
    answer shows every concrete post (per-network captions, post types and offsets applied)."""
    schedule, accounts = scheduling.validate(session, caller.workspace.id, body, settings)
    return scheduling.validate_response(caller.workspace.id, schedule, accounts)


def _run_response(run: Run, posts: list[Post], settings, duplicate: bool) -> dict:  # noqa: ANN001
    return {
        "ok": True, "duplicate": duplicate, "mode": run.mode, "sourceModel": run.source_model,
        "run": run_json(run, settings), "posts": [post_json(p, settings) for p in posts],
    }


@router.post("/apply", status_code=201, dependencies=[limited("publishing")])
async def apply_schedule(request: Request, caller: CallerDep, session: SessionDep, settings: SettingsDep,
                         body: Annotated[Any, Body()] = None) -> JSONResponse:
    """Create a scheduled (or draft) run; idempotent per idempotencyKey."""
    ws = caller.workspace.id
    schedule, accounts = scheduling.validate(session, ws, body, settings)
    body_hash = scheduling.request_hash(body)
    if schedule.idempotency_key:
        existing = scheduling.find_run_by_key(session, ws, schedule.idempotency_key)
        if existing is not None:
            return await _duplicate(request, session, settings, existing, body_hash)
    run, posts, jobs = scheduling.build_rows(ws, schedule, accounts, body_hash)
    if scheduling.insert_run(session, run, posts, jobs) is None:
        existing = scheduling.find_run_by_key(session, ws, schedule.idempotency_key or "")
        if existing is None:  # pragma: no cover - an integrity error with no winner is a bug
            raise ApiError(409, "conflict", "the run could not be stored; retry the request")
        return await _duplicate(request, session, settings, existing, body_hash)
    if run.mode == "scheduled":
        if settings.fault_exit_after_run_write:
            # Chaos fault injection (chaos/api_crash.py): die between the commit and the start,
            # with no cleanup, so only the safety-net sweep can start this run.
            os._exit(70)
        try:
            client = await get_temporal(request)
            await start_run_workflow(client, settings, run, posts, jobs)
        except Exception:
            scheduling.delete_run(session, run.id)
            raise ApiError(503, "temporal_unavailable",
                           "the run could not be started because Temporal is unavailable; nothing was created",
                           headers={"Retry-After": "5"}) from None
        run.workflow_started = True
        run.updated_at = datetime.now(timezone.utc)
        session.add(run)
        session.commit()
    return JSONResponse(_run_response(run, posts, settings, duplicate=False), status_code=201)


async def _duplicate(request: Request, session, settings, run: Run, body_hash: str) -> JSONResponse:  # noqa: ANN001
    if run.request_hash and run.request_hash != body_hash:
        raise ApiError(409, "idempotency_key_reused",
                       "this idempotencyKey was already used for a different schedule",
                       {"runId": run.id})
    from sqlmodel import select

    posts = session.exec(select(Post).where(Post.run_id == run.id).order_by(Post.position)).all()
    if run.mode == "scheduled" and not run.workflow_started:
        # The first request stored the run but never started it (the API died in between):
        # the retry finishes the job. USE_EXISTING makes a double start harmless.
        jobs = session.exec(select(Job).where(Job.run_id == run.id)).all()
        client = await get_temporal(request)
        await start_run_workflow(client, settings, run, list(posts), list(jobs))
        run.workflow_started = True
        session.add(run)
        session.commit()
    return JSONResponse(_run_response(run, list(posts), settings, duplicate=True), status_code=200)
