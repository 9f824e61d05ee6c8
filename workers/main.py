"""The worker process: which workflows and activities run on which task queue.

One task queue (`HERALD_TASK_QUEUE`) carries everything in this version. Sync activities (the
database projection) run on a thread pool; async activities (provider calls) share one event
loop and one httpx client, so a thousand posts due at the same second are a thousand coroutines,
not a thousand threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
import warnings

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.projection import ProjectionActivities
from activities.publishing import PublishActivities
from herald import temporal as t
from herald.crypto import CredentialCipher
from herald.settings import Settings
from store.db import Database
from workflows.post import PostWorkflow
from workflows.reconcile import ReconcilePostWorkflow
from workflows.run import RunWorkflow

log = logging.getLogger("herald.worker")

WORKFLOWS = [RunWorkflow, PostWorkflow, ReconcilePostWorkflow]


def provider_http_client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.provider_timeout_seconds, connect=10.0),
        limits=httpx.Limits(max_connections=200, max_keepalive_connections=200),
        headers={"User-Agent": "Herald/0.1 (+https://github.com/herald)"},
    )


def build_worker(
    client: Client,
    settings: Settings,
    db: Database,
    http: httpx.AsyncClient,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> Worker:
    projection = ProjectionActivities(db)
    publishing = PublishActivities(settings, db, http, CredentialCipher(settings.secret_key))
    with warnings.catch_warnings():
        # Sync activities (short DB writes) share a small thread pool on purpose; the large
        # concurrency cap is for async publish calls holding until their second.
        warnings.filterwarnings("ignore", message="Worker max_concurrent_activities")
        return Worker(
            client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            activities=[
                projection.record_post_state,
                projection.record_run_state,
                publishing.prepare_media,
                publishing.publish,
                publishing.reconcile,
            ],
            activity_executor=executor,
            max_concurrent_activities=settings.max_concurrent_activities,
        )


async def run_worker(settings: Settings) -> None:
    client = await t.connect(settings.temporal_target, settings.temporal_namespace)
    await t.ensure_search_attributes(client, settings.temporal_namespace)
    db = Database(settings.db_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
        async with provider_http_client(settings) as http:
            worker = build_worker(client, settings, db, http, executor)
            log.info("worker polling task queue %s on %s", settings.task_queue, settings.temporal_target)
            async with worker:
                await stop.wait()
                log.info("worker shutting down")
    db.dispose()
