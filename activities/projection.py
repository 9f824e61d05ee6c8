"""Projection writes: the SQL rows the API lists, kept in step with the workflows.

Plain (sync) activities run on the worker's thread pool so database I/O never blocks the event
loop that holds publish calls to the second. Every write is idempotent: Temporal may run an
activity again after a crash, and a replayed write must land on the same row.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from temporalio import activity

from herald.contracts import TERMINAL_POST_STATUSES, WAITING_POST_STATUSES, PostEdit, PostStateRecord, RunStateRecord
from herald.ids import new_id
from store.db import Database
from store.models import Account, Job, Post, PostAttempt, Run

# A terminal status is final: a late or replayed write must not move a post back out of it
# (a retry starts from `failed` explicitly, through the API).
_LEAVES_TERMINAL = {"failed": ("scheduled",)}

JOB_STATUS = {
    "pending_approval": "queued", "scheduled": "queued", "publishing": "running", "retry_pending": "running",
    "published": "completed", "failed": "failed", "canceled": "canceled",
}


class ProjectionActivities:
    def __init__(self, db: Database):
        self.db = db

    @activity.defn(name="record_post_state")
    def record_post_state(self, rec: PostStateRecord) -> str:
        """Returns the status stored afterwards (a terminal status wins over a late write)."""
        now = datetime.now(timezone.utc)
        with self.db.write_session() as s:
            post = s.get(Post, rec.post_id)
            if post is None:
                return "canceled"  # the post was purged: nothing may be published for it
            if rec.attempt is not None:
                self._add_attempt(s, post, rec)
            if rec.review is not None and post.status not in TERMINAL_POST_STATUSES:
                post.review_state = rec.review.state
                post.reviewed_by = rec.review.by
                post.reviewed_at = rec.review.at
                post.review_note = rec.review.note
            if post.status in TERMINAL_POST_STATUSES and rec.status != post.status:
                if rec.status not in _LEAVES_TERMINAL.get(post.status, ()):
                    s.commit()
                    return post.status
            post.status = rec.status
            post.updated_at = now
            if rec.publish_at is not None:
                post.publish_at = rec.publish_at
            if rec.status == "published":
                post.provider_post_id = rec.provider_post_id
                post.provider_url = rec.provider_url
                post.provider_thread_id = rec.provider_thread_id
                post.published_at = post.published_at or now
                post.error_code = post.error = None
            elif rec.status in ("failed", "retry_pending") or rec.error:
                post.error_code = rec.error_code or post.error_code
                post.error = rec.error or post.error
            elif rec.status == "scheduled":
                post.error_code = post.error = None
            s.add(post)
            if rec.job_id:
                job = s.get(Job, rec.job_id)
                if job is not None:
                    job.status = JOB_STATUS.get(rec.status, job.status)
                    job.error = rec.error if rec.status == "failed" else job.error
                    job.updated_at = now
                    s.add(job)
            if rec.mark_account_needs_reauth:
                account = s.get(Account, post.account_id)
                if account is not None and account.status == "connected":
                    account.status = "needs_reauth"
                    account.updated_at = now
                    s.add(account)
            if rec.status in TERMINAL_POST_STATUSES:
                self._refresh_finished_run(s, post.run_id, now)
            s.commit()
            return post.status

    @activity.defn(name="apply_post_edit")
    def apply_post_edit(self, edit: PostEdit) -> str:
        """Write an edit the workflow accepted. Returns the status afterwards; a post that is no
        longer editable in the store (canceled meanwhile) is left untouched."""
        with self.db.write_session() as s:
            post = s.get(Post, edit.post_id)
            if post is None:
                return "canceled"
            if post.status not in WAITING_POST_STATUSES:
                return post.status
            if post.media != edit.media:
                post.media = edit.media
            post.description, post.name, post.settings = edit.description, edit.name, edit.settings
            post.account_id, post.account_handle, post.provider = edit.account_id, edit.account_handle, edit.provider
            post.publish_at, post.timezone, post.post_type = edit.publish_at, edit.timezone, edit.post_type
            if edit.reset_approval:
                post.status, post.review_state = "pending_approval", "pending"
                post.reviewed_by = post.reviewed_at = post.review_note = None
            post.updated_at = datetime.now(timezone.utc)
            s.add(post)
            s.commit()
            return post.status

    def _add_attempt(self, s, post: Post, rec: PostStateRecord) -> None:  # noqa: ANN001
        a = rec.attempt
        assert a is not None
        exists = s.exec(
            select(PostAttempt).where(PostAttempt.post_id == post.id, PostAttempt.attempt_no == a.attempt_no)
        ).first()
        if exists is not None:
            return  # replayed write
        s.add(PostAttempt(
            id=new_id("att"), workspace_id=post.workspace_id, post_id=post.id, attempt_no=a.attempt_no,
            started_at=a.started_at, finished_at=a.finished_at, outcome=a.outcome, http_status=a.http_status,
            error_code=a.error_code, error=a.error, provider_post_id=a.provider_post_id,
            retry_after_seconds=a.retry_after_seconds,
        ))
        post.attempts = max(post.attempts, a.attempt_no)
        try:
            s.flush()
        except IntegrityError:  # a concurrent replay won the race
            s.rollback()

    def _refresh_finished_run(self, s, run_id: str, now: datetime) -> None:  # noqa: ANN001
        """After a retry the run's workflow is long done; keep the run's status true anyway."""
        run = s.get(Run, run_id)
        if run is None or run.status not in ("completed", "partial_failed"):
            return
        statuses = s.exec(select(Post.status).where(Post.run_id == run_id)).all()
        if all(st in TERMINAL_POST_STATUSES for st in statuses):
            run.status = "partial_failed" if "failed" in statuses else "completed"
            run.updated_at = now
            s.add(run)

    @activity.defn(name="record_run_state")
    def record_run_state(self, rec: RunStateRecord) -> None:
        with self.db.write_session() as s:
            run = s.get(Run, rec.run_id)
            if run is None:
                return
            if rec.status == "processing" and run.status in ("completed", "partial_failed"):
                return  # replayed start after the end
            if rec.status in ("completed", "partial_failed"):
                # Posts retried after the run ended may have changed the picture.
                statuses = s.exec(select(Post.status).where(Post.run_id == rec.run_id)).all()
                rec = RunStateRecord(run_id=rec.run_id, status="partial_failed" if "failed" in statuses else "completed")
            run.status = rec.status
            run.updated_at = datetime.now(timezone.utc)
            s.add(run)
            s.commit()
