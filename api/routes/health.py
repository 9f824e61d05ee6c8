"""GET /health: is this deployment able to publish right now?"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from herald.timeparse import iso_ms

router = APIRouter(tags=["status"])

# A poller counts as alive if it polled within this window (long polls last about a minute).
POLLER_FRESH_SECONDS = 90


async def _check_database(request: Request) -> dict:
    try:
        await asyncio.to_thread(request.app.state.db.ping)
        return {"ok": True}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"database unreachable ({type(exc).__name__})"}


def _overdue(request: Request) -> dict:
    """Posts due more than HERALD_SWEEP_OVERDUE_SECONDS ago that are still not done: the same
    rule as the safety-net sweep, which repairs what it can and leaves the rest to a person."""
    from sqlalchemy import func
    from sqlmodel import select

    from activities.sweeper import overdue_posts_query

    settings = request.app.state.settings
    now = datetime.now(timezone.utc)
    query = overdue_posts_query(now, settings.sweep_overdue_seconds).subquery()
    with request.app.state.db.session() as s:
        count, oldest = s.exec(select(func.count(), func.min(query.c.publish_at))).one()
    out: dict = {"ok": count == 0, "count": count, "thresholdSeconds": settings.sweep_overdue_seconds}
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=timezone.utc)
        out["oldestOverdueSeconds"] = round((now - oldest).total_seconds())
        out["error"] = f"{count} post(s) overdue by more than {settings.sweep_overdue_seconds:.0f} s"
    return out


async def _check_overdue(request: Request) -> dict:
    try:
        return await asyncio.to_thread(_overdue, request)
    except Exception as exc:  # noqa: BLE001 - the database check reports the cause
        return {"ok": False, "error": f"could not count overdue posts ({type(exc).__name__})"}


async def _check_temporal_and_workers(request: Request) -> tuple[dict, dict]:
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    from api.deps import get_temporal

    settings = request.app.state.settings
    try:
        client = await asyncio.wait_for(get_temporal(request), timeout=5)
    except Exception:  # noqa: BLE001
        return {"ok": False, "error": "Temporal unreachable"}, {"ok": False, "error": "unknown: Temporal unreachable"}
    queues = {}
    now = datetime.now(timezone.utc)
    checks = (
        ("workflow", settings.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        ("activity", settings.task_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        ("publish", settings.publish_task_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        ("media", settings.media_task_queue, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
    )
    try:
        for kind, queue, qtype in checks:
            resp = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(namespace=settings.temporal_namespace,
                                         task_queue=TaskQueue(name=queue), task_queue_type=qtype),
                timeout=timedelta(seconds=5),
            )
            ages = [(now - p.last_access_time.ToDatetime(tzinfo=timezone.utc)).total_seconds() for p in resp.pollers]
            fresh = [a for a in ages if a <= POLLER_FRESH_SECONDS]
            queues[kind] = {"taskQueue": queue, "pollers": len(fresh),
                            "lastPollAgeSeconds": round(min(ages), 1) if ages else None}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"Temporal call failed ({type(exc).__name__})"}, {"ok": False}
    workers_ok = all(q["pollers"] > 0 for q in queues.values())
    workers = {"ok": workers_ok, "queues": queues}
    if not workers_ok:
        idle = sorted({q["taskQueue"] for q in queues.values() if q["pollers"] == 0})
        workers["error"] = f"no worker is polling task queue(s) {', '.join(idle)}"
    return {"ok": True, "namespace": settings.temporal_namespace}, workers


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Service health (no auth): database, Temporal, whether a worker is really polling each task
    queue, and posts overdue past the sweep's threshold. 503 with the checks when one fails."""
    settings = request.app.state.settings
    db, (temporal, workers), overdue = await asyncio.gather(
        _check_database(request), _check_temporal_and_workers(request), _check_overdue(request))
    checks = {"db": db, "temporal": temporal, "workers": workers, "overdue": overdue}
    healthy = all(c["ok"] for c in checks.values())
    body = {
        "ok": True, "service": "herald-api", "status": "ok" if healthy else "degraded",
        "now": iso_ms(datetime.now(timezone.utc)), "publicBaseUrl": settings.api_base,
        "maxAssetBytes": settings.max_asset_bytes, "storage": settings.storage,
        **checks,
    }
    if healthy:
        return JSONResponse(body)
    failing = [name for name, c in checks.items() if not c["ok"]]
    # 503 lets a load balancer or uptime check act; the checks stay readable in details.
    return JSONResponse(
        {"ok": False, "code": "degraded", "message": f"unhealthy: {', '.join(failing)}", "details": body},
        status_code=503,
    )
