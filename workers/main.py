"""The worker process: which workflows and activities run on which task queue.

Two task queues: `HERALD_TASK_QUEUE` carries the workflows and every activity but one;
`HERALD_PUBLISH_TASK_QUEUE` carries the publish call. `herald worker --role` picks what a process
serves (`all` by default; `herald dev` runs a `workflows` and a `publisher` process). Sync
activities (the database projection) run on a thread pool; async activities (provider calls)
share one event loop and one httpx client, so a thousand posts due at the same second are a
thousand coroutines, not a thousand threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import logging
import signal
import warnings
from datetime import timedelta

import httpx
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
)
from temporalio.service import RPCError
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from activities.deleting import DeleteActivities
from activities.media import MediaActivities
from activities.projection import ProjectionActivities
from activities.publishing import PublishActivities
from activities.sweeper import SweepActivities
from herald import temporal as t
from herald.crypto import CredentialCipher
from herald.settings import Settings
from providers.base import GatedAsyncClient
from store.db import Database
from workflows.delete import DeleteRemotePostWorkflow
from workflows.media import AssetWorkflow, RenditionWorkflow
from workflows.post import PostWorkflow
from workflows.reconcile import ReconcilePostWorkflow
from workflows.run import RunWorkflow
from workflows.sweep import SweepWorkflow

log = logging.getLogger("herald.worker")

WORKFLOWS = [RunWorkflow, PostWorkflow, ReconcilePostWorkflow, SweepWorkflow, AssetWorkflow, RenditionWorkflow,
             DeleteRemotePostWorkflow]


def provider_http_client(settings: Settings) -> httpx.AsyncClient:
    return GatedAsyncClient(
        timeout=httpx.Timeout(settings.provider_timeout_seconds, connect=10.0),
        max_in_flight=settings.provider_max_connections,
        headers={"User-Agent": "Herald/0.1"},
    )


ROLES = ("all", "workflows", "publisher", "media")


def build_workers(
    client: Client,
    settings: Settings,
    db: Database,
    http: httpx.AsyncClient,
    executor: concurrent.futures.ThreadPoolExecutor,
    role: str = "all",
) -> list[Worker]:
    """`workflows`: every workflow plus the projection, prepare and reconcile activities, and
    (unless a separate `media` process is run) the media queue too.
    `publisher`: only the publish activity, on its own task queue, so the process that makes
    the calls at the instant of a burst is not also replaying workflows and writing the store.
    `media`: only the media activities (download, probe, transcode: CPU-bound), on their queue.
    `all`: everything in one process (small deployments, tests)."""
    if role not in ROLES:
        raise ValueError(f"unknown worker role {role!r} (choose from {', '.join(ROLES)})")
    projection = ProjectionActivities(db)
    publishing = PublishActivities(settings, db, http, CredentialCipher(settings.secret_key),
                                   client_factory=lambda: provider_http_client(settings))
    media = MediaActivities(settings, db, client)
    workers = []
    with warnings.catch_warnings():
        # Sync activities (short DB writes) share a small thread pool on purpose; the large
        # concurrency cap is for async publish calls holding until their second.
        warnings.filterwarnings("ignore", message="Worker max_concurrent_activities")
        if role in ("all", "workflows"):
            workers.append(Worker(
                client,
                task_queue=settings.task_queue,
                workflows=WORKFLOWS,
                activities=[
                    projection.record_post_state,
                    projection.record_run_state,
                    projection.apply_post_edit,
                    media.prepare_media,
                    media.mark_asset_failed,
                    publishing.reconcile,
                    DeleteActivities(settings, db, http).delete_remote,
                    SweepActivities(settings, db, client, http).sweep,
                ],
                activity_executor=executor,
                max_cached_workflows=settings.max_cached_workflows,
                # A busy worker must keep its cached workflows: when a sticky task waits longer
                # than this, the server hands it to any worker and the history is replayed.
                sticky_queue_schedule_to_start_timeout=timedelta(seconds=60),
            ))
        if role in ("all", "publisher"):
            workers.append(Worker(
                client,
                task_queue=settings.publish_task_queue,
                activities=[publishing.publish],
                activity_executor=executor,
                max_concurrent_activities=settings.max_concurrent_activities,
                # Many pollers: a burst's publish tasks must all reach this process before the
                # instant, and each poll hands over one task.
                activity_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=settings.publish_pollers),
            ))
        if role in ("all", "workflows", "media"):
            workers.append(Worker(
                client,
                task_queue=settings.media_task_queue,
                activities=[media.fetch_asset_source, media.process_asset, media.make_rendition],
                activity_executor=executor,
                # Transcodes are CPU-bound: a few at a time per process.
                max_concurrent_activities=settings.media_max_concurrent,
            ))
    return workers


SWEEP_SCHEDULE_ID = "herald-sweep"


async def ensure_sweep_schedule(client: Client, settings: Settings) -> None:
    """Create (or bring up to date) the Schedule that runs the safety-net sweep. Overlapping
    passes are skipped. HERALD_SWEEP_INTERVAL_SECONDS=0 removes it."""
    handle = client.get_schedule_handle(SWEEP_SCHEDULE_ID)
    if settings.sweep_interval_seconds <= 0:
        with contextlib.suppress(RPCError):
            await handle.delete()
        return
    schedule = Schedule(
        action=ScheduleActionStartWorkflow("SweepWorkflow", id=SWEEP_SCHEDULE_ID, task_queue=settings.task_queue),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=settings.sweep_interval_seconds))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    try:
        await client.create_schedule(SWEEP_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:
        await handle.update(lambda _: ScheduleUpdate(schedule=schedule))


async def run_worker(settings: Settings, role: str = "all") -> None:
    # anyio (under httpx) imports its asyncio backend on first use; importing it at start-up
    # keeps that off the first send of a burst (profiled: 5 % of a publisher's CPU in the window).
    importlib.import_module("anyio._backends._asyncio")
    client = await t.connect(settings.temporal_target, settings.temporal_namespace, settings.temporal_grpc_compression)
    await t.ensure_search_attributes(client, settings.temporal_namespace)
    db = Database(settings.db_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with provider_http_client(settings) as http:
            workers = build_workers(client, settings, db, http, executor, role)
            if role in ("all", "workflows"):
                await ensure_sweep_schedule(client, settings)
            queues = ", ".join(w.task_queue for w in workers)
            log.info("worker (%s) polling task queue(s) %s on %s", role, queues, settings.temporal_target)
            async with contextlib.AsyncExitStack() as stack:
                for worker in workers:
                    await stack.enter_async_context(worker)
                await stop.wait()
                log.info("worker shutting down")
    db.dispose()
