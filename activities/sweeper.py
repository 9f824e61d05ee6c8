"""The safety net: find work that fell through the cracks and put it back on track.

1. Runs stored as scheduled whose RunWorkflow was never started (the API died between its
   transaction and the start): start it now, exactly as the API would (same id, USE_EXISTING).
2. Posts overdue by more than HERALD_SWEEP_OVERDUE_SECONDS that are neither published, failed
   nor canceled (nor waiting for a reviewer): a post that was never attempted and has no
   workflow gets one (same id, so never a second one); every other one is reported (the
   workflow's report and /health), since it may have reached the network already.
3. Deleted assets whose retention window has ended lose their blobs, unless a post that is not
   done yet still uses them (activities/media.py, purge_due_assets).

Every step is idempotent: two sweeps at once start nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import httpx
from sqlmodel import select
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.media import purge_due_assets
from herald import temporal as t
from herald.contracts import SweepReport
from herald.account_tokens import TokenKeeper
from herald.settings import Settings
from herald.workflow_inputs import post_input, start_run_workflow
from store.db import Database
from store.models import Job, Post, Run

log = logging.getLogger("herald.sweep")

# A run younger than this may still be in the API's hands (between its commit and its start).
RUN_START_GRACE = timedelta(seconds=30)
STUCK_STATUSES = ("scheduled", "retry_pending", "publishing")


def overdue_posts_query(now: datetime, overdue_seconds: float):  # noqa: ANN201
    """Posts due long ago that are still not done (the /health check uses the same rule)."""
    return select(Post).where(Post.status.in_(STUCK_STATUSES),  # type: ignore[attr-defined]
                              Post.publish_at < now - timedelta(seconds=overdue_seconds))


class SweepActivities:
    def __init__(self, settings: Settings, db: Database, client: Client, http: httpx.AsyncClient | None = None):
        self.settings = settings
        self.db = db
        self.client = client
        # Keeping OAuth tokens alive is part of the pass: the schedule is already durable.
        self.tokens = TokenKeeper(settings, db, http) if http is not None else None

    @activity.defn(name="sweep")
    async def sweep(self) -> SweepReport:
        now = datetime.now(timezone.utc)
        report = SweepReport(checked_at=now)
        for run_id in await asyncio.to_thread(self._unstarted_runs, now):
            if await self._start_run(run_id):
                report.runs_started.append(run_id)
        for post_id in await asyncio.to_thread(self._overdue, now):
            state = await self._post_workflow_state(post_id)
            if state == "missing" and await self._start_post(post_id):
                report.posts_started.append(post_id)
            else:
                report.overdue.append(post_id)
        purge = await asyncio.to_thread(purge_due_assets, self.settings, self.db, now)
        report.assets_purged, report.assets_kept_in_use = purge.purged, purge.kept_in_use
        if self.tokens is not None:
            counts = await self.tokens.refresh_expiring(self.settings.token_refresh_ahead_seconds)
            report.tokens_refreshed, report.token_refresh_failures = counts["refreshed"], counts["failed"]
        if report.runs_started or report.posts_started or report.overdue:
            log.warning("sweep: started runs %s, started posts %s, still overdue %s",
                        report.runs_started, report.posts_started, report.overdue)
        return report

    def _unstarted_runs(self, now: datetime) -> list[str]:
        with self.db.session() as s:
            rows = s.exec(select(Run.id).where(Run.mode == "scheduled", Run.workflow_started == False,  # noqa: E712
                                               Run.created_at < now - RUN_START_GRACE)).all()
            return list(rows)

    def _overdue(self, now: datetime) -> list[str]:
        with self.db.session() as s:
            return [p.id for p in s.exec(overdue_posts_query(now, self.settings.sweep_overdue_seconds)).all()]

    async def _start_run(self, run_id: str) -> bool:
        def load():  # noqa: ANN202
            with self.db.session() as s:
                run = s.get(Run, run_id)
                posts = list(s.exec(select(Post).where(Post.run_id == run_id).order_by(Post.position)).all())
                jobs = list(s.exec(select(Job).where(Job.run_id == run_id)).all())
                return run, posts, jobs

        run, posts, jobs = await asyncio.to_thread(load)
        if run is None or run.workflow_started:
            return False
        await start_run_workflow(self.client, self.settings, run, posts, jobs)

        def mark() -> None:
            with self.db.write_session() as s:
                row = s.get(Run, run_id)
                if row is not None:
                    row.workflow_started = True
                    s.add(row)
                    s.commit()

        await asyncio.to_thread(mark)
        return True

    async def _post_workflow_state(self, post_id: str) -> str:
        try:
            desc = await self.client.get_workflow_handle(t.post_workflow_id(post_id)).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return "missing"
            raise
        return desc.status.name.lower() if desc.status else "unknown"

    async def _start_post(self, post_id: str) -> bool:
        def load():  # noqa: ANN202
            with self.db.session() as s:
                post = s.get(Post, post_id)
                return post, (s.get(Run, post.run_id) if post else None)

        post, run = await asyncio.to_thread(load)
        # Only a post that was never attempted may be started here: one that reached the network
        # (publishing, retry_pending, attempts > 0) could be published already; a person decides.
        if post is None or run is None or post.status != "scheduled" or post.attempts > 0:
            return False
        # No RunWorkflow will signal a reply started from here, so it starts only when its parent
        # is already published (replying to the parent's id); otherwise it is reported.
        inp = post_input(run, post, self.settings, None, parent_post_id=None, requires_approval=False,
                         reply_to=await asyncio.to_thread(self._parent_anchor, post))
        if post.parent_post_id and inp.reply_to is None:
            return False
        await self.client.start_workflow(
            "PostWorkflow", inp, id=t.post_workflow_id(post.id), task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, search_attributes=t.post_search_attributes(inp))
        return True

    def _parent_anchor(self, post: Post) -> str | None:
        if not post.parent_post_id:
            return None
        with self.db.session() as s:
            parent = s.get(Post, post.parent_post_id)
            if parent is None or parent.status != "published":
                return None
            return parent.provider_thread_id or parent.provider_post_id
